"""先期分组 (DIP 3.0 pre-groups): the national membership, a city's rows resolved against it, and
the matching that runs before the diagnosis-based grouping.

DIP 3.0 第三章第二节三(一): transplants, ECMO, long ventilation, 人工肝 and low-birth-weight
newborns are grouped FIRST, mostly whatever the main diagnosis, by the main operation (or an
operation anywhere in the list where the national list says 不限定为主要手术操作) and other
conditions (天龄, 出生体重). The national list has no scores: a city prices the pre-groups it
pays in its catalog (kind 先期分组); a case matching a pre-group the city does not price falls
through to the ordinary grouping (README.md, Grouping rules, says why).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

import msgspec

from contracts.dip import CaseFacts

from ._codes import norm_diag, norm_oprn
from ._errors import DipError
from ._model import Group, Policy, PreGroupRule

_CSV = Path(__file__).parent / "data" / "dip3-national-pre-groups.csv"
_NATIONAL_ID = re.compile(r"^XQ0*([1-9][0-9]*)$", re.IGNORECASE)
_AGE = re.compile(r"^天龄<(\d+)天$")
_WEIGHT = re.compile(r"^出生体重(\d+)-(\d+)克$")
_ANY_OPERATION = "不限定为主要手术操作"
_ANY_DIAGNOSIS = "不限定为主要诊断"
ALL_DIAGNOSES = frozenset({"所有诊断", "全部诊断", "不限", "*", "all", "any"})


class PreGroupError(DipError, ValueError):
    """A pre-group row or the national list cannot be used (raised at load time)."""


def national_id(text: str) -> str:
    """``XQ3``, ``xq03`` → ``XQ3``; '' when the text does not name a national pre-group."""
    m = _NATIONAL_ID.match(text.strip())
    return f"XQ{int(m.group(1))}" if m else ""


def _national_row(r: dict[str, str]) -> Group:
    seq = int(r["seq"])
    code = f"{r['category'].strip()}{seq}"
    procs = r["procedures"].strip()
    # the list: ';' alternatives of one operation, '+' operations all required
    slots = tuple(
        "|".join(norm_oprn(alt) for alt in part.split(";") if alt.strip())
        for part in procs.split("+")
        if part.strip()
    )
    note = r["note"].strip()
    dx = r["principal_dx"].strip()
    rule = PreGroupRule(
        national=code,
        operations_anywhere=_ANY_OPERATION in note,
        diag_anywhere=_ANY_DIAGNOSIS in note,
    )
    if not slots:  # a condition row: 天龄<29天; 出生体重0-999克
        for part in r["procedure_names_or_condition"].replace("；", ";").split(";"):
            t = part.strip().replace(" ", "")
            if m := _AGE.match(t):
                rule = msgspec.structs.replace(rule, age_days_below=int(m.group(1)))
            elif m := _WEIGHT.match(t):
                # 0-999克 / 1000-1499克: whole grams as published; read as [0, 1000)
                rule = msgspec.structs.replace(
                    rule,
                    min_birth_weight=Decimal(m.group(1)),
                    birth_weight_below=Decimal(m.group(2)) + 1,
                )
            elif t:
                raise PreGroupError(f"national pre-group {code}: unknown condition {t!r}")
    if not slots and rule.age_days_below is None and rule.min_birth_weight is None:
        raise PreGroupError(f"national pre-group {code}: neither operations nor conditions")
    return Group(
        code=code,
        kind="pre_group",
        diag="" if dx in ALL_DIAGNOSES else norm_diag(dx),
        score=0.0,
        name=r["group_name"].strip(),
        operations=slots,
        oprn_name=r["procedure_names_or_condition"].strip() if slots else "",
        pre_group=rule,
    )


@cache
def national_pre_group_rules() -> dict[str, Group]:
    """The 19 national pre-groups as unpriced groups (score 0), by ID (``XQ1``…), in the
    list's order; every row must be understood (a changed list fails here, not silently)."""
    with _CSV.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return {g.code: g for g in map(_national_row, rows)}


def _has_conditions(rule: PreGroupRule) -> bool:
    return (
        rule.age_days_below is not None
        or rule.min_birth_weight is not None
        or rule.birth_weight_below is not None
    )


