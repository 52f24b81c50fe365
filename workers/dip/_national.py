"""National DIP 3.0 lists shipped as default data (see data/NATIONAL.md for provenance).

The national 病种库 carries no scores: these lists say WHICH combinations are 基层病种 and
which cases are grouped first (先期分组); a city's own catalog and rules win over them.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import msgspec

from ._codes import norm_diag, norm_oprn

_DATA = Path(__file__).parent / "data"


class NationalEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One row: a main diagnosis (subcategory, or '' for 所有诊断) and its operations
    (alternatives; ``all_required`` when the list joins them with '+')."""

    seq: int
    diag: str
    operations: frozenset[str]
    name: str = ""
    all_required: bool = False


def _read(name: str) -> list[dict[str, str]]:
    with (_DATA / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@cache
def national_primary_care() -> tuple[NationalEntry, ...]:
    """The 127 基层病种 of the DIP 3.0 national grouping plan (六、基层病种)."""
    return tuple(
        NationalEntry(
            seq=int(r["seq"]),
            diag=norm_diag(r["principal_dx"]),
            operations=frozenset(
                norm_oprn(c) for c in r["principal_procedures"].split(";") if c.strip()
            ),
            name=r["principal_dx_name"],
        )
        for r in _read("dip3-national-primary-care.csv")
    )


@cache
def national_pre_groups() -> tuple[NationalEntry, ...]:
    """The 19 先期分组 of the DIP 3.0 national plan (transplants, ECMO, ventilation, P07)."""
    out = []
    for r in _read("dip3-national-pre-groups.csv"):
        procs = r["procedures"]
        joined = "+" in procs
        codes = procs.replace("+", ";").split(";")
        dx = r["principal_dx"].strip()
        out.append(
            NationalEntry(
                seq=int(r["seq"]),
                diag="" if dx == "所有诊断" else norm_diag(dx),
                operations=frozenset(norm_oprn(c) for c in codes if c.strip()),
                name=r["group_name"],
                all_required=joined,
            )
        )
    return tuple(out)


def on_primary_list(diag: str, operations: tuple[str, ...]) -> bool:
    """Whether a catalog group (diagnosis + main operation slot, no related operations) is a
    national 基层病种: the list's diagnosis is the group's or its category (``K35`` covers
    ``K35.8``), and no operation on either side or every alternative of the group's main
    operation among the list's."""
    if len(operations) > 1:
        return False
    main = frozenset(norm_oprn(a) for a in operations[0].split("|")) if operations else frozenset()
    d = norm_diag(diag)
    table = _by_diag()
    for e in (*table.get(d, ()), *(table.get(d[:3], ()) if len(d) > 3 else ())):
        if (not main and not e.operations) or (main and main <= e.operations):
            return True
    return False


@cache
def _by_diag() -> dict[str, tuple[NationalEntry, ...]]:
    out: dict[str, list[NationalEntry]] = {}
    for e in national_primary_care():
        out.setdefault(e.diag, []).append(e)
    return {k: tuple(v) for k, v in out.items()}
