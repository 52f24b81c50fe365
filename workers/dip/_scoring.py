"""Scoring: case score = group score × level coefficient × adjustment, deviation cases by the
city's rule, estimated payment = case score × point value of the case's insurance type.

Scores are floats (fast, and cities publish them with a few decimals); the case score is rounded
half-up to ``score_decimals`` and the payment is exact Decimal, rounded half-up to the fen last.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

from contracts.dip import CaseFacts, Deviation, GroupResult, ScoreResult

from ._errors import DipError
from ._index import GroupRef, Index, index_of
from ._model import Adjustments, Group, Policy, RuleSet

_FEN = Decimal("0.01")
_QUANTS: dict[int, Decimal] = {d: Decimal(1).scaleb(-d) for d in range(0, 9)}


class ScoreError(DipError, ValueError):
    """The case cannot be scored under these rules; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _age_days(case: CaseFacts) -> int | None:
    if case.age_days is not None and not case.age_years:
        return case.age_days
    if case.age_years is None:
        return None
    return case.age_years * 365


def adjustment_factor(adj: Adjustments, group_code: str, case: CaseFacts) -> float:
    """The auxiliary (辅助目录) factor of a case; 1.0 when no band or tier matches."""
    factors: list[float] = []
    if adj.age:
        days = _age_days(case)
        if days is not None:
            for band in adj.age:
                if band.groups and group_code not in band.groups:
                    continue
                lo = band.min_days if band.min_days is not None else None
                if band.min_years is not None:
                    lo = max(lo or 0, int(band.min_years * 365))
                hi = band.max_days
                if band.max_years is not None:
                    y = int(band.max_years * 365)
                    hi = y if hi is None else min(hi, y)
                if (lo is None or days >= lo) and (hi is None or days < hi):
                    factors.append(band.factor)
    for tier in adj.severity:
        if tier.groups and group_code not in tier.groups:
            continue
        if case.act_ipt_days < tier.min_days:
            continue
        hit = case.dscg_way in tier.dscg_ways
        if not hit and tier.diag_prefixes:
            hit = any(
                d.strip().upper().startswith(tier.diag_prefixes) for d in case.other_diag_codes
            )
        if hit:
            factors.append(tier.factor)
    if adj.icu and case.icu_minutes > 0:
        icu_days = math.ceil(case.icu_minutes / 1440)
        for icu in adj.icu:
            if icu.groups and group_code not in icu.groups:
                continue
            if icu_days >= icu.min_days and (icu.max_days is None or icu_days < icu.max_days):
                factors.append(icu.factor)
    if not factors:
        return 1.0
    if adj.combine == "max":
        return max(factors)
    return math.prod(factors)


def _coefficient(policy: Policy, idx: Index, kind: str, level: str, group: Group) -> float:
    if kind == "primary":
        return policy.primary.factor if policy.primary.coefficient == "factor" else 1.0
    if kind == "bed_day" and not policy.bed_day.apply_coefficient:
        return 1.0
    if group.level_coefficients:
        own = group.level_coefficients.get(level)
        if own is not None:
            return own
    k = idx.coefficients.get(level)
    if k is None:
        raise ScoreError("hospital_level", f"hospital level {level!r} not in the rules")
    return k


def _ratio(policy: Policy, ref: GroupRef, level: str, cost: float) -> float | None:
    base = None
    if policy.deviation.reference == "same_level":
        base = ref.ref_by_level.get(level)
    if base is None:
        base = ref.ref_all
    if not base:
        return None
    return cost / base