def resolve_pre_groups(policy: Policy, groups: Iterable[Group]) -> tuple[Group, ...]:
    """The catalog with its 先期分组 rows complete: a row naming a national pre-group without
    operations of its own takes the national membership (with ``pre_groups.national``);
    refuses a row it cannot use. Other kinds pass unchanged (a pre-group rule on them is
    refused)."""
    out: list[Group] = []
    priced: dict[str, str] = {}
    for g in groups:
        if g.kind != "pre_group":
            if g.pre_group is not None:
                raise PreGroupError(f"group {g.code}: a pre-group condition on a {g.kind} group")
            out.append(g)
            continue
        rule = g.pre_group or PreGroupRule()
        nat = rule.national
        if nat:
            other = priced.get(nat)
            if other is not None:
                raise PreGroupError(f"groups {other} and {g.code} both price {nat}: priced twice")
            priced[nat] = g.code
        national = national_pre_group_rules().get(nat) if nat else None
        if nat and national is None and policy.pre_groups.national:
            raise PreGroupError(f"pre-group {g.code}: {nat} is not a national pre-group")
        copies = not g.diag or (national is not None and norm_diag(g.diag) == national.diag)
        if not g.operations and copies and not _has_conditions(rule):
            if not nat:
                raise PreGroupError(
                    f"pre-group {g.code}: no operations and no national pre-group named "
                    "(a code XQ1…XQ19 or the 先期分组编码 column)"
                )
            if not policy.pre_groups.national:
                raise PreGroupError(
                    f"pre-group {g.code} names {nat} but gives no operations, and "
                    "pre_groups.national = false"
                )
            assert national is not None
            if rule.operations_anywhere:
                raise PreGroupError(
                    f"pre-group {g.code}: 不限定主要手术操作 without operations of its own "
                    f"(the national {nat} says where its operations are)"
                )
            g = msgspec.structs.replace(
                g,
                diag=national.diag,
                operations=national.operations,
                name=g.name or national.name,
                oprn_name=g.oprn_name or national.oprn_name,
                pre_group=national.pre_group,
            )
        elif nat and not g.operations and not _has_conditions(rule):
            raise PreGroupError(
                f"pre-group {g.code} names {nat} with a diagnosis of its own ({g.diag}) but no "
                "operations: leave the diagnosis empty (所有诊断) for the national membership, "
                "or give the operations of the city's own"
            )
        elif g.pre_group is None:
            g = msgspec.structs.replace(g, pre_group=rule)
        out.append(g)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class PreMatcher:
    """One pre-group, compiled for matching."""

    group: Group
    slots: tuple[frozenset[str], ...]
    anywhere: bool
    diag: str
    diag_anywhere: bool
    age_days_below: int | None
    min_weight: Decimal | None
    weight_below: Decimal | None
    codes: frozenset[str]  # every code of every slot: a quick reject

    @property
    def unconditional(self) -> bool:
        """Without operations, 天龄 or 出生体重: only a diagnosis (or nothing) to test."""
        return not self.slots and (
            self.age_days_below is None and self.min_weight is None and self.weight_below is None
        )

    def matches(self, case: CaseFacts, diag: str, codes: list[str]) -> bool:
        if self.slots:
            if self.codes.isdisjoint(codes):
                return False
            if self.anywhere:
                have = frozenset(codes)
                if not all(not s.isdisjoint(have) for s in self.slots):
                    return False
            else:
                rest = frozenset(codes[1:])
                if codes[0] not in self.slots[0]:
                    return False
                if not all(not s.isdisjoint(rest) for s in self.slots[1:]):
                    return False
        if self.age_days_below is not None and (
            case.age_days is None or case.age_years or case.age_days >= self.age_days_below
        ):
            return False
        if self.min_weight is not None or self.weight_below is not None:
            w = case.birth_weight
            if w is None:
                return False
            if self.min_weight is not None and w < self.min_weight:
                return False
            if self.weight_below is not None and w >= self.weight_below:
                return False
        if self.diag:
            if diag.startswith(self.diag):
                return True
            return self.diag_anywhere and any(
                norm_diag(d).startswith(self.diag) for d in case.other_diag_codes
            )
        return True


def compile_pre_groups(groups: Iterable[Group]) -> tuple[PreMatcher, ...]:
    """Matchers in the order they are tried: more operations required first (XQ13 before
    XQ14), then the national list's order (transplants before ECMO before ventilation…),
    the city's own after the national ones, then catalog order."""
    national_order = {code: i for i, code in enumerate(national_pre_group_rules())}
    found: list[tuple[tuple[int, int, int], PreMatcher]] = []
    for pos, g in enumerate(groups):
        rule = g.pre_group or PreGroupRule()
        slots = tuple(
            frozenset(norm_oprn(a) for a in slot.split("|") if a.strip()) for slot in g.operations
        )
        m = PreMatcher(
            group=g,
            slots=slots,
            anywhere=rule.operations_anywhere,
            diag=norm_diag(g.diag),
            diag_anywhere=rule.diag_anywhere,
            age_days_below=rule.age_days_below,
            min_weight=rule.min_birth_weight,
            weight_below=rule.birth_weight_below,
            codes=frozenset().union(*slots) if slots else frozenset(),
        )
        key = (-len(slots), national_order.get(rule.national, len(national_order)), pos)
        found.append((key, m))
    found.sort(key=lambda km: km[0])
    return tuple(m for _, m in found)
