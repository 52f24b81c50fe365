"""Grouping: exclusions → 先期分组 → bed-day → core/primary → comprehensive, as DIP 3.0 orders
them."""

from __future__ import annotations

import msgspec

from contracts.dip import CaseFacts, GroupResult, GroupStatus

from ._codes import RANK_TREATMENT, norm_diag, norm_oprn
from ._index import Index, index_of
from ._model import Group, RuleSet


def _result(
    case: CaseFacts,
    idx: Index,
    status: GroupStatus,
    group: Group | None,
    treatment: str = "",
    reason: str = "",
) -> GroupResult:
    return GroupResult(
        case_key=case.case_key,
        status=status,
        group_code="" if group is None else group.code,
        group_score=0.0 if group is None else group.score,
        treatment=treatment,
        catalog_version=idx.catalog_version,
        ruleset_version=idx.ruleset_version,
        reason=reason,
    )


def _match_core(idx: Index, mode: str, sub: str, codes: list[str]) -> Group | None:
    if not codes:
        return idx.core_exact.get((sub, ""))
    if mode == "set":
        return idx.core_exact.get((sub, "+".join(sorted(codes))))
    if mode == "main":
        return idx.core_exact.get((sub, codes[0]))
    cands = idx.core_related.get((sub, codes[0]))
    if cands is None:
        return None
    others = frozenset(codes[1:])
    for related, g in cands:  # most related operations first
        if all(not slot.isdisjoint(others) for slot in related):
            return g
    return None


def group(case: CaseFacts, ruleset: RuleSet) -> GroupResult:
    """Assign one case to a group of the (treating city's) rule set; never raises on data."""
    idx = index_of(ruleset)
    gp = ruleset.policy.grouping
    diag = norm_diag(case.main_diag_code)
    if not diag:
        return _result(case, idx, "ungrouped", None, reason="blank main diagnosis")
    sub = diag[: gp.subcategory_length]
    cat = diag[: gp.category_length]
    excl = idx.excluded_diag
    if excl and (diag in excl or sub in excl or cat in excl):
        return _result(case, idx, "excluded", None, reason="main diagnosis excluded")

    codes: list[str] = []
    classes: list[str] = []
    ex_op = idx.excluded_oprn
    for code, cls in case.operations:
        c = norm_oprn(code)
        if c and c not in ex_op:
            codes.append(c)
            classes.append(cls)

    note = ""
    if (idx.pre_groups or idx.pre_unpriced) and (
        idx.pre_always
        or not idx.pre_codes.isdisjoint(codes)
        or (idx.pre_newborn and (case.age_days is not None or case.birth_weight is not None))
    ):
        for m in idx.pre_groups:
            if m.matches(case, diag, codes):
                return _result(case, idx, "pre_group", m.group)
        for m in idx.pre_unpriced:
            if m.matches(case, diag, codes):
                note = (
                    f"matches national pre-group {m.group.code} ({m.group.name}), "
                    "not in the catalog: grouped by diagnosis"
                )
                break
    if note:
        return _with_note(_ordinary(case, ruleset, idx, diag, sub, cat, codes, classes), note)
    return _ordinary(case, ruleset, idx, diag, sub, cat, codes, classes)


def _with_note(result: GroupResult, note: str) -> GroupResult:
    reason = f"{note}; {result.reason}" if result.reason else note
    return msgspec.structs.replace(result, reason=reason)


def _ordinary(
    case: CaseFacts,
    ruleset: RuleSet,
    idx: Index,
    diag: str,
    sub: str,
    cat: str,
    codes: list[str],
    classes: list[str],
) -> GroupResult:
    """Bed-day → core/primary → comprehensive: the grouping by diagnosis."""
    gp = ruleset.policy.grouping
    if idx.bed_day and case.act_ipt_days >= ruleset.policy.bed_day.min_days:
        for n in idx.bed_day_lengths:
            g = idx.bed_day.get(diag[:n])
            if g is not None:
                return _result(case, idx, "bed_day", g)

    g = _match_core(idx, gp.core_operation_match, sub, codes)
    if g is not None:
        return _result(case, idx, "primary" if g.kind == "primary" else "core", g)

    rank = 0
    if classes:
        rank_of = idx.oprn_rank
        if gp.comprehensive_by == "main":
            r = rank_of.get(classes[0])
            if r is None:
                return _result(case, idx, "ungrouped", None, reason=f"oprn_class {classes[0]!r}")
            rank = r
        else:
            for cls in classes:
                r = rank_of.get(cls)
                if r is None:
                    return _result(case, idx, "ungrouped", None, reason=f"oprn_class {cls!r}")
                if r > rank:
                    rank = r
    treatment = RANK_TREATMENT[rank]
    g = idx.comprehensive.get((cat, treatment))
    if g is None and rank and gp.fallback_to_conservative:
        g = idx.comprehensive.get((cat, "conservative"))
    if g is not None:
        return _result(case, idx, "comprehensive", g, treatment=g.treatment or treatment)
    return _result(case, idx, "ungrouped", None, treatment, "no core or comprehensive group")
