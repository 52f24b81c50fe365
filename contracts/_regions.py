"""Region codes (医保区划): which exist, and the DIP pool ("city") each belongs to.

Medical-insurance region codes follow the 6-digit administrative codes (GB/T 2260), plus
pools the civil list lacks. The data is `data/regions/` (the civil list, NBS 2023, and
`pools.toml`); the conventions, decided once here and documented in its PROVENANCE.md:

- a county's city is its parent in the list (never its first four digits: 500229 城口县 is
  listed under 500200 县, a heading of 重庆);
- a municipality (北京, 天津, 上海, 重庆) is one pool named by its province-level code
  (110000): its 市辖区/县 headings and districts all belong to it;
- a city without counties (东莞 441900, 中山 442000, 儋州 460400, 嘉峪关 620200): any
  code under it is the city;
- a county-level city under the province directly (仙桃 429004, 济源 419001, 琼海 469002)
  is a pool of its own; the headings 省直辖县级行政区划 (429000 …) are no region;
- 省本级 `xx9900` is the province's own pool (`xx99NN` its parts); 市本级 `xxxx99` belongs to
  its city; a province code (440000) is named by itself.
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any, Literal, NamedTuple

__all__ = ["Region", "Regions", "bundled_regions", "city_of", "region_inside"]

Level = Literal["province", "city", "county", "pool"]


class Region(NamedTuple):
    """One known code: its name, level, parent code ("" for a province) and pool."""

    code: str
    name: str
    level: Level
    parent: str
    city: str


class Row(NamedTuple):
    """A row of the civil list (`admin_divisions.csv`)."""

    code: str
    name: str
    level: str
    parent: str


def _six_digits(code: object) -> bool:
    return (
        isinstance(code, str)
        and len(code) == 6
        and code.isascii()
        and code.isdigit()
        and code[0] != "0"
    )


def _own_pool_name(name: str) -> str:
    # 湖南省 → 湖南省省本级, 广西壮族自治区 → …区本级, 长沙市 → 长沙市市本级, 湘西…州 → …州本级
    return f"{name}{name[-1]}本级"


class Regions:
    """The known region codes and their pools. Built once (`bundled_regions`); pure."""

    __slots__ = ("_known", "_municipalities", "_resolved", "_rows", "_towns_under_city")

    def __init__(
        self,
        rows: Iterable[Row],
        *,
        municipalities: Iterable[str],
        towns_under_city: Iterable[str],
        extra: Mapping[str, Row] | None = None,
    ) -> None:
        self._rows = tuple(rows)
        self._municipalities = frozenset(municipalities)
        self._towns_under_city = frozenset(towns_under_city)
        listed = {row.code: row for row in self._rows}
        self._known: dict[str, Region] = {}
        for row in self._rows:
            region = self._from_row(row, listed)
            if region is not None:
                self._known[row.code] = region
        for code, row in (extra or {}).items():
            parent = self._known.get(row.parent)
            if not _six_digits(code) or parent is None:
                raise ValueError(f"extra region {code}: its parent {row.parent} is not known")
            self._known[code] = Region(code, row.name, "pool", row.parent, parent.city)
        self._resolved: dict[str, Region | None] = {}

    @classmethod
    def from_data(cls, rows: Iterable[Row], pools: Mapping[str, Any]) -> Regions:
        """From the civil list and a parsed `pools.toml`."""
        extra = {
            code: Row(code, str(entry["name"]), "pool", str(entry["parent"]))
            for code, entry in pools.get("extra", {}).items()
        }
        return cls(
            rows,
            municipalities=pools.get("municipalities", ()),
            towns_under_city=pools.get("towns_under_city", ()),
            extra=extra,
        )

    def rows(self) -> tuple[Row, ...]:
        """The civil list this was built from."""
        return self._rows

    def _from_row(self, row: Row, listed: Mapping[str, Row]) -> Region | None:
        code, name, level, parent = row
        if level == "province":
            return Region(code, name, "province", "", code)
        if level == "city":
            if code[2:4] == "90":  # 省直辖县级行政区划: a heading, not a region
                return None
            city = parent if parent in self._municipalities else code
            return Region(code, name, "city", parent, city)
        above = listed.get(parent)
        if above is None:
            return None
        if above.parent in self._municipalities:
            city = above.parent
        elif above.code[2:4] == "90":  # a county-level city under the province directly
            return Region(code, name, "county", above.parent, code)
        else:
            city = above.code
        return Region(code, name, "county", parent, city)

    def region(self, code: str | None) -> Region | None:
        """The region a code names, None when it is no known region code."""
        if code is None:
            return None
        found = self._known.get(code)
        if found is not None:
            return found
        if code in self._resolved:
            return self._resolved[code]
        region = self._by_pattern(code) if _six_digits(code) else None
        if len(self._resolved) < 100_000:
            self._resolved[code] = region
        return region

    def _by_pattern(self, code: str) -> Region | None:
        province = self._known.get(code[:2] + "0000")
        if province is None:
            return None
        if code[2:4] == "99":  # 省本级, or a part of it
            own = code[:4] + "00"
            if code == own:
                return Region(code, _own_pool_name(province.name), "pool", province.code, code)
            name = f"{_own_pool_name(province.name)}（{code}）"
            return Region(code, name, "pool", own, own)
        city = self._known.get(code[:4] + "00")
        if city is None or city.level != "city":
            return None
        if city.code in self._towns_under_city:
            return Region(code, f"{city.name}（{code}）", "pool", city.code, city.city)
        if code[4:] == "99":  # 市本级
            return Region(code, _own_pool_name(city.name), "pool", city.code, city.city)
        return None

    def city_of(self, code: str | None) -> str | None:
        """The DIP pool of a code (see the module's conventions); None for an unknown code."""
        region = self.region(code)
        return region.city if region is not None else None

    def ancestors(self, code: str) -> tuple[str, ...]:
        """The code and every code above it, itself first; () for an unknown code."""
        chain: list[str] = []
        region = self.region(code)
        while region is not None:
            chain.append(region.code)
            region = self.region(region.parent) if region.parent else None
        return tuple(chain)

    def inside(self, inner: str, outer: str) -> bool:
        """True when `inner` lies in `outer` (or is it).

        An unknown `inner` is placed by the codes above it that are known (`xxxx00`, then
        `xx0000`): an institution keeps the region code it was registered under, and counties
        are renamed and merged (440184 从化市 became 440117 从化区 in 2014)."""
        chain = self.ancestors(inner)
        if not chain and _six_digits(inner):
            if inner == outer:
                return True
            chain = self.ancestors(inner[:4] + "00") or self.ancestors(inner[:2] + "0000")
        return outer in chain


@cache
def bundled_regions() -> Regions:
    """The regions shipped in `contracts/data/regions/` (read once per process)."""
    base = resources.files("contracts").joinpath("data/regions")
    text = base.joinpath("admin_divisions.csv").read_text(encoding="utf-8")
    rows = [
        Row(r["code"], r["name"], r["level"], r["parent_code"])
        for r in csv.DictReader(text.splitlines())
    ]
    pools = tomllib.loads(base.joinpath("pools.toml").read_text(encoding="utf-8"))
    return Regions.from_data(rows, pools)


def city_of(admdvs: str | None) -> str | None:
    """The city (DIP pool) a region code belongs to; None for anything that is not a known
    region code.

    The one definition: a city's rules, topics and reports are all keyed by it."""
    return bundled_regions().city_of(admdvs)


def region_inside(inner: str, outer: str) -> bool:
    """True when region `inner` lies in `outer` (`Regions.inside` of the bundled regions)."""
    return bundled_regions().inside(inner, outer)
