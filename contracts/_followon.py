"""Follow-on findings: times that fail only because a bound of the stay is wrong.

One wrong discharge time (`setlinfo.dscg_time`, typed a week early) puts the settlement's
end date and every later operation and ICU time outside the stay: DATE_SETL_PERIOD,
DATE_OPRN_STAY and DATE_ICU_STAY on fields that are right, while the field that is wrong
may have no finding at all (issue 14: an integrator fixed the six correct fields first).
The same holds for an admission time typed too late.

`group_follow_ons` marks such findings with `caused_by` (the bound's field), adds to their
message which field to check first, and moves them together, right after the bound's own
findings if it has any. Nothing is suppressed: the integrator still sees everything that
fails today, and the verdict, severities and rule counts stay exactly what they were.

A bound is blamed when the findings beyond it come from at least two entries of the record
(`setlinfo` and `oprninfo[0]`, or two operations): one entry's times beyond the stay are more
likely that entry's own mistake. A bound that has a finding of its own (DATE_ADM_DSCG,
DATE_FUTURE, …) is blamed from a single follow-on. IPT_DAYS (the days between the bounds)
follows a blamed bound too.

Pure, and only ever run on a record that has findings: a clean record pays nothing.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any

import msgspec

from contracts._errors import ValidationError
from contracts._fields import spec_of
from contracts._model import Settlement

__all__ = ["STAY_RULES", "group_follow_ons"]

#: the rules that test a time against the stay [adm_time, dscg_time]
STAY_RULES = frozenset({"DATE_SETL_PERIOD", "DATE_OPRN_STAY", "DATE_ICU_STAY"})
_ADM, _DSCG = "setlinfo.adm_time", "setlinfo.dscg_time"
_PATH = re.compile(r"^(?P<node>[a-z_]+)(?:\[(?P<index>\d+)\])?\.(?P<field>[a-z_0-9]+)$")
_MIDNIGHT = time(0, 0)


def _value(s: Settlement, path: str) -> tuple[str, Any] | None:
    """(entry, value) of a finding's field: `oprninfo[2]` and its time; None if unreadable."""
    m = _PATH.match(path)
    if m is None:
        return None
    node, index, field = m["node"], m["index"], m["field"]
    if node == "setlinfo":
        entry: Any = s.setlinfo
    else:
        entries = getattr(s, node, None)
        if index is None or not isinstance(entries, list) or int(index) >= len(entries):
            return None
        entry = entries[int(index)]
    value = getattr(entry, field, None)
    if not isinstance(value, date):  # datetime is a date too
        return None
    return (node if index is None else f"{node}[{index}]"), value


def _after(value: date, bound: datetime) -> bool:
    """`value` is later than `bound`, at day precision for a bare date or midnight (the
    stay rules' own comparison)."""
    if not isinstance(value, datetime):
        return value > bound.date()
    if value <= bound:
        return False
    return not (value.time() == _MIDNIGHT or bound.time() == _MIDNIGHT) or (
        value.date() > bound.date()
    )


def _before(value: date, bound: datetime) -> bool:
    if not isinstance(value, datetime):
        return value < bound.date()
    if value >= bound:
        return False
    return not (value.time() == _MIDNIGHT or bound.time() == _MIDNIGHT) or (
        value.date() < bound.date()
    )


def _note(root: str, count: int) -> tuple[str, str]:
    spec = spec_of(root)
    label = spec.name_cn if spec is not None else root
    return (
        f"（很可能由{label}有误引起：本记录共{count}项时间与{label}矛盾，请先核对{root}）",
        f" (probably follows from {root}: {count} times of this record conflict with it; "
        "check it first)",
    )


def group_follow_ons(errors: list[ValidationError], s: Settlement) -> None:
    """Mark, explain and group in place the findings that follow from a wrong stay bound."""
    if not any(e.rule in STAY_RULES for e in errors) or any(e.caused_by for e in errors):
        return
    sl = s.setlinfo
    adm, dscg = sl.adm_time, sl.dscg_time
    late: list[int] = []  # beyond the discharge, not before the admission
    early: list[int] = []
    late_entries: set[str] = set()
    early_entries: set[str] = set()
    for i, err in enumerate(errors):
        if err.rule not in STAY_RULES:
            continue
        read = _value(s, err.field)
        if read is None:
            continue
        entry, value = read
        beyond = dscg is not None and _after(value, dscg)
        before = adm is not None and _before(value, adm)
        if beyond and not before:
            late.append(i)
            late_entries.add(entry)
        elif before and not beyond:
            early.append(i)
            early_entries.add(entry)
    roots: dict[str, list[int]] = {}
    for root, found, entries in ((_DSCG, late, late_entries), (_ADM, early, early_entries)):
        own = any(e.field == root and e.severity == "reject" for e in errors)
        if found and (len(entries) >= 2 or own):
            roots[root] = found
    if not roots:
        return
    if len(roots) == 1:
        (only,) = roots.values()
        only.extend(i for i, e in enumerate(errors) if e.rule == "IPT_DAYS")
    _regroup(errors, roots)


def _regroup(errors: list[ValidationError], roots: dict[str, list[int]]) -> None:
    """Mark the follow-ons of each root and place them together: right after the root's
    own findings, or where the first of them was."""
    taken = {i for found in roots.values() for i in found}
    rest = [(i, e) for i, e in enumerate(errors) if i not in taken]
    inserts: list[tuple[int, list[ValidationError]]] = []
    for root, found in roots.items():
        found.sort()
        cn, en = _note(root, len(found))
        marked = [
            msgspec.structs.replace(
                errors[i], caused_by=root, message=errors[i].message + cn,
                message_en=errors[i].message_en + en,
            )
            for i in found
        ]  # fmt: skip
        own = [k for k, (_, e) in enumerate(rest) if e.field == root]
        at = own[-1] + 1 if own else sum(1 for i, _ in rest if i < found[0])
        inserts.append((at, marked))
    out: list[ValidationError] = []
    for k in range(len(rest) + 1):
        for at, marked in inserts:
            if at == k:
                out.extend(marked)
        if k < len(rest):
            out.append(rest[k][1])
    errors[:] = out