def score(
    grouped: GroupResult,
    ruleset: RuleSet,
    case: CaseFacts,
    point_values: Mapping[str, Decimal] | None = None,
) -> ScoreResult:
    """Score a grouped case under the TREATING city's rule set.

    ``point_values`` (insutype → yuan per point) overrides the rule set's, for when the current
    point value moves during the year (monthly estimate vs. the clearing value) without a new
    catalog. Raises `ScoreError` when the rules cannot price the case (unknown level or
    insurance type, ungrouped or zero-score case without a configured cost fraction, rules
    mismatch).
    """
    idx = index_of(ruleset)
    policy = ruleset.policy
    if grouped.ruleset_version != idx.ruleset_version:
        raise ScoreError("ruleset", f"case grouped under {grouped.ruleset_version}")
    pvs = idx.point_values if point_values is None else point_values
    pv = pvs.get(case.insutype)
    if pv is None:
        pv = pvs.get("default")
    status = grouped.status
    if status == "excluded":
        return _make(grouped, idx, case, "excluded", None, 0.0, 0.0, 1.0, 0.0, pv, None, False)
    if pv is None:
        raise ScoreError("insutype", f"no point value for insutype {case.insutype!r}")
    if status == "ungrouped":
        return _cost_based(grouped, idx, policy.unmatched.ungrouped_cost_fraction, case, pv, policy)
    ref = idx.groups[grouped.group_code]
    group = ref.group
    s = group.score
    if s == 0.0:
        return _cost_based(
            grouped, idx, policy.unmatched.zero_score_cost_fraction, case, pv, policy
        )
    k = _coefficient(policy, idx, status, case.hospital_level, group)
    adj = policy.adjustments
    a = adjustment_factor(adj, group.code, case) if status in adj.apply_to else 1.0
    review = _review_flag(policy, case)

    if status == "bed_day":
        value = s * case.act_ipt_days * k * a
        return _make(grouped, idx, case, "normal", None, s, k, a, value, pv, policy, review)

    dev = policy.deviation
    ratio = _ratio(policy, ref, case.hospital_level, float(case.total_cost))
    kind: Deviation = "normal"
    value = s * k * a
    if ratio is not None:
        ad = a if dev.apply_adjustment else 1.0
        ext = dev.extreme_threshold
        hi = dev.high_threshold
        lo = dev.low_threshold
        if ext is not None and ratio > ext:
            kind = "extreme"
            if dev.extreme_action == "special_review":
                value = _high(dev.high_formula, dev.high_offset, hi, ratio, s, k) * ad
                review = True
        elif hi is not None and (ratio >= hi if dev.high_inclusive else ratio > hi):
            kind = "high"
            value = _high(dev.high_formula, dev.high_offset, hi, ratio, s, k) * ad
        elif lo is not None and (ratio <= lo if dev.low_inclusive else ratio < lo):
            kind = "low"
            value = s * ratio * (k if dev.low_apply_coefficient else 1.0) * ad
        sr = policy.special_review.min_ratio
        if sr is not None and ratio >= sr:
            review = True
    return _make(grouped, idx, case, kind, ratio, s, k, a, value, pv, policy, review)


def _high(
    formula: str, offset: float | None, threshold: float | None, ratio: float, s: float, k: float
) -> float:
    off = offset if offset is not None else (threshold if threshold is not None else 2.0)
    if formula == "plus_coefficient":
        return s * (ratio - off + k)
    return (ratio - off + 1.0) * s * k


def _review_flag(policy: Policy, case: CaseFacts) -> bool:
    sr = policy.special_review
    if sr.min_inpatient_days is not None and case.act_ipt_days >= sr.min_inpatient_days:
        return True
    return sr.flag_deaths and case.dscg_way == "5"


def _make(
    grouped: GroupResult,
    idx: Index,
    case: CaseFacts,
    kind: Deviation,
    ratio: float | None,
    s: float,
    k: float,
    a: float,
    value: float,
    pv: Decimal | None,
    policy: Policy | None,
    review: bool,
) -> ScoreResult:
    payment: Decimal | None = None
    case_score = value
    if policy is not None and pv is not None:
        rounded = Decimal(repr(value)).quantize(_QUANTS[policy.score_decimals], ROUND_HALF_UP)
        case_score = float(rounded)
        payment = (rounded * pv).quantize(_FEN, ROUND_HALF_UP)
    return ScoreResult(
        case_key=case.case_key,
        status=grouped.status,
        group_code=grouped.group_code,
        deviation=kind,
        ratio=ratio,
        group_score=s,
        level_coefficient=k,
        adjustment=a,
        case_score=case_score,
        point_value=pv,
        estimated_payment=payment,
        special_review=review,
        insutype=case.insutype,
        ruleset_version=idx.ruleset_version,
        catalog_version=idx.catalog_version,
    )


def _cost_based(
    grouped: GroupResult,
    idx: Index,
    fraction: Decimal | None,
    case: CaseFacts,
    pv: Decimal,
    policy: Policy,
) -> ScoreResult:
    """Paid at a fraction of actual cost; the score shown is its equivalent at the point value."""
    if fraction is None:
        what = "ungrouped case" if grouped.status == "ungrouped" else "group score 0"
        raise ScoreError("group_code", f"{what} and no cost fraction configured")
    payment = (case.total_cost * fraction).quantize(_FEN, ROUND_HALF_UP)
    equiv = (payment / pv).quantize(_QUANTS[policy.score_decimals], ROUND_HALF_UP) if pv else 0
    return ScoreResult(
        case_key=case.case_key,
        status=grouped.status,
        group_code=grouped.group_code,
        deviation="cost_fraction",
        ratio=None,
        group_score=grouped.group_score,
        level_coefficient=1.0,
        adjustment=1.0,
        case_score=float(equiv),
        point_value=pv,
        estimated_payment=payment,
        special_review=_review_flag(policy, case),
        insutype=case.insutype,
        ruleset_version=idx.ruleset_version,
        catalog_version=idx.catalog_version,
    )


def group_and_score(case: CaseFacts, ruleset: RuleSet) -> tuple[GroupResult, ScoreResult]:
    """Both steps at once, as the offline commands and the bench use them."""
    from ._grouping import group

    g = group(case, ruleset)
    return g, score(g, ruleset, case)
