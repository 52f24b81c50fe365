"""Rules simulation (测算), the pure half: hand-computed figures on a tiny city.

Catalog: core group G (K35.8 + 47.0100), score 1000, reference cost 10 000 at level 3A,
8 000 at level 2 (deviation bounds 0.5 / 2, low cases not multiplied by K). Current rules:
3A × 1.0, 2 × 0.8; the draft raises 3A to 1.1. Point values 310 → 12.00, 390 → 10.00.

Hospital H1 (3A): a normal 310 case (cost 10 000: ratio 1) and a high 390 case (cost 25 000:
ratio 2.5) — published 1000 and (2.5 − 2 + 1) × 1000 × 1.0 = 1500 points. Hospital H2 (2): a
low 310 case (cost 2 000, ratio 0.25: 1000 × 0.25 = 250 points) and a 310 case published
unscored (it waited for rules) that the draft scores normal: 1000 × 0.8 = 800.
"""

from __future__ import annotations

import random
import tomllib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.builders import dip_case
from workers.dip import (
    Group,
    Level,
    Policy,
    RuleSet,
    SpecialReviewPolicy,
    group_and_score,
    make_case_facts,
    make_ruleset,
    parse_settlement_policy,
    sample_rules,
)
from workers.dip._sample import DATA_DIR
from workers.dip._simulate import side_point_values, simulate_lines, tally_cases

AT = datetime(2026, 6, 1, tzinfo=UTC)
PV = {"310": Decimal("12.00"), "390": Decimal("10.00")}
G = Group(
    code="G",
    kind="core",
    diag="K35.8",
    score=1000.0,
    operations=("47.0100",),
    ref_cost_all=Decimal("9000"),
    ref_costs={"3A": Decimal("10000"), "2": Decimal("8000")},
)


def _rules(k3a: float, **kw: Any) -> RuleSet:
    policy: dict[str, Any] = {
        "city": "440100",
        "clearing_year": 2026,
        "version": f"k{k3a}",
        "levels": (Level(code="3A", coefficient=k3a), Level(code="2", coefficient=0.8)),
        "point_values": PV,
        "special_review": SpecialReviewPolicy(min_ratio=None),
    }
    policy.update(kw)
    return make_ruleset(Policy(**policy), (G,))


def _cases() -> list[tuple[str, Any, datetime, float | None, str | None]]:
    def case(code: str, key: str, level: str, fund: str, cost: str) -> Any:
        return dip_case(
            case_key=f"{code}:{key}",
            fixmedins_code=code,
            hospital_level=level,
            insutype=fund,
            total_cost=Decimal(cost),
            discharge_date="2026-05-20",
        )

    return [
        ("H1", case("H1", "a", "3A", "310", "10000"), AT, 1000.0, "normal"),
        ("H1", case("H1", "b", "3A", "390", "25000"), AT, 1500.0, "high"),
        ("H2", case("H2", "c", "2", "310", "2000"), AT, 250.0, "low"),
        ("H2", case("H2", "d", "2", "310", "8000"), AT, None, None),
    ]


def test_per_hospital_figures_by_hand() -> None:
    tally = tally_cases(_rules(1.1), _cases())
    sim = simulate_lines(tally, PV, PV)
    h1, h2 = sim.lines
    # H1 draft: 1000 × 1.1 = 1100 (310) and (2.5 − 2 + 1) × 1000 × 1.1 = 1650 (390).
    assert (h1.fixmedins_code, h1.cases) == ("H1", 2)
    assert (h1.points_current, h1.points_draft) == (Decimal(2500), Decimal(2750))
    # current 1000 × 12 + 1500 × 10 = 27 000; draft 1100 × 12 + 1650 × 10 = 29 700.
    assert (h1.payment_current, h1.payment_draft) == (Decimal("27000.00"), Decimal("29700.00"))
    assert (h1.delta, h1.delta_pct) == (Decimal("2700.00"), Decimal("10.00"))
    assert h1.kinds_current == h1.kinds_draft == {"high": 1, "normal": 1}
    # H2: current 250 × 12 = 3 000; draft (250 + 800) × 12 = 12 600, +320 %.
    assert (h2.points_current, h2.points_draft) == (Decimal(250), Decimal(1050))
    assert (h2.payment_current, h2.payment_draft) == (Decimal("3000.00"), Decimal("12600.00"))
    assert (h2.delta, h2.delta_pct) == (Decimal("9600.00"), Decimal("320.00"))
    assert h2.kinds_current == {"low": 1, "unscored": 1}
    assert h2.kinds_draft == {"low": 1, "normal": 1}
    # The city line is the sum of the lines: 30 000 → 42 300, +41 %.
    t = sim.total
    assert (t.cases, t.points_current, t.points_draft) == (4, Decimal(2750), Decimal(3800))
    assert (t.payment_current, t.payment_draft) == (Decimal("30000.00"), Decimal("42300.00"))
    assert (t.delta, t.delta_pct) == (Decimal("12300.00"), Decimal("41.00"))
    assert t.kinds_draft == {"high": 1, "low": 1, "normal": 2}
    assert tally.fund_points(draft=True) == {"310": Decimal(2150), "390": Decimal(1650)}


def test_each_side_priced_at_its_own_point_value() -> None:
    """The draft's lower 职工 point value: H1 draft 1100 × 11 + 1650 × 10 = 28 600."""
    draft_pv = {"310": Decimal("11.00"), "default": Decimal("10.00")}
    sim = simulate_lines(tally_cases(_rules(1.1), _cases()), PV, draft_pv)
    assert sim.lines[0].payment_draft == Decimal("28600.00")
    assert sim.point_values_draft == draft_pv


