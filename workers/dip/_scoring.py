"""Scoring: case score = group score × level coefficient × adjustment, deviation cases by the
city's rule, estimated payment = case score × point value of the case's insurance type.

Scores are floats (fast, and cities publish them with a few decimals); the case score is rounded
half-up to ``score_decimals`` and the payment is exact Decimal, rounded half-up to the fen last.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

import msgspec

from contracts.dip import CaseFacts, Deviation, GroupResult, ScoreResult

from ._errors import DipError
from ._index import GroupRef, Index, index_of
from ._model import Adjustments, Group, Policy, RuleSet, SeverityTier

_FEN = Decimal("0.01")
_QUANTS: dict[int, Decimal] = {d: Decimal(1).scaleb(-d) for d in range(0, 9)}


class ScoreError(DipError, ValueError):
    """The case cannot be scored under these rules; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _age_days(case: CaseFacts, adj: Adjustments) -> int | None:
    if case.age_days is not None and not case.age_years:
        return case.age_days
    if case.age_years is None:
        return None
    if case.age_years == 0:  # under one year, 天龄 not given (DIP 3.0: 29 天–1 周岁)
        return adj.age_days_if_unknown
    return case.age_years * 365


def _cci(adj: Adjustments, case: CaseFacts) -> int:
    """Charlson index: each condition's weight once if any other diagnosis has its prefix."""
    diags = [d.strip().upper() for d in case.other_diag_codes]
    return sum(c.weight for c in adj.cci if any(d.startswith(c.diag_prefixes) for d in diags))


def _tier_hits(
    tier: SeverityTier, case: CaseFacts, reference_cost: float | None, cci: int | None
) -> bool:
    days = case.act_ipt_days
    if days < tier.min_days or (tier.max_days is not None and days > tier.max_days):
        return False
    if tier.dscg_ways or tier.diag_prefixes:
        hit = case.dscg_way in tier.dscg_ways
        if not hit and tier.diag_prefixes:
            hit = any(
                d.strip().upper().startswith(tier.diag_prefixes) for d in case.other_diag_codes
            )
        if not hit:
            return False
    ratio = tier.min_cost_ratio
    if ratio is not None and (
        not reference_cost or float(case.total_cost) < ratio * reference_cost
    ):
        return False
    if tier.min_fee_share is not None:
        fees = sum((case.fees.get(t, Decimal(0)) for t in tier.fee_types), Decimal(0))
        if not case.total_cost > 0 or float(fees / case.total_cost) < tier.min_fee_share:
            return False
    if cci is not None:
        if tier.min_cci is not None and cci < tier.min_cci:
            return False
        if tier.max_cci is not None and cci > tier.max_cci:
            return False
    return True


def adjustment_factor(
    adj: Adjustments,
    group_code: str,
    case: CaseFacts,
    reference_cost: float | None = None,
) -> float:
    """The auxiliary (辅助目录) factor of a case; 1.0 when no band or tier matches.

    ``reference_cost``: the group's standard for this case (the deviation's reference, before
    any factor), which cost-share tiers (``min_cost_ratio``) compare the cost with.
    """
    factors: list[float] = []
    if adj.age:
        days = _age_days(case, adj)
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
    cci = _cci(adj, case) if adj.cci else None
    for tier in adj.severity:
        if tier.groups and group_code not in tier.groups:
            continue
        if _tier_hits(tier, case, reference_cost, cci):
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


def _coefficient(policy: Policy, idx: Index, kind: str, case: CaseFacts, group: Group) -> float:
    """K: the group's own (per level) > the hospital's fixed (per fund) > the level's (per
    fund); 基层病种 and bed-day groups by their own rules."""
    level, fund = case.hospital_level, case.insutype
    if kind == "primary":
        pr = policy.primary
        if pr.coefficient == "group":
            own = group.level_coefficients.get(level)
            if own is not None:
                return own
            if group.primary_factor is not None:
                return group.primary_factor
            return pr.factor
        return pr.factor if pr.coefficient == "factor" else 1.0
    if kind == "bed_day" and not policy.bed_day.apply_coefficient:
        return 1.0
    if group.level_coefficients:
        own = group.level_coefficients.get(level)
        if own is not None:
            return own
    hospital = idx.hospitals.get(case.fixmedins_code)
    if hospital is not None:
        k = hospital.fund_coefficients.get(fund, hospital.coefficient)
        if k is not None:
            return k
    lv = idx.levels.get(level)
    if lv is None:
        raise ScoreError("hospital_level", f"hospital level {level!r} not in the rules")
    return lv.fund_coefficients.get(fund, lv.coefficient)


