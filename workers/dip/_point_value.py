"""Point values (点值): the 年初点值 a city prepays with and the 结算点值 it clears with.

年初点值 = Σ wᵢ·costᵢ ÷ Σ wᵢ·scoreᵢ over the history years (DIP 3.0: three years, 1:2:7),
optionally trimmed (the hospitals whose 每指数点值 lies outside the given quantiles left out);
结算点值 = (the fund's DIP budget ÷ its payment ratio) ÷ the year's total score, kept within
floor × 预算点值 … ceiling × 预算点值 when the city bounds it. Point values are rounded
ROUND_HALF_UP to the policy's ``point_value_decimals`` (default 4), once, at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

import msgspec

from ._settle_policy import (
    FundPolicy,
    HistoryHospital,
    HistoryYear,
    PointValueMethod,
    SettlementPolicy,
    SettlementPolicyError,
)

__all__ = [
    "PointValue",
    "fund_point_values",
    "initial_point_value",
    "settlement_point_value",
]


class PointValue(msgspec.Struct, frozen=True, kw_only=True):
    """A fund's point values for one year: ``estimate`` (预算点值 = 年初点值), the raw 结算
    点值 before bounds, the ``value`` cleared with, and which bound applied, if any."""

    fund: str
    estimate: Decimal
    raw: Decimal | None
    value: Decimal | None
    bound: Literal["floor", "ceiling"] | None
    total_score: Decimal
    budget: Decimal
    payment_ratio: Decimal


def _q(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def _quantile(sorted_values: Sequence[Decimal], q: Decimal) -> Decimal:
    """Linear interpolation between closest ranks (numpy's default), exact in Decimal."""
    n = len(sorted_values)
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _year_totals(
    year: HistoryYear, trim: tuple[Decimal, Decimal] | None
) -> tuple[Decimal, Decimal]:
    if not year.hospitals:
        assert year.total_cost is not None and year.total_score is not None
        return year.total_cost, year.total_score
    kept: Sequence[HistoryHospital] = year.hospitals
    if trim is not None:
        per_point = sorted(h.total_cost / h.total_score for h in year.hospitals)
        lo, hi = _quantile(per_point, trim[0]), _quantile(per_point, trim[1])
        kept = [h for h in year.hospitals if lo <= h.total_cost / h.total_score <= hi]
    return sum((h.total_cost for h in kept), Decimal(0)), sum(
        (h.total_score for h in kept), Decimal(0)
    )


def initial_point_value(method: PointValueMethod, decimals: int = 4) -> Decimal:
    """年初点值: as published, or weighted history cost ÷ weighted history score."""
    if method.initial is not None:
        return _q(method.initial, decimals)
    cost = score = Decimal(0)
    for weight, year in zip(method.weights, method.history, strict=True):
        c, s = _year_totals(year, method.trim)
        cost += weight * c
        score += weight * s
    if score <= 0:
        raise SettlementPolicyError("point_value.history: the weighted total score is 0")
    return _q(cost / score, decimals)


def settlement_point_value(
    fund: str, policy: FundPolicy, total_score: Decimal, decimals: int = 4
) -> PointValue:
    """结算点值 of one fund for a year whose cases total `total_score` points."""
    estimate = initial_point_value(policy.point_value, decimals)
    raw = value = None
    bound: Literal["floor", "ceiling"] | None = None
    if total_score > 0:
        raw = _q(policy.budget / policy.payment_ratio / total_score, decimals)
        value = raw
        pv = policy.point_value
        if pv.floor is not None and raw < _q(estimate * pv.floor, decimals):
            value, bound = _q(estimate * pv.floor, decimals), "floor"
        elif pv.ceiling is not None and raw > _q(estimate * pv.ceiling, decimals):
            value, bound = _q(estimate * pv.ceiling, decimals), "ceiling"
    return PointValue(
        fund=fund,
        estimate=estimate,
        raw=raw,
        value=value,
        bound=bound,
        total_score=total_score,
        budget=policy.budget,
        payment_ratio=policy.payment_ratio,
    )


def fund_point_values(
    policy: SettlementPolicy, total_scores: Mapping[str, Decimal]
) -> dict[str, PointValue]:
    """Every fund's point values, given each fund's total score for the year (0 if absent)."""
    return {
        code: settlement_point_value(
            code, fund, total_scores.get(code, Decimal(0)), policy.point_value_decimals
        )
        for code, fund in sorted(policy.funds.items())
    }