def test_points_are_exact_and_money_rounded_half_up_per_fund() -> None:
    """0.1 + 0.2 + 0.3005 = 0.6005 points exactly; × 12.35 = 7.416175 → 7.42 (half-up)."""
    base = _cases()[0]
    cases = [("H9", base[1], AT, score, "normal") for score in (0.1, 0.2, 0.3005)]
    sim = simulate_lines(tally_cases(_rules(1.0), cases), {"310": Decimal("12.35")}, PV)
    line = sim.lines[0]
    assert line.points_current == Decimal("0.6005")
    assert line.payment_current == Decimal("7.42")
    # A fund without a point value on a side is not paid there (no "default").
    assert simulate_lines(tally_cases(_rules(1.0), cases), {}, PV).total.payment_current == 0
    assert line.delta_pct is not None


def test_nothing_paid_today_has_no_percentage() -> None:
    cases = [(*c[:3], None, None) for c in _cases()]
    sim = simulate_lines(tally_cases(_rules(1.0), cases), PV, PV)
    assert sim.total.payment_current == 0 and sim.total.delta_pct is None
    assert sim.total.kinds_current == {"unscored": 4}


def test_draft_side_is_the_normal_scorer_on_varied_cases() -> None:
    """On generated cases of every kind (core, comprehensive, primary, ungrouped, deviations),
    the draft side equals Σ of the scorer's own case scores per hospital and fund, and the
    same rules as current give no delta."""
    rules = sample_rules("440100")
    rng = random.Random(16)
    facts = [make_case_facts(rng, (rules,)) for _ in range(400)]
    published = []
    expected: dict[tuple[str, str], Decimal] = {}
    kinds: dict[str, int] = {}
    for f in facts:
        try:
            _, s = group_and_score(f, rules)
        except ValueError:
            published.append((f.fixmedins_code, f, AT, None, None))
            kinds["unscored"] = kinds.get("unscored", 0) + 1
            continue
        key = (f.fixmedins_code, f.insutype)
        expected[key] = expected.get(key, Decimal(0)) + Decimal(repr(s.case_score))
        kinds[s.deviation] = kinds.get(s.deviation, 0) + 1
        published.append((f.fixmedins_code, f, AT, s.case_score, s.deviation))
    assert len(kinds) >= 4, kinds  # varied: several deviation kinds and unscored
    tally = tally_cases(rules, published)
    for code, h in tally.hospitals.items():
        for fund, units in h.draft.items():
            assert Decimal(units).scaleb(-8) == expected[(code, fund)]
    sim = simulate_lines(tally, rules.policy.point_values, rules.policy.point_values)
    assert all(ln.delta == 0 and ln.kinds_current == ln.kinds_draft for ln in sim.lines)
    assert sim.total.kinds_draft == dict(sorted(kinds.items()))
    assert sum(ln.payment_draft for ln in sim.lines) == sim.total.payment_draft


def test_settlement_point_value_follows_each_sides_points() -> None:
    """A settlement policy prices 职工 at budget ÷ payment ratio ÷ the side's 310 points:
    78 000 ÷ 0.78 = 100 000 yuan; current 1000 + 250 = 1250 points → 80.0000, draft 1100 +
    250 + 800 = 2150 → 46.5116 (4 decimals, half-up). 居民: 16 500 ÷ 1 ÷ 1500 = 11.0000
    current, ÷ 1650 = 10.0000 draft. H1 current 1000 × 80 + 1500 × 11 = 96 500.00; draft
    1100 × 46.5116 = 51 162.76 + 1650 × 10 = 67 662.76. "default" stays the rules'."""
    doc = tomllib.loads((DATA_DIR / "440100-2026-settlement.toml").read_text(encoding="utf-8"))
    doc["funds"] = {
        "310": {"budget": "78000", "payment_ratio": "0.78", "point_value": {"initial": "46"}},
        "390": {"budget": "16500", "payment_ratio": "1", "point_value": {"initial": "10"}},
    }
    policy = parse_settlement_policy(doc)
    tally = tally_cases(_rules(1.1), _cases())
    rules_pv = {**PV, "default": Decimal("9.00")}
    cur, cur_details = side_point_values(rules_pv, policy, tally.fund_points(draft=False))
    new, _ = side_point_values(rules_pv, policy, tally.fund_points(draft=True))
    assert cur == {"310": Decimal("80.0000"), "390": Decimal("11.0000"), "default": Decimal(9)}
    assert new == {"310": Decimal("46.5116"), "390": Decimal("10.0000"), "default": Decimal(9)}
    assert cur_details["310"].total_score == Decimal(1250)
    h1 = simulate_lines(tally, cur, new).lines[0]
    assert (h1.payment_current, h1.payment_draft) == (Decimal("96500.00"), Decimal("67662.76"))
    # A bound of the 预算点值 holds the value: floor 0.9 × 46 = 41.4 > 100 000 ÷ 2500.
    doc["funds"]["310"]["point_value"] = {"initial": "46", "floor": "0.9"}
    bounded, details = side_point_values(PV, parse_settlement_policy(doc), {"310": Decimal(2500)})
    assert bounded["310"] == Decimal("41.4000") and details["310"].bound == "floor"
