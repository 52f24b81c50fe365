"""Scoring: every deviation variant, hand-computed (the arithmetic is in the comments).

Test catalog: core group G (K35.8 + 47.0100), score 1000, reference cost 10 000 at level 3A,
8 000 at level 2 (coefficient 0.8), 9 000 all levels. Point values: 310 → 12.00, 390 → 10.00.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from tests.builders import dip_case
from workers.dip import (
    Adjustments,
    AgeBand,
    CaseFacts,
    DeviationPolicy,
    Group,
    IcuBand,
    Level,
    Policy,
    PrimaryPolicy,
    RuleSet,
    ScoreError,
    ScoreResult,
    SeverityTier,
    SpecialReviewPolicy,
    UnmatchedPolicy,
    group,
    group_and_score,
    make_ruleset,
    sample_rules,
    score,
)

G = Group(
    code="G",
    kind="core",
    diag="K35.8",
    score=1000.0,
    operations=("47.0100",),
    ref_cost_all=Decimal("9000"),
    ref_costs={"3A": Decimal("10000"), "2": Decimal("8000")},
)
GROUPS = (
    G,
    Group(
        code="C",
        kind="comprehensive",
        diag="K35",
        score=500.0,
        treatment="conservative",
        ref_cost_all=Decimal("4000"),
    ),
    Group(code="P", kind="primary", diag="J06.9", score=300.0, ref_cost_all=Decimal("3000")),
    Group(code="Z", kind="core", diag="Z38.0", score=0.0),
    Group(code="B", kind="bed_day", diag="F20", score=12.0),
    Group(code="Q", kind="core", diag="Q99.9", score=1333.0),
)


def _rules(**kw: Any) -> RuleSet:
    base: dict[str, Any] = {
        "city": "440100",
        "clearing_year": 2026,
        "version": "t",
        "levels": (
            Level(code="3A", coefficient=1.0),
            Level(code="2", coefficient=0.8),
            Level(code="2C", coefficient=0.75),
        ),
        "point_values": {"310": Decimal("12.00"), "390": Decimal("10.00")},
        "special_review": SpecialReviewPolicy(min_ratio=None),
    }
    base.update(kw)
    return make_ruleset(Policy(**base), GROUPS)


def _case(cost: str, diag: str = "K35.800", **kw: Any) -> CaseFacts:
    base: dict[str, Any] = {
        "case_key": "k",
        "hospital_level": "2",
        "main_diag_code": diag,
        "operations": (("47.0100", "surgery"),) if diag.startswith("K35.8") else (),
        "total_cost": Decimal(cost),
    }
    return dip_case(**{**base, **kw})


def _score(case: CaseFacts, rules: RuleSet) -> ScoreResult:
    return group_and_score(case, rules)[1]


def test_normal_core_case() -> None:
    # ratio 8000 / 8000 = 1 → 1000 × 0.8 = 800 points; 800 × 12.00 = 9600.00
    s = _score(_case("8000"), _rules())
    assert (s.deviation, s.ratio, s.case_score) == ("normal", 1.0, 800.0)
    assert s.estimated_payment == Decimal("9600.00")


def test_point_value_per_insurance_type() -> None:
    # resident (390): 800 × 10.00 = 8000.00
    s = _score(_case("8000", insutype="390"), _rules())
    assert s.estimated_payment == Decimal("8000.00") and s.point_value == Decimal("10.00")
    with pytest.raises(ScoreError) as e:
        _score(_case("8000", insutype="510"), _rules())
    assert e.value.field == "insutype"
    # a "default" point value covers the other insurance types: 800 × 11.00 = 8800.00
    rules = _rules(point_values={"310": Decimal("12"), "default": Decimal("11.00")})
    assert _score(_case("8000", insutype="510"), rules).estimated_payment == Decimal("8800.00")


def test_group_level_coefficient_overrides_the_hospital_tier() -> None:
    own = msgspec.structs.replace(G, level_coefficients={"2": 0.9})
    rules = make_ruleset(_rules().policy, (own, *GROUPS[1:]))
    # level 2 uses the group's 0.9: 1000 × 0.9 = 900; × 12 = 10800.00
    s = _score(_case("8000"), rules)
    assert (s.level_coefficient, s.case_score, s.estimated_payment) == (
        0.9,
        900.0,
        Decimal("10800.00"),
    )
    # level 3A has no override: the tier's 1.0 → 1000 points (ratio 10000/10000 = 1)
    assert _score(_case("10000", hospital_level="3A"), rules).case_score == 1000.0


def test_point_values_can_be_overridden_per_call() -> None:
    # monthly estimate 9.50 instead of the rules' 12.00: 800 × 9.50 = 7600.00
    rules = _rules()
    case = _case("8000")
    s = score(group(case, rules), rules, case, point_values={"310": Decimal("9.50")})
    assert (s.point_value, s.estimated_payment) == (Decimal("9.50"), Decimal("7600.00"))


def test_high_case_times_coefficient() -> None:
    # ratio 24000 / 8000 = 3 > 2 → (3 − 2 + 1) × 1000 × 0.8 = 1600; × 10.00 = 16000.00
    s = _score(_case("24000", insutype="390"), _rules())
    assert (s.deviation, s.case_score, s.estimated_payment) == ("high", 1600.0, Decimal("16000.00"))


def test_high_case_plus_coefficient() -> None:
    # 1000 × (3 − 2 + 0.8) = 1800; × 12.00 = 21600.00
    rules = _rules(deviation=DeviationPolicy(high_formula="plus_coefficient"))
    s = _score(_case("24000"), rules)
    assert (s.deviation, s.case_score, s.estimated_payment) == ("high", 1800.0, Decimal("21600.00"))


def test_high_offset_differs_from_threshold() -> None:
    # threshold 2, offset 1.5: (3 − 1.5 + 1) × 1000 × 0.8 = 2000
    rules = _rules(deviation=DeviationPolicy(high_offset=1.5))
    assert _score(_case("24000"), rules).case_score == 2000.0


def test_low_case_without_and_with_coefficient() -> None:
    # ratio 2000 / 8000 = 0.25 < 0.5 → 0.25 × 1000 = 250; × 12 = 3000.00
    s = _score(_case("2000"), _rules())
    assert (s.deviation, s.case_score, s.estimated_payment) == ("low", 250.0, Decimal("3000.00"))
    # with the coefficient: 0.25 × 1000 × 0.8 = 200; × 12 = 2400.00
    rules = _rules(deviation=DeviationPolicy(low_apply_coefficient=True))
    s = _score(_case("2000"), rules)
    assert (s.case_score, s.estimated_payment) == (200.0, Decimal("2400.00"))


def test_low_bound_inclusive_or_exclusive() -> None:
    # ratio 4000 / 8000 = 0.5 exactly: exclusive → normal 800; inclusive → 0.5 × 1000 = 500
    assert _score(_case("4000"), _rules()).case_score == 800.0
    rules = _rules(deviation=DeviationPolicy(low_inclusive=True))
    s = _score(_case("4000"), rules)
    assert (s.deviation, s.case_score) == ("low", 500.0)


def test_high_bound_inclusive_or_exclusive() -> None:
    # ratio 16000 / 8000 = 2 exactly: both formulas give 800 there; only the kind differs
    assert _score(_case("16000"), _rules()).deviation == "normal"
    rules = _rules(deviation=DeviationPolicy(high_inclusive=True))
    s = _score(_case("16000"), rules)
    assert (s.deviation, s.case_score) == ("high", 800.0)


def test_thresholds_are_configurable() -> None:
    # low 0.4 / high 3: ratio 0.45 (3600/8000) is normal, ratio 2.5 (20000/8000) is normal
    rules = _rules(deviation=DeviationPolicy(low_threshold=0.4, high_threshold=3.0))
    assert _score(_case("3600"), rules).deviation == "normal"
    assert _score(_case("20000"), rules).deviation == "normal"
    # ratio 3.5 (28000/8000) is high: (3.5 − 3 + 1) × 1000 × 0.8 = 1200
    assert _score(_case("28000"), rules).case_score == 1200.0


def test_extreme_case_scored_as_normal_or_sent_to_special_review() -> None:
    # ratio 48000 / 8000 = 6 > 5
    normal = _rules(deviation=DeviationPolicy(extreme_threshold=5.0, extreme_action="normal"))
    s = _score(_case("48000"), normal)
    assert (s.deviation, s.case_score, s.special_review) == ("extreme", 800.0, False)
    review = _rules(deviation=DeviationPolicy(extreme_threshold=5.0))
    # provisional high score (6 − 2 + 1) × 1000 × 0.8 = 4000, flagged for 特例单议
    s = _score(_case("48000"), review)
    assert (s.deviation, s.case_score, s.special_review) == ("extreme", 4000.0, True)
    # ratio 5 exactly is still "high" (the extreme bound is exclusive): (5 − 1) × 800 = 3200
    s = _score(_case("40000"), review)
    assert (s.deviation, s.case_score) == ("high", 3200.0)


def test_reference_cost_same_level_or_all_levels() -> None:
    # cost 27000: same level 27000/8000 = 3.375 → (3.375 − 1) × 800 = 1900
    assert _score(_case("27000"), _rules()).case_score == 1900.0
    # all levels 27000/9000 = 3 → (3 − 1) × 800 = 1600
    rules = _rules(deviation=DeviationPolicy(reference="all_levels"))
    s = _score(_case("27000"), rules)
    assert (s.ratio, s.case_score) == (3.0, 1600.0)
    # level 2C has no same-level cost → falls back to all levels: 27000/9000 = 3
    # → (3 − 1) × 1000 × 0.75 = 1500
    s = _score(_case("27000", hospital_level="2C"), _rules())
    assert (s.ratio, s.case_score) == (3.0, 1500.0)


def test_special_review_candidates() -> None:
    rules = _rules(special_review=SpecialReviewPolicy(min_ratio=3.0, min_inpatient_days=60))
    assert _score(_case("24000"), rules).special_review  # ratio 3.0 ≥ 3
    assert not _score(_case("23999"), rules).special_review
    assert _score(_case("8000", act_ipt_days=60), rules).special_review
    deaths = _rules(special_review=SpecialReviewPolicy(min_ratio=None, flag_deaths=True))
    assert _score(_case("8000", dscg_way="5"), deaths).special_review


def test_primary_care_without_coefficient_or_with_own_factor() -> None:
    # no coefficient: 300 at level 2 as at 3A; ratio 3000/3000 = 1; × 12 = 3600.00
    s = _score(_case("3000", "J06.900"), _rules())
    assert (s.status, s.level_coefficient, s.case_score) == ("primary", 1.0, 300.0)
    assert s.estimated_payment == Decimal("3600.00")
    # own factor 0.9: 300 × 0.9 = 270; × 12 = 3240.00
    rules = _rules(primary=PrimaryPolicy(coefficient="factor", factor=0.9))
    s = _score(_case("3000", "J06.900"), rules)
    assert (s.case_score, s.estimated_payment) == (270.0, Decimal("3240.00"))
    # primary deviation uses the primary coefficient: ratio 9000/3000 = 3 →
    # (3 − 2 + 1) × 300 × 0.9 = 540
    assert _score(_case("9000", "J06.900"), rules).case_score == 540.0


def test_zero_score_group_paid_at_cost_fraction() -> None:
    rules = _rules(unmatched=UnmatchedPolicy(zero_score_cost_fraction=Decimal("0.85")))
    # 1234.57 × 0.85 = 1049.3845 → 1049.38; equivalent score 1049.38 / 12 = 87.44833… → 87.4483
    s = _score(_case("1234.57", "Z38.000"), rules)
    assert (s.deviation, s.estimated_payment) == ("cost_fraction", Decimal("1049.38"))
    assert s.case_score == 87.4483
    with pytest.raises(ScoreError):
        _score(_case("1234.57", "Z38.000"), _rules())


def test_ungrouped_case_paid_at_cost_fraction_rounded_half_up() -> None:
    rules = _rules(unmatched=UnmatchedPolicy(ungrouped_cost_fraction=Decimal("0.5")))
    # 100.05 × 0.5 = 50.025 → half-up 50.03 (half-even would give 50.02)
    s = _score(_case("100.05", "R69.X00"), rules)
    assert (s.status, s.estimated_payment) == ("ungrouped", Decimal("50.03"))
    with pytest.raises(ScoreError) as e:
        _score(_case("100.05", "R69.X00"), _rules())
    assert e.value.field == "group_code"


def test_unknown_hospital_level_cannot_be_scored() -> None:
    with pytest.raises(ScoreError) as e:
        _score(_case("8000", hospital_level="9"), _rules())
    assert e.value.field == "hospital_level"


def test_payment_rounded_half_up_to_the_fen_at_the_end() -> None:
    # group Q 1333 at 2C (0.75): 999.75 points; × 12.35 = 12346.9125 → 12346.91
    rules = _rules(point_values={"310": Decimal("12.35")})
    s = _score(_case("1", "Q99.900", hospital_level="2C"), rules)
    assert (s.case_score, s.estimated_payment) == (999.75, Decimal("12346.91"))
    # … and 999.75 × 12.34 = 12336.915 → half-up 12336.92
    rules = _rules(point_values={"310": Decimal("12.34")})
    s = _score(_case("1", "Q99.900", hospital_level="2C"), rules)
    assert s.estimated_payment == Decimal("12336.92")


def test_case_score_rounded_to_configured_decimals() -> None:
    # level 3A: ratio 3333.37 / 10000 = 0.333337 < 0.5 → low, 0.333337 × 1000 = 333.337
    # points → 2 decimals half-up 333.34; × 12 = 4000.08
    rules = _rules(score_decimals=2)
    s = _score(_case("3333.37", hospital_level="3A"), rules)
    assert (s.case_score, s.estimated_payment) == (333.34, Decimal("4000.08"))


def test_age_band_adjustment() -> None:
    adj = Adjustments(age=(AgeBand(name="新生儿", max_days=29, factor=1.3),))
    rules = _rules(adjustments=adj)
    # 10-day-old: 1000 × 0.8 × 1.3 = 1040; × 12 = 12480.00
    s = _score(_case("8000", age_years=0, age_days=10), rules)
    assert (s.adjustment, s.case_score, s.estimated_payment) == (1.3, 1040.0, Decimal("12480.00"))
    assert _score(_case("8000", age_years=0, age_days=29), rules).adjustment == 1.0
    assert _score(_case("8000", age_years=3), rules).adjustment == 1.0


def test_severity_and_age_combined_by_max_or_product() -> None:
    tiers = (SeverityTier(name="重度", diag_prefixes=("A41",), min_days=3, factor=1.2),)
    ages = (AgeBand(min_years=65, factor=1.05),)
    case = _case("8000", other_diag_codes=("a41.900",), act_ipt_days=5, age_years=70)
    # max: max(1.2, 1.05) = 1.2 → 1000 × 0.8 × 1.2 = 960
    s = _score(case, _rules(adjustments=Adjustments(severity=tiers, age=ages)))
    assert (s.adjustment, s.case_score) == (1.2, 960.0)
    # product: 1.2 × 1.05 = 1.26 → 1008
    s = _score(case, _rules(adjustments=Adjustments(combine="product", severity=tiers, age=ages)))
    assert s.case_score == 1008.0
    # too short a stay: severity does not apply, only age → 1000 × 0.8 × 1.05 = 840
    short = _case("8000", other_diag_codes=("A41.900",), act_ipt_days=2, age_years=70)
    assert (
        _score(short, _rules(adjustments=Adjustments(severity=tiers, age=ages))).case_score == 840.0
    )


def test_icu_days_and_adjustment_scope() -> None:
    icu = Adjustments(icu=(IcuBand(min_days=2, max_days=8, factor=1.1),))
    # 2881 minutes → ceil(2.0007) = 3 days → 1000 × 0.8 × 1.1 = 880
    assert _score(_case("8000", icu_minutes=2881), _rules(adjustments=icu)).case_score == 880.0
    # 1440 minutes = 1 day: no band
    assert _score(_case("8000", icu_minutes=1440), _rules(adjustments=icu)).adjustment == 1.0
    # comprehensive groups are not adjusted unless listed in apply_to
    comp = _case("4000", "K35.900", icu_minutes=2881)
    assert _score(comp, _rules(adjustments=icu)).adjustment == 1.0
    both = Adjustments(apply_to=("core", "comprehensive"), icu=icu.icu)
    # 500 × 0.8 × 1.1 = 440
    assert _score(comp, _rules(adjustments=both)).case_score == 440.0


def test_deviation_with_or_without_adjustment() -> None:
    adj = Adjustments(icu=(IcuBand(min_days=2, factor=1.5),))
    case = _case("24000", icu_minutes=4320)
    # high with adjustment: (3 − 2 + 1) × 1000 × 0.8 × 1.5 = 2400
    assert _score(case, _rules(adjustments=adj)).case_score == 2400.0
    dev = DeviationPolicy(apply_adjustment=False)
    assert _score(case, _rules(adjustments=adj, deviation=dev)).case_score == 1600.0


def test_bed_day_score() -> None:
    # 12 points/day × 70 days = 840 (no coefficient by default); × 12 = 10080.00
    s = _score(_case("50000", "F20.000", act_ipt_days=70), _rules())
    assert (s.status, s.deviation, s.case_score) == ("bed_day", "normal", 840.0)
    assert s.estimated_payment == Decimal("10080.00")


def test_excluded_case_is_not_paid_by_dip() -> None:
    from workers.dip import Exclusion

    rules = make_ruleset(_rules().policy, GROUPS, (Exclusion(code="Z53", target="diagnosis"),))
    s = _score(_case("100", "Z53.000"), rules)
    assert (s.deviation, s.estimated_payment, s.case_score) == ("excluded", None, 0.0)


def test_grouped_under_other_rules_is_refused() -> None:
    a, b = _rules(), _rules(version="other")
    g = group(_case("8000"), a)
    with pytest.raises(ScoreError):
        score(g, b, _case("8000"))


def test_sample_cities_score_by_their_own_rules() -> None:
    # Guangzhou: K35.8+47.0100 score 980, level 3A reference 11 270, coefficient 1.00:
    # 980 × 12.35 = 12103.00
    gz = sample_rules("440100")
    case = _case("11270", hospital_level="3A", treating_admdvs="440104")
    s = _score(case, gz)
    assert (s.group_code, s.case_score, s.estimated_payment) == (
        "GZ-C002",
        980.0,
        Decimal("12103.00"),
    )
    # Shenzhen: I21.0+36.0600 score round(3800 × 1.04) = 3952, level 2 coefficient 0.88,
    # reference all levels 3952 × 11 = 43472 → ratio 1: 3952 × 0.88 = 3477.76;
    # × 13.20 = 45906.432 → 45906.43
    sz = sample_rules("440300")
    pci = _case(
        "43472",
        "I21.000",
        hospital_level="2",
        treating_admdvs="440304",
        operations=(("36.0600", "intervention"),),
    )
    s = _score(pci, sz)
    assert (s.group_code, s.ratio, s.case_score) == ("SZ0007", 1.0, 3477.76)
    assert s.estimated_payment == Decimal("45906.43")
    # Shenzhen high rule: score × (ratio − 2 + K), inclusive bound: 86944 / 43472 = 2 →
    # 3952 × (2 − 2 + 0.88) = 3477.76, now a high case
    s = _score(msgspec.structs.replace(pci, total_cost=Decimal("86944")), sz)
    assert (s.deviation, s.case_score) == ("high", 3477.76)
    assert s.ruleset_version == sz.version_id != gz.version_id
