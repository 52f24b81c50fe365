"""Rules simulation (测算): a year of stored cases under draft rules, next to what is published.

A city weighs draft rules by what they would change: per hospital, the cases, the points, the
payment and the deviation kinds under the published results ("current") and under the draft.
`SimulationTally` takes each stored case once — its facts and its published outcome — scores
the facts under the draft with the one scorer (`assess`, as the pipeline does) and keeps only
sums, so a year of a large city (about a million cases) fits in memory and one core.

Exactness: points are summed as integers in units of 1e-8 point (every case score is rounded
to at most 8 decimals by its rules, so the sums are exact); money is `Decimal`. The rounding
rule, stated once: a hospital's payment under a set of rules is, for each fund (insutype), its
points in that fund × the fund's point value, rounded half-up to the fen; then summed over its
funds. Totals are sums of the hospital lines, so they reconcile to the fen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from contracts.dip import CaseFacts

from ._assess import assess
from ._model import RuleSet
from ._point_value import PointValue, fund_point_values
from ._settle_policy import SettlementPolicy

__all__ = [
    "UNSCORED",
    "HospitalLine",
    "HospitalTally",
    "Simulation",
    "SimulationTally",
    "fund_point_value",
    "side_point_values",
    "simulate_lines",
    "tally_cases",
]

UNSCORED = "unscored"
"""The deviation kind counted for a case that is not scored (published or under the draft)."""

_SCALE = 10**8  # points are summed in units of 1e-8: case scores have at most 8 decimals
_FEN = Decimal("0.01")
_PCT = Decimal("0.01")


def _units(score: float | None) -> int:
    return 0 if score is None else round(score * _SCALE)


def _points(units: int) -> Decimal:
    """Exact points, without trailing zeros (and never in exponent form: 1500, not 1.5E+3)."""
    d = Decimal(units).scaleb(-8).normalize()
    return d.quantize(Decimal(1)) if d.as_tuple().exponent > 0 else d  # type: ignore[operator]


@dataclass(slots=True)
class HospitalTally:
    """The running sums of one hospital: points per fund (1e-8 units) and deviation counts."""

    cases: int = 0
    current: dict[str, int] = field(default_factory=dict)
    draft: dict[str, int] = field(default_factory=dict)
    current_kinds: dict[str, int] = field(default_factory=dict)
    draft_kinds: dict[str, int] = field(default_factory=dict)


class SimulationTally:
    """Score stored cases under the draft rules, one at a time, keeping per-hospital sums."""

    def __init__(self, draft: RuleSet) -> None:
        self.draft = draft
        self.hospitals: dict[str, HospitalTally] = {}
        self.cases = 0

        def rules_for(_city: str, _year: int) -> RuleSet:
            return draft  # every case of the city and year: the draft stands for its rules

        self._rules_for = rules_for

    def add(
        self,
        fixmedins_code: str,
        facts: CaseFacts,
        received_at: datetime,
        current_score: float | None,
        current_kind: str | None,
    ) -> None:
        """One stored case: its facts, when it arrived, and its published score and deviation
        kind (None, None: published unscored)."""
        a = assess(facts, self._rules_for, province=None, received_at=received_at)
        h = self.hospitals.get(fixmedins_code)
        if h is None:
            h = self.hospitals[fixmedins_code] = HospitalTally()
        h.cases += 1
        self.cases += 1
        fund = facts.insutype
        kind = current_kind or UNSCORED
        h.current_kinds[kind] = h.current_kinds.get(kind, 0) + 1
        if current_score is not None:
            h.current[fund] = h.current.get(fund, 0) + _units(current_score)
        s = a.score
        kind = UNSCORED if s is None else s.deviation
        h.draft_kinds[kind] = h.draft_kinds.get(kind, 0) + 1
        if s is not None:
            h.draft[fund] = h.draft.get(fund, 0) + _units(s.case_score)

    def fund_points(self, draft: bool) -> dict[str, Decimal]:
        """The city's total points per fund, published (False) or under the draft (True)."""
        units: dict[str, int] = {}
        for h in self.hospitals.values():
            for fund, n in (h.draft if draft else h.current).items():
                units[fund] = units.get(fund, 0) + n
        return {fund: _points(n) for fund, n in sorted(units.items())}

    def funds(self) -> list[str]:
        found = {f for h in self.hospitals.values() for f in (*h.current, *h.draft)}
        return sorted(found)


def fund_point_value(point_values: Mapping[str, Decimal], fund: str) -> Decimal | None:
    """A fund's point value from a mapping keyed by insutype, with "default" for the rest."""
    pv = point_values.get(fund)
    return point_values.get("default") if pv is None else pv


