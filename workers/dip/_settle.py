"""Monthly pre-settlement (月度预结算) and annual clearing (年度清算): pure money math.

Rounding, stated once: a case's points are its score rounded to 0.0001; point values are
rounded to the policy's ``point_value_decimals`` (`_point_value`); every money figure of a line
(one hospital × one fund) is rounded ROUND_HALF_UP to the fen where it is formed, from figures
already rounded; a city's totals are sums of its lines, never recomputed, so they reconcile to
the fen.

Per line, month (EPV = the fund's 预算点值):
  dip_amount = points × EPV; other = patient and other-fund payments of the cases;
  settled (prepay) = max(0, dip_amount − other) × prepay_ratio;
  deposit = settled × deposit_ratio; payable = settled − deposit − deductions.
Per line, year (SPV = the fund's 结算点值):
  dip_amount = points × SPV; special = approved special-review points × SPV;
  due = max(0, dip_amount − other) × 考核系数 + special − deductions (the year's: the months'
  and the year-end ones); billed = Σ fund 记账 (cost − other); surplus/overspend bands on
  due − billed give the final amount; deposit returned = the months' deposit × the assessment
  band's return share; payable (the clearing balance) = final − the months' prepay + deposit
  returned + the months' deductions (already taken from the months' payments).
A case's patient and other-fund payments are its total cost − its 统筹基金支付 (``fund_pay``),
or total cost × (1 − the fund's payment ratio) when the case does not state its fund payment;
a line's are their exact sum, rounded once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import msgspec

from ._point_value import PointValue, fund_point_values
from ._settle_policy import AssessmentBand, SettlementPolicy, SettlementPolicyError

__all__ = [
    "CaseChange",
    "HospitalInput",
    "MonthLine",
    "PriorMonths",
    "SettleCase",
    "YearLine",
    "assessment_band",
    "case_changes",
    "case_points",
    "money",
    "settle_month",
    "settle_year",
    "settlement_totals",
    "surplus_overspend",
]

FEN = Decimal("0.01")
POINT = Decimal("0.0001")
ZERO = Decimal("0.00")


def money(value: Decimal) -> Decimal:
    """Round to the fen, ROUND_HALF_UP: the one money rounding rule."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def case_points(score: float | Decimal) -> Decimal:
    """A case's points: its score rounded to 0.0001 (as stored scores are printed)."""
    return Decimal(str(score)).quantize(POINT, rounding=ROUND_HALF_UP)


class SettleCase(msgspec.Struct, frozen=True, kw_only=True):
    """One scored case as settlement sees it (latest revision)."""

    fixmedins_code: str
    setl_id: str
    revision: int
    fund: str
    points: Decimal
    total_cost: Decimal
    fund_pay: Decimal | None = None


class HospitalInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per hospital inputs of a run: assessment score (year) and 审核扣减 per fund."""

    score: Decimal | None = None
    deductions: dict[str, Decimal] = {}


class PriorMonths(msgspec.Struct, frozen=True, kw_only=True):
    """What the year's month runs settled for one hospital × fund (their latest runs)."""

    prepaid: Decimal = ZERO
    deposit: Decimal = ZERO
    deductions: Decimal = ZERO


class MonthLine(msgspec.Struct, frozen=True, kw_only=True):
    fixmedins_code: str
    fund: str
    cases: int
    points: Decimal
    point_value: Decimal
    dip_amount: Decimal
    other_payments: Decimal
    deductions: Decimal
    settled: Decimal
    deposit: Decimal
    payable: Decimal


class YearLine(msgspec.Struct, frozen=True, kw_only=True):
    fixmedins_code: str
    fund: str
    cases: int
    points: Decimal
    special_points: Decimal
    point_value: Decimal
    dip_amount: Decimal
    special_amount: Decimal
    other_payments: Decimal
    assessment_score: Decimal
    coefficient: Decimal
    assessed: Decimal
    deductions: Decimal
    due: Decimal
    billed: Decimal
    band: Literal["surplus", "overspend", "even"]
    band_amount: Decimal  # surplus kept (+) or overspend borne by the fund (+)
    settled: Decimal  # the final amount for the year
    prepaid: Decimal
    deposit: Decimal  # withheld in the months
    deposit_returned: Decimal
    payable: Decimal  # the clearing balance


class CaseChange(msgspec.Struct, frozen=True, kw_only=True):
    """A case that differs from what the previous run of the period settled."""

    fixmedins_code: str
    setl_id: str
    change: Literal["new", "changed", "gone"]
    revision_before: int | None
    revision_after: int | None
    points_before: Decimal | None
    points_after: Decimal | None