def _reference(policy: Policy, idx: Index, ref: GroupRef, case: CaseFacts) -> float | None:
    """The group's standard cost for this case (支付标准): from the catalog (the fund's own
    table when it has one; the hospital's level, else all levels) or score × yuan per point."""
    dev = policy.deviation
    if dev.reference == "score":
        ypp = idx.yuan_per_point.get(case.insutype)
        if ypp is None:
            ypp = idx.yuan_per_point.get("default")
        if ypp is None:
            raise ScoreError("insutype", f"no yuan_per_point for insutype {case.insutype!r}")
        return ref.group.score * ypp or None
    by_level, ref_all = ref.by_fund.get(case.insutype) or (ref.ref_by_level, ref.ref_all)
    base = by_level.get(case.hospital_level) if dev.reference == "same_level" else None
    if base is None:
        base = ref_all
    return base or None


def _incomplete(policy: Policy, case: CaseFacts) -> bool:
    inc = policy.incomplete
    if case.dscg_way and case.dscg_way in inc.dscg_ways:
        return True
    if (
        inc.death_within_days is not None
        and case.dscg_way == "5"
        and case.act_ipt_days <= inc.death_within_days
    ):
        return True
    return inc.case_flag and case.incomplete_stay


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
        if policy.unmatched.blank_group:
            return _blank(grouped, idx, case, pv, policy)
        return _cost_based(grouped, idx, policy.unmatched.ungrouped_cost_fraction, case, pv, policy)
    ref = idx.groups[grouped.group_code]
    group = ref.group
    s = group.score
    if s == 0.0:
        return _cost_based(
            grouped, idx, policy.unmatched.zero_score_cost_fraction, case, pv, policy
        )
    k = _coefficient(policy, idx, status, case, group)
    adj = policy.adjustments
    review = _review_flag(policy, case)

    if status == "bed_day":
        a = adjustment_factor(adj, group.code, case) if status in adj.apply_to else 1.0
        value = s * case.act_ipt_days * k * a
        return _make(grouped, idx, case, "normal", None, s, k, a, value, pv, policy, review)

    dev = policy.deviation
    base = _reference(policy, idx, ref, case)
    a = adjustment_factor(adj, group.code, case, base) if status in adj.apply_to else 1.0
    ratio = None
    if base is not None:
        divisor = base
        if "coefficient" in dev.ratio_divides_by:
            divisor *= k
        if "adjustment" in dev.ratio_divides_by:
            divisor *= a
        ratio = float(case.total_cost) / divisor
    inc = policy.incomplete
    if (inc.dscg_ways or inc.death_within_days is not None or inc.case_flag) and _incomplete(
        policy, case
    ):
        if inc.action == "cost_fraction":
            return _cost_based(grouped, idx, inc.cost_fraction, case, pv, policy, "incomplete")
        if ratio is None:
            raise ScoreError("total_cost", "incomplete stay: the group has no reference cost")
        value = s * k * min(ratio, inc.ratio_cap)
        return _make(grouped, idx, case, "incomplete", ratio, s, k, 1.0, value, pv, policy, review)
    kind: Deviation = "normal"
    value = s * k * a
    if ratio is not None:
        ad = a if dev.apply_adjustment else 1.0
        low = dev.apply_adjustment if dev.low_apply_adjustment is None else dev.low_apply_adjustment
        low_ad = a if low else 1.0
        ext = dev.extreme_threshold
        hi = dev.high_threshold
        lo = dev.low_threshold
        if ext is not None and (ratio >= ext if dev.extreme_inclusive else ratio > ext):
            kind = "extreme"
            if dev.extreme_action == "special_review":
                value = _high(dev.high_formula, dev.high_offset, hi, ratio, s, k) * ad
                review = True
        elif hi is not None and (ratio >= hi if dev.high_inclusive else ratio > hi):
            kind = "high"
            value = _high(dev.high_formula, dev.high_offset, hi, ratio, s, k) * ad
        elif lo is not None and (ratio <= lo if dev.low_inclusive else ratio < lo):
            kind = "low"
            value = s * ratio * (k if dev.low_apply_coefficient else 1.0) * low_ad
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


def _blank(
    grouped: GroupResult, idx: Index, case: CaseFacts, pv: Decimal, policy: Policy
) -> ScoreResult:
    """空白病种: the blank group's score × cost ÷ its reference cost × the city constant."""
    um = policy.unmatched
    ref = idx.groups[um.blank_group]
    base = _reference(policy, idx, ref, case)
    if base is None:
        raise ScoreError("group_code", f"blank group {um.blank_group} has no reference cost")
    ratio = float(case.total_cost) / base
    value = ref.group.score * ratio * um.blank_factor
    blank = msgspec.structs.replace(grouped, group_code=um.blank_group)
    review = _review_flag(policy, case)
    return _make(
        blank, idx, case, "blank", ratio, ref.group.score, 1.0, 1.0, value, pv, policy, review
    )


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
    kind: Deviation = "cost_fraction",
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
        deviation=kind,
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
