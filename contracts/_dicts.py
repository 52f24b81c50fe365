"""The 1901 data dictionaries as versioned data (data/dicts/manifest.toml)."""

from __future__ import annotations

import csv
import io
import tomllib
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["ALLOWED_IN_FULL", "Dictionaries"]

#: a dictionary of at most this many values is listed whole in a DICT_VALUE message; a larger
#: one (科室代码 222, 国家地区代码 240) by its first values and where to read the rest
ALLOWED_IN_FULL = 20
_ALLOWED_SHOWN = 8


class Dictionaries:
    """One version of the 1901 dictionaries: code set -> {value: label}.

    A validator works against one version at a time: 1901 changes are rare, announced, and
    applied to all records received after a switch-over, unlike the diagnosis/operation tables
    which follow the discharge date.
    """

    __slots__ = ("_labels", "_names", "_values", "effective", "version")

    def __init__(
        self,
        version: str,
        effective: date,
        rows: list[tuple[str, str, str, str]],
    ) -> None:
        self.version = version
        self.effective = effective
        labels: dict[str, dict[str, str]] = {}
        names: dict[str, str] = {}
        replaced: set[str] = set()
        for code, name, value, label in rows:
            if code not in replaced:
                # a later file that mentions a code set replaces it entirely
                labels[code] = {}
                replaced.add(code)
            labels[code][value] = label
            names[code] = name
        self._labels = labels
        self._names = names
        self._values = {code: frozenset(v) for code, v in labels.items()}

    @classmethod
    @cache
    def load_bundled(cls, version: str | None = None) -> Dictionaries:
        """The bundled version named `version` (default: the latest)."""
        base = resources.files("contracts").joinpath("data/dicts")
        manifest: dict[str, Any] = tomllib.loads(
            base.joinpath("manifest.toml").read_text(encoding="utf-8")
        )
        versions = sorted(manifest["version"], key=lambda v: str(v["effective"]))
        if version is not None:
            versions = [v for v in versions if v["version"] == version]
            if not versions:
                raise KeyError(f"unknown dictionary version {version!r}")
        chosen = versions[-1]
        rows: list[tuple[str, str, str, str]] = []
        for name in chosen["files"]:
            text = base.joinpath(name).read_text(encoding="utf-8")
            rows.extend(_rows(text))
        return cls(str(chosen["version"]), date.fromisoformat(str(chosen["effective"])), rows)

    def codes(self) -> tuple[str, ...]:
        """Names of the code sets (`gend`, `dscg_way`, …)."""
        return tuple(self._values)

    def values(self, code: str) -> frozenset[str]:
        """The allowed values of one code set (empty if the set is unknown)."""
        return self._values.get(code, frozenset())

    def has(self, code: str) -> bool:
        return code in self._values

    def label(self, code: str, value: str) -> str | None:
        """The Chinese label of a value, or None."""
        return self._labels.get(code, {}).get(value)

    def name(self, code: str) -> str | None:
        """The Chinese name of a code set."""
        return self._names.get(code)

    def entries(self, code: str) -> tuple[tuple[str, str], ...]:
        """(value, label) of one code set in the order of its source file (empty if unknown)."""
        return tuple(self._labels.get(code, {}).items())

    def allowed(self, code: str) -> tuple[str, str]:
        """The allowed values of a code set as a DICT_VALUE message names them (Chinese with
        labels, English values only): all of them up to `ALLOWED_IN_FULL`, else the first
        few, the count and the endpoint that lists them (`GET /v1/dictionaries/{code}`).
        Public national codes only: never a value the record sent."""
        entries = self.entries(code)
        if len(entries) <= ALLOWED_IN_FULL:
            cn = "、".join(f"{value} {label}" for value, label in entries)
            en = ", ".join(value for value, _ in entries)
            return f"允许值：{cn}", f"allowed: {en}"
        shown = entries[:_ALLOWED_SHOWN]
        cn = "、".join(f"{value} {label}" for value, label in shown)
        en = ", ".join(value for value, _ in shown)
        where = f"GET /v1/dictionaries/{code}"
        return (
            f"允许值共{len(entries)}个，如：{cn}等，全部见 {where}",
            f"{len(entries)} allowed values, e.g. {en}; all of them: {where}",
        )


def _rows(text: str) -> list[tuple[str, str, str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    return [(r["dict_code"], r["dict_name_cn"], r["value"], r["label_cn"]) for r in reader]