class _Sums(msgspec.Struct):
    points: Decimal
    cost: Decimal
    other: Decimal  # unrounded: Σ (cost − fund_pay) + Σ cost × (1 − ratio) where not stated


def _sums(group: Sequence[SettleCase], payment_ratio: Decimal) -> _Sums:
    """One pass over a line's cases; the money is rounded by the caller, once per line."""
    points = cost = stated = unstated = Decimal(0)
    for c in group:
        points += c.points
        cost += c.total_cost
        if c.fund_pay is None:
            unstated += c.total_cost
        else:
            stated += c.total_cost - c.fund_pay
    return _Sums(points=points, cost=cost, other=stated + unstated * (1 - payment_ratio))


def _by_line(cases: Iterable[SettleCase]) -> dict[tuple[str, str], list[SettleCase]]:
    lines: dict[tuple[str, str], list[SettleCase]] = {}
    for c in cases:
        lines.setdefault((c.fixmedins_code, c.fund), []).append(c)
    return dict(sorted(lines.items()))


def _deduction(inputs: Mapping[str, HospitalInput], code: str, fund: str) -> Decimal:
    given = inputs.get(code)
    return money(given.deductions.get(fund, ZERO)) if given is not None else ZERO


def settle_month(
    policy: SettlementPolicy,
    cases: Iterable[SettleCase],
    inputs: Mapping[str, HospitalInput] | None = None,
) -> tuple[dict[str, PointValue], list[MonthLine]]:
    """The month's prepay lines, at each fund's 预算点值 (cases of funds the policy does not
    know must be left out by the caller)."""
    inputs = inputs or {}
    pvs = fund_point_values(policy, {})
    lines = []
    for (code, fund), group in _by_line(cases).items():
        fp = policy.funds[fund]
        epv = pvs[fund].estimate
        sums = _sums(group, fp.payment_ratio)
        points = sums.points
        dip_amount = money(points * epv)
        other = money(sums.other)
        settled = money(max(ZERO, dip_amount - other) * policy.prepay_ratio)
        deposit = money(settled * policy.deposit_ratio)
        deductions = _deduction(inputs, code, fund)
        lines.append(
            MonthLine(
                fixmedins_code=code,
                fund=fund,
                cases=len(group),
                points=points,
                point_value=epv,
                dip_amount=dip_amount,
                other_payments=other,
                deductions=deductions,
                settled=settled,
                deposit=deposit,
                payable=settled - deposit - deductions,
            )
        )
    return pvs, lines


def assessment_band(policy: SettlementPolicy, score: Decimal) -> AssessmentBand:
    """The band of an assessment score (lower bound inclusive; the last includes 100)."""
    bands = policy.assessment
    for i, band in enumerate(bands):
        last = i == len(bands) - 1
        if band.min_score <= score < band.max_score or (last and score == band.max_score):
            return band
    raise SettlementPolicyError(f"assessment score {score} outside 0..100")


def surplus_overspend(
    policy: SettlementPolicy, due: Decimal, billed: Decimal
) -> tuple[Literal["surplus", "overspend", "even"], Decimal]:
    """结余留用 / 合理超支分担 of one line: the surplus kept or the overspend the fund bears,
    band by band (a band [from, to) of the rate is the amount billed × from … billed × to of
    the difference), rounded once; nothing when nothing was billed."""
    diff = due - billed
    if diff == 0 or billed <= 0:
        return "even", ZERO
    amount = abs(diff)
    bands = (
        [(b.from_rate, b.to_rate, b.kept) for b in policy.surplus]
        if diff > 0
        else [(b.from_rate, b.to_rate, b.fund_share) for b in policy.overspend]
    )
    share = Decimal(0)
    for lo, hi, part in bands:
        low = billed * lo
        if amount <= low:
            break
        top = amount if hi is None else min(amount, billed * hi)
        share += (top - low) * part
    return ("surplus" if diff > 0 else "overspend"), money(share)


