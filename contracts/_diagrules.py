"""Sex- and age-specific diagnoses (data/diagnosis_constraints.csv), by 3-char category."""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources

import msgspec

__all__ = ["Constraint", "constraints_by_category"]


class Constraint(msgspec.Struct, frozen=True, gc=False):
    """`gend` the only sex allowed ("1"/"2"), or an age range in days at admission."""

    rule: str
    gend: str | None
    min_age_days: int | None
    max_age_days: int | None


@cache
def constraints_by_category() -> dict[str, tuple[Constraint, ...]]:
    """Category (`O80`) -> its constraints; categories without any are absent."""
    text = (
        resources.files("contracts")
        .joinpath("data/diagnosis_constraints.csv")
        .read_text(encoding="utf-8")
    )
    out: dict[str, list[Constraint]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        first, last = row["from"], row["to"]
        if first[0] != last[0]:
            raise ValueError(f"constraint range {first}-{last} spans two letters")
        c = Constraint(
            row["rule"],
            row["gend"] or None,
            int(row["min_age_days"]) if row["min_age_days"] else None,
            int(row["max_age_days"]) if row["max_age_days"] else None,
        )
        for n in range(int(first[1:]), int(last[1:]) + 1):
            out.setdefault(f"{first[0]}{n:02d}", []).append(c)
    return {k: tuple(v) for k, v in out.items()}
