"""A city's settlement policy for one clearing year: budgets, point values, prepay, deposit,
assessment, surplus/overspend bands, special-review quota — every figure configuration.

Published as its own TOML file (``kind = "settlement"``), imported with ``dipgw rules import
CITY YEAR settlement.toml`` next to the DIP rules and versioned the same way (a budget changes
during the year without touching the catalog). `parse_settlement_policy` checks the whole
policy and names the field of the first contradiction or gap (`SettlementPolicyError`).

Ratios are fractions (``0.9`` = 90 %); bands are lower-bound inclusive, upper exclusive.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any, Literal

import msgspec

from ._errors import DipError

__all__ = [
    "AssessmentBand",
    "FundPolicy",
    "HistoryHospital",
    "HistoryYear",
    "OverspendBand",
    "PointValueMethod",
    "SettlementPolicy",
    "SettlementPolicyError",
    "SurplusBand",
    "decode_settlement_policy",
    "encode_settlement_policy",
    "parse_settlement_policy",
    "settlement_policy_hash",
]

FUND_NAMES = {"310": "职工基本医疗保险", "390": "城乡居民基本医疗保险"}


class SettlementPolicyError(DipError, ValueError):
    """The settlement policy is incomplete or contradicts itself; the message names the field."""


class HistoryHospital(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One hospital's inpatient cost and DIP score in a history year (for the trimmed method)."""

    code: str
    total_cost: Decimal
    total_score: Decimal