def settle_year(
    policy: SettlementPolicy,
    cases: Iterable[SettleCase],
    inputs: Mapping[str, HospitalInput],
    special_points: Mapping[tuple[str, str], Decimal] | None = None,
    prior: Mapping[tuple[str, str], PriorMonths] | None = None,
) -> tuple[dict[str, PointValue], list[YearLine]]:
    """The year's clearing lines. `special_points`: approved special-review points per
    (hospital, fund); they count in the fund's total score. `prior`: the months' prepay,
    deposit and deductions per (hospital, fund). Every hospital needs an assessment score."""
    special_points = special_points or {}
    prior = prior or {}
    by_line = _by_line(cases)
    for key in special_points:
        by_line.setdefault(key, [])
    for key in prior:
        by_line.setdefault(key, [])
    by_line = dict(sorted(by_line.items()))
    totals: dict[str, Decimal] = {}
    for (_, fund), group in by_line.items():
        add = sum((c.points for c in group), Decimal(0))
        totals[fund] = totals.get(fund, Decimal(0)) + add
    for (_, fund), sp in special_points.items():
        totals[fund] = totals.get(fund, Decimal(0)) + sp
    pvs = fund_point_values(policy, totals)
    missing = sorted(
        {code for code, _ in by_line if inputs.get(code) is None or inputs[code].score is None}
    )
    if missing:
        raise SettlementPolicyError(f"assessment score missing for {', '.join(missing)}")
    lines = []
    for (code, fund), group in by_line.items():
        fp = policy.funds[fund]
        spv = pvs[fund].value or Decimal(0)
        score = inputs[code].score
        assert score is not None
        band = assessment_band(policy, score)
        sums = _sums(group, fp.payment_ratio)
        points = sums.points
        sp = special_points.get((code, fund), Decimal(0))
        months = prior.get((code, fund), PriorMonths())
        dip_amount = money(points * spv)
        special = money(sp * spv)
        other = money(sums.other)
        assessed = money(max(ZERO, dip_amount - other) * band.coefficient)
        deductions = _deduction(inputs, code, fund) + months.deductions
        due = assessed + special - deductions
        billed = money(sums.cost) - other
        kind, band_amount = surplus_overspend(policy, due, billed)
        settled = billed + band_amount if kind == "surplus" else due + band_amount
        returned = money(months.deposit * band.deposit_return)
        lines.append(
            YearLine(
                fixmedins_code=code,
                fund=fund,
                cases=len(group),
                points=points,
                special_points=sp,
                point_value=spv,
                dip_amount=dip_amount,
                special_amount=special,
                other_payments=other,
                assessment_score=score,
                coefficient=band.coefficient,
                assessed=assessed,
                deductions=deductions,
                due=due,
                billed=billed,
                band=kind,
                band_amount=band_amount,
                settled=settled,
                prepaid=months.prepaid,
                deposit=months.deposit,
                deposit_returned=returned,
                payable=settled - months.prepaid + returned + months.deductions,
            )
        )
    return pvs, lines


def case_changes(
    before: Mapping[tuple[str, str], tuple[int, Decimal]],
    after: Mapping[tuple[str, str], tuple[int, Decimal]],
) -> list[CaseChange]:
    """What changed between two runs' case sets ((hospital, setl_id) → (revision, points)):
    new cases, cases with another revision or other points, cases no longer settled."""
    out = []
    for key in sorted(before.keys() | after.keys()):
        b, a = before.get(key), after.get(key)
        if b == a:
            continue
        change: Literal["new", "changed", "gone"] = (
            "new" if b is None else "gone" if a is None else "changed"
        )
        out.append(
            CaseChange(
                fixmedins_code=key[0],
                setl_id=key[1],
                change=change,
                revision_before=None if b is None else b[0],
                revision_after=None if a is None else a[0],
                points_before=None if b is None else b[1],
                points_after=None if a is None else a[1],
            )
        )
    return out


_SUMMED = (
    "points",
    "special_points",
    "dip_amount",
    "special_amount",
    "other_payments",
    "assessed",
    "deductions",
    "due",
    "billed",
    "band_amount",
    "settled",
    "prepaid",
    "deposit",
    "deposit_returned",
    "payable",
    "adjustment",
)


def settlement_totals(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A run's totals per fund and for the city from its lines as plain data (figures as
    text): sums of the lines, never recomputed, so they reconcile to the fen."""

    def add(into: dict[str, Any], r: Mapping[str, Any]) -> None:
        into["lines"] = into.get("lines", 0) + 1
        into["cases"] = into.get("cases", 0) + r["cases"]
        for name in _SUMMED:
            if name in r:
                into[name] = str(Decimal(into.get(name, "0")) + Decimal(str(r[name])))

    city: dict[str, Any] = {}
    funds: dict[str, dict[str, Any]] = {}
    for r in records:
        add(city, r)
        add(funds.setdefault(r["fund"], {}), r)
    return {"city": city, "funds": dict(sorted(funds.items()))}
