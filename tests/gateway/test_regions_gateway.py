"""The gateway's region decisions follow the real hierarchy (`contracts.city_of`): who may
read which city, which lists a hospital may send, which regions a hospital or bureau may be
registered under. Hand-picked real codes; no database (the checks come before any query)."""

from __future__ import annotations

import argparse
import os

import pytest

from gateway import params
from gateway.accounts import Principal, Registry, RegistryError
from gateway.checks import Rejected
from gateway.commands._common import UsageError
from gateway.commands.rules import city_year_settings
from gateway.errors import BadQuery
from gateway.routes_ingest import foreign_records
from gateway.sealing import Sealer


class _Pool:
    """Records the statements a registry sends; no database behind it."""

    def __init__(self) -> None:
        self.executed: list[tuple[object, ...]] = []

    async def execute(self, *args: object) -> str:
        self.executed.append(args)
        return "INSERT 0 1"


def _registry() -> tuple[Registry, _Pool]:
    pool = _Pool()
    return Registry(pool, Sealer(os.urandom(32)), cache_ttl_s=0), pool


@pytest.mark.parametrize("admdvs", ["440188", "429000", "449800"])
async def test_a_hospital_under_an_unknown_region_is_refused(admdvs: str) -> None:
    registry, pool = _registry()
    with pytest.raises(RegistryError, match=rf"{admdvs}: .*not a known region code"):
        await registry.add_hospital("H44010000001", "广州市第一人民医院", admdvs, "3")
    assert pool.executed == []


@pytest.mark.parametrize("admdvs", ["4401", "44010x"])
async def test_a_malformed_region_is_refused_as_such(admdvs: str) -> None:
    registry, pool = _registry()
    with pytest.raises(RegistryError, match="6-digit region code"):
        await registry.add_hospital("H44010000001", "广州市第一人民医院", admdvs, "3")
    assert pool.executed == []


@pytest.mark.parametrize("admdvs", ["441900", "460400", "439900", "110105", "440106"])
async def test_a_hospital_under_a_known_region_is_registered(admdvs: str) -> None:
    registry, pool = _registry()
    assert await registry.add_hospital("H44010000001", "医院", admdvs, "3")
    assert len(pool.executed) == 1 and admdvs in pool.executed[0]


async def test_a_city_token_needs_a_known_region() -> None:
    registry, pool = _registry()
    with pytest.raises(RegistryError, match=r"440188: .*not a known region code"):
        await registry.issue_token("city", "gz-bureau", "440188")
    assert pool.executed == []
    assert await registry.issue_token("city", "dg-bureau", "441900")


@pytest.mark.parametrize(
    ("own", "region", "may"),
    [
        ("440100", "440106", True),  # a district of its city
        ("440100", "440100", True),
        ("440100", "440305", False),  # 深圳's
        ("440100", "440188", False),  # unknown: nobody's
        ("110000", "110105", True),  # 北京: one city
        ("110105", "110000", True),
        ("500000", "500229", True),  # 重庆's 县 heading is still 重庆
        ("441900", "441901", True),  # a code under 东莞
        ("460400", "460100", False),  # 儋州 is not 海口
        ("429004", "429005", False),  # 仙桃 and 潜江 are separate pools
        ("440188", "440188", False),  # an unknown own region reads nothing
    ],
)
def test_a_bureau_reads_its_own_city(own: str, region: str, may: bool) -> None:
    assert Principal(role="city", admdvs=own).may_read_region(region) is may
    assert Principal(role="ops").may_read_region(region)


@pytest.mark.parametrize(
    ("asked", "city"), [("440106", "440100"), ("110105", "110000"), ("441901", "441900")]
)
def test_a_city_query_names_the_city(asked: str, city: str) -> None:
    assert params.city(asked, "city") == city


@pytest.mark.parametrize("asked", ["440188", "429000"])
def test_an_unknown_city_query_is_refused_not_read_as_every_city(asked: str) -> None:
    with pytest.raises(BadQuery) as caught:
        params.city(asked, "city")
    assert caught.value.field == "city"
    assert "not a known region code" in caught.value.message_en


@pytest.mark.parametrize(
    ("own", "area", "foreign"),
    [
        ("440100", "440106", False),
        ("440106", "440100", False),
        ("440100", "440305", True),
        ("110105", "110000", False),
        ("441900", "441901", False),
        ("441900", "440100", True),
        # an unknown area is not another city: the contract refuses it (ADMDVS_UNKNOWN)
        ("440100", "440188", False),
    ],
)
def test_a_hospital_sends_lists_of_its_own_city(own: str, area: str, foreign: bool) -> None:
    hospital = Principal(role="hospital", fixmedins_code="H44010000001", admdvs=own)
    record = Rejected("records[0]", [], fixmedins_code="H44010000001", mdtrtarea_admvs=area)
    assert foreign_records(hospital, [record]) == (["records[0]"] if foreign else [])


@pytest.mark.parametrize(
    ("city", "why"),
    [
        ("110100", "belongs to city 110000"),  # 北京's 市辖区 heading: rules there never apply
        ("440106", "belongs to city 440100"),
        ("440188", "not a known region code"),
    ],
)
def test_rules_are_imported_for_a_city_only(city: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        city_year_settings(argparse.Namespace(city=city, year=2026))


@pytest.mark.parametrize("city", ["440100", "441900", "110000", "429004", "439900"])
def test_rules_may_be_imported_for_any_city(city: str) -> None:
    assert city_year_settings(argparse.Namespace(city=city, year=2026, config=None))