class HistoryYear(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One of the (usually three) history years the 年初点值 is measured on. With
    ``hospitals`` given, the year's totals are their sums (``total_*`` may be left out)."""

    year: int
    total_cost: Decimal | None = None
    total_score: Decimal | None = None
    hospitals: tuple[HistoryHospital, ...] = ()


class PointValueMethod(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """年初点值 (the 预算点值 the months prepay with) and the bounds of the 结算点值.

    ``initial``: the 年初点值 as published; otherwise it is Σ wᵢ·costᵢ ÷ Σ wᵢ·scoreᵢ over
    ``history`` (oldest first) with ``weights`` (DIP 3.0: 1:2:7). ``trim = [lo, hi]``
    (quantiles, e.g. 0.025/0.975) drops, per year, the hospitals whose 每指数点值 (cost ÷
    score) lies outside those quantiles (needs ``hospitals`` in every year). ``floor`` /
    ``ceiling``: the 结算点值 is kept within floor × 预算点值 … ceiling × 预算点值.
    """

    initial: Decimal | None = None
    weights: tuple[Decimal, ...] = (Decimal(1), Decimal(2), Decimal(7))
    history: tuple[HistoryYear, ...] = ()
    trim: tuple[Decimal, Decimal] | None = None
    floor: Decimal | None = None
    ceiling: Decimal | None = None


class FundPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One fund (insutype ``310`` 职工 / ``390`` 居民): its DIP budget for the year (按病种付费
    总额), its 医保支付比例 and its point-value method."""

    budget: Decimal
    payment_ratio: Decimal
    point_value: PointValueMethod
    name: str = ""


class AssessmentBand(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Assessment score in [min_score, max_score) (the last band includes its max) →
    考核系数 and the share of the withheld deposit returned at clearing."""

    min_score: Decimal
    max_score: Decimal
    coefficient: Decimal
    deposit_return: Decimal


class SurplusBand(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """结余留用: the part of the surplus rate (surplus ÷ billed) in [from, to) is kept at
    ``kept``; ``to`` omitted = no upper end (last band only)."""

    from_rate: Decimal = msgspec.field(name="from")
    to_rate: Decimal | None = msgspec.field(name="to", default=None)
    kept: Decimal


class OverspendBand(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """合理超支分担: the part of the overspend rate (overspend ÷ billed) in [from, to) is
    borne by the fund at ``fund_share``."""

    from_rate: Decimal = msgspec.field(name="from")
    to_rate: Decimal | None = msgspec.field(name="to", default=None)
    fund_share: Decimal


class SettlementPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The settlement TOML of one city and clearing year (``kind = "settlement"``)."""

    kind: Literal["settlement"]
    city: str
    clearing_year: int
    version: str
    funds: dict[str, FundPolicy]
    prepay_ratio: Decimal
    deposit_ratio: Decimal
    special_review_quota_permille: Decimal
    assessment: tuple[AssessmentBand, ...]
    surplus: tuple[SurplusBand, ...]
    overspend: tuple[OverspendBand, ...]
    city_name: str = ""
    point_value_decimals: int = 4


_encoder = msgspec.json.Encoder(decimal_format="string", order="sorted")
_decoder = msgspec.json.Decoder(SettlementPolicy)


def encode_settlement_policy(policy: SettlementPolicy) -> bytes:
    """Canonical JSON (sorted keys, decimals as strings): equal policies give equal bytes."""
    return _encoder.encode(policy)


def decode_settlement_policy(data: bytes | str) -> SettlementPolicy:
    return _decoder.decode(data)


def settlement_policy_hash(policy: SettlementPolicy) -> str:
    return hashlib.sha256(encode_settlement_policy(policy)).hexdigest()


def parse_settlement_policy(doc: dict[str, Any]) -> SettlementPolicy:
    """The policy from a parsed TOML document, checked whole (`SettlementPolicyError`)."""
    try:
        policy = msgspec.convert(doc, SettlementPolicy, strict=False)
    except msgspec.ValidationError as exc:
        raise SettlementPolicyError(f"settlement policy: {exc}") from None
    _check(policy)
    return policy


def _ratio(field: str, value: Decimal, *, above_zero: bool = False) -> None:
    if not value.is_finite() or value < 0 or value > 1 or (above_zero and value == 0):
        span = "(0, 1]" if above_zero else "[0, 1]"
        raise SettlementPolicyError(f"{field} = {value}: a ratio must lie in {span}")


def _positive(field: str, value: Decimal) -> None:
    if not value.is_finite() or value <= 0:
        raise SettlementPolicyError(f"{field} = {value}: must be > 0")


def _check(p: SettlementPolicy) -> None:
    if len(p.city) != 6 or not p.city.isdigit() or not p.city.endswith("00"):
        raise SettlementPolicyError(f"city = {p.city!r}: not a city (DIP pool) region code")
    if not 2000 <= p.clearing_year <= 2100:
        raise SettlementPolicyError(f"clearing_year = {p.clearing_year}: out of range")
    if not p.version.strip():
        raise SettlementPolicyError("version: must not be empty")
    if not 0 <= p.point_value_decimals <= 8:
        raise SettlementPolicyError("point_value_decimals: must lie in 0..8")
    for code in ("310", "390"):
        if code not in p.funds:
            raise SettlementPolicyError(
                f"funds.{code}: missing ({FUND_NAMES[code]}: budget, payment_ratio, point_value)"
            )
    for code, fund in p.funds.items():
        _check_fund(f"funds.{code}", fund)
    _ratio("prepay_ratio", p.prepay_ratio, above_zero=True)
    _ratio("deposit_ratio", p.deposit_ratio)
    if p.special_review_quota_permille < 0 or p.special_review_quota_permille > 1000:
        raise SettlementPolicyError(
            f"special_review_quota_permille = {p.special_review_quota_permille}: must lie in"
            " 0..1000 (‰ of the year's cases)"
        )
    _check_assessment(p.assessment)
    _check_rate_bands("surplus", [(b.from_rate, b.to_rate, b.kept) for b in p.surplus], "kept")
    _check_rate_bands(
        "overspend", [(b.from_rate, b.to_rate, b.fund_share) for b in p.overspend], "fund_share"
    )


def _check_fund(at: str, fund: FundPolicy) -> None:
    _positive(f"{at}.budget", fund.budget)
    _ratio(f"{at}.payment_ratio", fund.payment_ratio, above_zero=True)
    pv = fund.point_value
    at = f"{at}.point_value"
    if pv.initial is not None:
        if pv.history:
            raise SettlementPolicyError(f"{at}: give either initial or history, not both")
        _positive(f"{at}.initial", pv.initial)
    else:
        if not pv.history:
            raise SettlementPolicyError(f"{at}: missing initial (年初点值) or history")
        if len(pv.weights) != len(pv.history):
            raise SettlementPolicyError(
                f"{at}.weights: {len(pv.weights)} weights for {len(pv.history)} history years"
            )
        for i, w in enumerate(pv.weights):
            _positive(f"{at}.weights[{i}]", w)
        years = [h.year for h in pv.history]
        if years != sorted(set(years)):
            raise SettlementPolicyError(f"{at}.history: years must be distinct, oldest first")
        for i, h in enumerate(pv.history):
            _check_history(f"{at}.history[{i}]", h, trimmed=pv.trim is not None)
    if pv.trim is not None:
        lo, hi = pv.trim
        _ratio(f"{at}.trim[0]", lo)
        _ratio(f"{at}.trim[1]", hi)
        if lo >= hi:
            raise SettlementPolicyError(f"{at}.trim: lower quantile {lo} ≥ upper {hi}")
        if pv.initial is not None:
            raise SettlementPolicyError(f"{at}.trim: only with history (no initial)")
    if pv.floor is not None:
        _positive(f"{at}.floor", pv.floor)
    if pv.ceiling is not None:
        _positive(f"{at}.ceiling", pv.ceiling)
    if pv.floor is not None and pv.ceiling is not None and pv.floor > pv.ceiling:
        raise SettlementPolicyError(f"{at}: floor {pv.floor} above ceiling {pv.ceiling}")


def _check_history(at: str, h: HistoryYear, *, trimmed: bool) -> None:
    if h.hospitals:
        for j, hosp in enumerate(h.hospitals):
            _positive(f"{at}.hospitals[{j}].total_cost", hosp.total_cost)
            _positive(f"{at}.hospitals[{j}].total_score", hosp.total_score)
        return
    if trimmed:
        raise SettlementPolicyError(f"{at}.hospitals: trim needs every year's hospitals")
    if h.total_cost is None or h.total_score is None:
        raise SettlementPolicyError(f"{at}: missing total_cost/total_score (or hospitals)")
    _positive(f"{at}.total_cost", h.total_cost)
    _positive(f"{at}.total_score", h.total_score)


def _check_assessment(bands: tuple[AssessmentBand, ...]) -> None:
    if not bands:
        raise SettlementPolicyError("assessment: missing (score bands → coefficient)")
    expected = Decimal(0)
    for i, b in enumerate(bands):
        at = f"assessment[{i}]"
        if b.min_score != expected:
            what = "overlaps the band before" if b.min_score < expected else "leaves a gap"
            raise SettlementPolicyError(f"{at}.min_score = {b.min_score}: {what} (≠ {expected})")
        if b.max_score <= b.min_score:
            raise SettlementPolicyError(f"{at}.max_score = {b.max_score}: ≤ min_score")
        _positive(f"{at}.coefficient", b.coefficient)
        _ratio(f"{at}.deposit_return", b.deposit_return)
        expected = b.max_score
    if expected != 100:
        raise SettlementPolicyError(
            f"assessment[{len(bands) - 1}].max_score = {expected}: the bands must cover 0..100"
        )


def _check_rate_bands(
    name: str, bands: list[tuple[Decimal, Decimal | None, Decimal]], share: str
) -> None:
    if not bands:
        raise SettlementPolicyError(f"{name}: missing (rate bands → {share})")
    expected: Decimal | None = Decimal(0)
    for i, (lo, hi, value) in enumerate(bands):
        at = f"{name}[{i}]"
        if expected is None:
            raise SettlementPolicyError(f"{at}: after a band without `to` (open-ended)")
        if lo != expected:
            what = "overlaps the band before" if lo < expected else "leaves a gap"
            raise SettlementPolicyError(f"{at}.from = {lo}: {what} (≠ {expected})")
        if hi is not None and hi <= lo:
            raise SettlementPolicyError(f"{at}.to = {hi}: ≤ from")
        _ratio(f"{at}.{share}", value)
        expected = hi