def side_point_values(
    rules_point_values: Mapping[str, Decimal],
    policy: SettlementPolicy | None,
    fund_points: Mapping[str, Decimal],
) -> tuple[dict[str, Decimal], dict[str, PointValue]]:
    """One side's point value per fund: with a settlement policy, each fund it names is priced
    at its 结算点值 for that side's own total points (budget ÷ payment ratio ÷ points, within
    the policy's floor and ceiling of the 预算点值; the 预算点值 when the fund has no points),
    so more points city-wide lower every point's value; any other fund (and "default") at the
    rules' own point value. Returns the point values and the policy's details per fund."""
    out = dict(rules_point_values)
    details: dict[str, PointValue] = {}
    if policy is not None:
        details = fund_point_values(policy, fund_points)
        for fund, pv in details.items():
            out[fund] = pv.estimate if pv.value is None else pv.value
    return out, details


@dataclass(frozen=True, slots=True)
class HospitalLine:
    """One hospital's figures under the published results and under the draft."""

    fixmedins_code: str
    cases: int
    points_current: Decimal
    points_draft: Decimal
    payment_current: Decimal
    payment_draft: Decimal
    delta: Decimal
    delta_pct: Decimal | None  # None when nothing is paid today
    kinds_current: dict[str, int]
    kinds_draft: dict[str, int]


@dataclass(frozen=True, slots=True)
class Simulation:
    """The per-hospital lines (by code), the city line (their sums) and the point values."""

    lines: list[HospitalLine]
    total: HospitalLine
    point_values_current: dict[str, Decimal]
    point_values_draft: dict[str, Decimal]


def _pay(units: Mapping[str, int], point_values: Mapping[str, Decimal]) -> Decimal:
    total = Decimal(0)
    for fund, n in units.items():
        pv = fund_point_value(point_values, fund)
        if pv is None or not n:
            continue
        total += (_points(n) * pv).quantize(_FEN, ROUND_HALF_UP)
    return total


def _pct(delta: Decimal, base: Decimal) -> Decimal | None:
    return None if not base else (delta * 100 / base).quantize(_PCT, ROUND_HALF_UP)


def _merge(into: dict[str, int], add: Mapping[str, int]) -> None:
    for k, n in add.items():
        into[k] = into.get(k, 0) + n


def _line(
    code: str,
    h: HospitalTally,
    pv_current: Mapping[str, Decimal],
    pv_draft: Mapping[str, Decimal],
) -> HospitalLine:
    cur = _pay(h.current, pv_current)
    new = _pay(h.draft, pv_draft)
    return HospitalLine(
        fixmedins_code=code,
        cases=h.cases,
        points_current=_points(sum(h.current.values())),
        points_draft=_points(sum(h.draft.values())),
        payment_current=cur,
        payment_draft=new,
        delta=new - cur,
        delta_pct=_pct(new - cur, cur),
        kinds_current=dict(sorted(h.current_kinds.items())),
        kinds_draft=dict(sorted(h.draft_kinds.items())),
    )


def simulate_lines(
    tally: SimulationTally,
    pv_current: Mapping[str, Decimal],
    pv_draft: Mapping[str, Decimal],
) -> Simulation:
    """The lines of a finished tally, priced at each side's point value per fund (insutype,
    "default" for the rest; a fund with none is not paid). The city line is the sum."""
    lines = [_line(code, h, pv_current, pv_draft) for code, h in sorted(tally.hospitals.items())]
    cur = sum((ln.payment_current for ln in lines), Decimal(0))
    new = sum((ln.payment_draft for ln in lines), Decimal(0))
    kinds_cur: dict[str, int] = {}
    kinds_new: dict[str, int] = {}
    for ln in lines:
        _merge(kinds_cur, ln.kinds_current)
        _merge(kinds_new, ln.kinds_draft)
    total = HospitalLine(
        fixmedins_code="",
        cases=tally.cases,
        points_current=_points(sum(sum(h.current.values()) for h in tally.hospitals.values())),
        points_draft=_points(sum(sum(h.draft.values()) for h in tally.hospitals.values())),
        payment_current=cur,
        payment_draft=new,
        delta=new - cur,
        delta_pct=_pct(new - cur, cur),
        kinds_current=dict(sorted(kinds_cur.items())),
        kinds_draft=dict(sorted(kinds_new.items())),
    )
    return Simulation(lines, total, dict(pv_current), dict(pv_draft))


def tally_cases(
    draft: RuleSet,
    cases: Iterable[tuple[str, CaseFacts, datetime, float | None, str | None]],
) -> SimulationTally:
    """A tally of many cases at once (tests, the bench)."""
    tally = SimulationTally(draft)
    for code, facts, at, score, kind in cases:
        tally.add(code, facts, at, score, kind)
    return tally
