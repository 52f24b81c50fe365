"""City rule variants of issue 12 (point 4), each with its numbers worked out by hand here.

Test catalog (as in test_scoring): core group G (K35.8 + 47.0100), score 1000, reference cost
10 000 at level 3A, 8 000 at level 2 (coefficient 0.8), 9 000 all levels; point values
310 → 12.00, 390 → 10.00. The arithmetic is in the comments, never copied from the output.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.builders import dip_case
from workers.dip import (
    Adjustments,
    AgeBand,
    CaseFacts,
    CciCondition,
    DeviationPolicy,
    Group,
    Hospital,
    IcuBand,
    IncompletePolicy,
    Level,
    Policy,
    PrimaryPolicy,
    RuleSet,
    RuleSetError,
    ScoreResult,
    SeverityTier,
    SpecialReviewPolicy,
    UnmatchedPolicy,
    group_and_score,
    load_rules,
    make_ruleset,
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
BLANK = Group(code="BL", kind="core", diag="R69.X", score=200.0, ref_cost_all=Decimal("2000"))
P = Group(code="P", kind="primary", diag="J06.9", score=300.0, ref_cost_all=Decimal("3000"))
GROUPS = (G, BLANK, P)
ICU_3_DAYS = 3 * 1440


def _rules(groups: tuple[Group, ...] = GROUPS, **kw: Any) -> RuleSet:
    base: dict[str, Any] = {
        "city": "440100",
        "clearing_year": 2026,
        "version": "t",
        "levels": (Level(code="3A", coefficient=1.0), Level(code="2", coefficient=0.8)),
        "point_values": {"310": Decimal("12.00"), "390": Decimal("10.00")},
        "special_review": SpecialReviewPolicy(min_ratio=None),
    }
    base.update(kw)
    return make_ruleset(Policy(**base), groups)


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


# -- 空白病种 -------------------------------------------------------------------------------


def test_blank_group_scores_an_ungrouped_case_from_the_designated_group() -> None:
    rules = _rules(
        unmatched=UnmatchedPolicy(blank_group="BL", blank_factor=0.9),
        adjustments=Adjustments(icu=(IcuBand(min_days=2, factor=1.5),)),
    )
    # X99.9 is in no group. 200 × (3000 ÷ 2000) × 0.9 = 200 × 1.5 × 0.9 = 270 points; no level
    # coefficient (level 2 would give 216) and no ICU factor (1.5 would give 405);
    # 270 × 12.00 = 3240.00
    s = _score(_case("3000", "X99.900", icu_minutes=ICU_3_DAYS), rules)
    assert (s.status, s.group_code, s.deviation) == ("ungrouped", "BL", "blank")
    assert (s.ratio, s.level_coefficient, s.adjustment) == (1.5, 1.0, 1.0)
    assert (s.case_score, s.estimated_payment) == (270.0, Decimal("3240.00"))


@pytest.mark.parametrize(
    ("unmatched", "message"),
    [
        (UnmatchedPolicy(blank_group="BL", ungrouped_cost_fraction=Decimal("0.7")), "both"),
        (UnmatchedPolicy(blank_group="NOPE"), "not in the catalog"),
        (UnmatchedPolicy(blank_factor=0.9), "blank_factor"),
    ],
)
def test_blank_group_options_that_would_be_ignored_are_refused(
    unmatched: UnmatchedPolicy, message: str
) -> None:
    with pytest.raises(RuleSetError, match=message):
        _rules(unmatched=unmatched)


def test_blank_group_without_a_reference_cost_is_refused() -> None:
    bare = msgspec.structs.replace(BLANK, ref_cost_all=None)
    with pytest.raises(RuleSetError, match="no reference cost"):
        _rules((G, bare, P), unmatched=UnmatchedPolicy(blank_group="BL"))


# -- coefficients and costs per fund; hospital coefficients ------------------------------


def test_level_coefficient_per_fund() -> None:
    levels = (
        Level(code="3A", coefficient=1.0),
        Level(code="2", coefficient=0.8, fund_coefficients={"390": 0.7}),
    )
    rules = _rules(levels=levels)
    # 居民 (390) at level 2: ratio 8000 / 8000 = 1; 1000 × 0.7 = 700; × 10.00 = 7000.00
    s = _score(_case("8000", insutype="390"), rules)
    assert (s.level_coefficient, s.case_score, s.estimated_payment) == (
        0.7,
        700.0,
        Decimal("7000.00"),
    )
    # 职工 (310) keeps the level's 0.8: 800 × 12.00 = 9600.00
    assert _score(_case("8000"), rules).estimated_payment == Decimal("9600.00")


def test_hospital_coefficient_fixed_by_the_city_per_fund() -> None:
    h = Hospital(code="H44010000009", coefficient=1.1, fund_coefficients={"390": 0.95})
    rules = _rules(hospitals=(h,))
    # that hospital, level 2, 职工: 1000 × 1.1 = 1100 (not the level's 0.8); × 12 = 13200.00
    s = _score(_case("8000", fixmedins_code="H44010000009"), rules)
    assert (s.level_coefficient, s.estimated_payment) == (1.1, Decimal("13200.00"))
    # 居民: 1000 × 0.95 = 950; × 10 = 9500.00
    s = _score(_case("8000", fixmedins_code="H44010000009", insutype="390"), rules)
    assert (s.case_score, s.estimated_payment) == (950.0, Decimal("9500.00"))
    # another hospital of level 2: the level's 0.8 → 800
    assert _score(_case("8000"), rules).case_score == 800.0
    # a group's own per-level coefficient (DIP 3.0 以病种设置) is the most specific: 0.9 → 900
    own = msgspec.structs.replace(G, level_coefficients={"2": 0.9})
    rules = _rules((own, BLANK, P), hospitals=(h,))
    assert _score(_case("8000", fixmedins_code="H44010000009"), rules).case_score == 900.0


def test_hospital_without_a_coefficient_is_refused() -> None:
    with pytest.raises(RuleSetError, match="no coefficient"):
        _rules(hospitals=(Hospital(code="H44010000009"),))


def test_reference_cost_per_fund() -> None:
    g = msgspec.structs.replace(
        G,
        fund_ref_costs={"390": {"2": Decimal("6000")}},
        fund_ref_cost_all={"390": Decimal("7000")},
    )
    rules = _rules((g, BLANK, P))
    # 居民 at level 2: 15000 / 6000 = 2.5 > 2 → high (2.5 − 2 + 1) × 1000 × 0.8 = 1200;
    # × 10 = 12000.00
    s = _score(_case("15000", insutype="390"), rules)
    assert (s.ratio, s.deviation, s.case_score) == (2.5, "high", 1200.0)
    # 职工 has no table of its own: 15000 / 8000 = 1.875 → normal 800
    s = _score(_case("15000"), rules)
    assert (s.ratio, s.deviation, s.case_score) == (1.875, "normal", 800.0)
    # 居民 at level 3A (no fund cost at that level): the fund's all-level 7000:
    # 21000 / 7000 = 3 → (3 − 1) × 1000 × 1.0 = 2000
    s = _score(_case("21000", insutype="390", hospital_level="3A"), rules)
    assert (s.ratio, s.case_score) == (3.0, 2000.0)


# -- reference cost from the score --------------------------------------------------------

NO_COSTS = (
    msgspec.structs.replace(G, ref_cost_all=None, ref_costs={}),
    msgspec.structs.replace(P, ref_cost_all=None),
)


def test_reference_cost_derived_from_score_and_yuan_per_point() -> None:
    dev = DeviationPolicy(
        reference="score", yuan_per_point={"310": Decimal("11"), "390": Decimal("9")}
    )
    rules = _rules(NO_COSTS, deviation=dev)
    # 职工: standard 1000 × 11 = 11000; 33000 / 11000 = 3 → high (3 − 2 + 1) × 1000 × 0.8 =
    # 1600; × 12 = 19200.00
    s = _score(_case("33000"), rules)
    assert (s.ratio, s.case_score, s.estimated_payment) == (3.0, 1600.0, Decimal("19200.00"))
    # 居民: standard 1000 × 9 = 9000; 27000 / 9000 = 3 → 1600; × 10 = 16000.00
    s = _score(_case("27000", insutype="390"), rules)
    assert (s.ratio, s.estimated_payment) == (3.0, Decimal("16000.00"))
    # 22000 / 11000 = 2, not above 2: normal 800
    assert _score(_case("22000"), rules).deviation == "normal"


@pytest.mark.parametrize(
    ("groups", "dev", "message"),
    [
        (
            GROUPS,
            DeviationPolicy(reference="score", yuan_per_point={"310": Decimal(11)}),
            "ignored",
        ),
        (NO_COSTS, DeviationPolicy(reference="score"), "needs deviation.yuan_per_point"),
        (GROUPS, DeviationPolicy(yuan_per_point={"310": Decimal(11)}), "only with"),
    ],
)
def test_score_reference_options_that_would_be_ignored_are_refused(
    groups: tuple[Group, ...], dev: DeviationPolicy, message: str
) -> None:
    with pytest.raises(RuleSetError, match=message):
        _rules(groups, deviation=dev)


# -- the ratio divided by the case's factors (DIP 3.0) ------------------------------------


def test_ratio_divided_by_the_adjustment_factor() -> None:
    icu = Adjustments(icu=(IcuBand(min_days=2, factor=1.25),))
    case = _case("20000", icu_minutes=ICU_3_DAYS)
    # today: 20000 / 9000 = 2.22 > 2 → high (2.222… − 1) × 1000 × 0.8 × 1.25 = 1222.2222
    plain = _rules(adjustments=icu, deviation=DeviationPolicy(reference="all_levels"))
    assert _score(case, plain).deviation == "high"
    # DIP 3.0: 20000 / (9000 × 1.25) = 1.777… → normal: 1000 × 0.8 × 1.25 = 1000; × 12 = 12000
    dev = DeviationPolicy(reference="all_levels", ratio_divides_by=("adjustment",))
    s = _score(case, _rules(adjustments=icu, deviation=dev))
    assert (s.deviation, s.case_score, s.estimated_payment) == (
        "normal",
        1000.0,
        Decimal("12000.00"),
    )
    assert s.ratio == pytest.approx(20000 / 11250)


def test_dip3_low_formula_divides_and_multiplies_by_the_same_factors() -> None:
    # 费用超低: score × K × A × cost / (standard × K × A) = score × cost / standard.
    # 3600 / (9000 × 0.8 × 1.25) = 3600 / 9000 = 0.4 < 0.5 → 0.4 × 1000 × 0.8 × 1.25 = 400
    # = 1000 × 3600 / 9000; × 12 = 4800.00
    dev = DeviationPolicy(
        reference="all_levels",
        ratio_divides_by=("coefficient", "adjustment"),
        low_apply_coefficient=True,
    )
    icu = Adjustments(icu=(IcuBand(min_days=2, factor=1.25),))
    s = _score(_case("3600", icu_minutes=ICU_3_DAYS), _rules(adjustments=icu, deviation=dev))
    assert (s.deviation, s.ratio) == ("low", 0.4)
    assert (s.case_score, s.estimated_payment) == (400.0, Decimal("4800.00"))


# -- 基层病种 coefficients ---------------------------------------------------------------


def test_primary_group_own_factor() -> None:
    own = msgspec.structs.replace(P, primary_factor=0.9)
    other = Group(code="P2", kind="primary", diag="J02.9", score=300.0, ref_cost_all=Decimal(3000))
    by_level = Group(
        code="P3",
        kind="primary",
        diag="J03.9",
        score=300.0,
        ref_cost_all=Decimal(3000),
        level_coefficients={"2": 0.85},
    )
    rules = _rules(
        (G, BLANK, own, other, by_level), primary=PrimaryPolicy(coefficient="group", factor=0.95)
    )
    # P's own 0.9: 300 × 0.9 = 270; × 12 = 3240.00
    s = _score(_case("3000", "J06.900"), rules)
    assert (s.level_coefficient, s.case_score, s.estimated_payment) == (
        0.9,
        270.0,
        Decimal("3240.00"),
    )
    # P2 has none: the city-wide 0.95 → 285
    assert _score(_case("3000", "J02.900"), rules).case_score == 285.0
    # P3's own level-2 coefficient 0.85 → 255
    assert _score(_case("3000", "J03.900"), rules).case_score == 255.0


@pytest.mark.parametrize(
    ("group", "primary", "message"),
    [
        (
            msgspec.structs.replace(P, primary_factor=0.9),
            PrimaryPolicy(coefficient="factor", factor=0.95),
            "group P",
        ),
        (msgspec.structs.replace(P, level_coefficients={"2": 0.9}), PrimaryPolicy(), "group P"),
        (P, PrimaryPolicy(factor=0.95), "primary.factor"),
        (msgspec.structs.replace(G, primary_factor=0.9), PrimaryPolicy(), "group G"),
    ],
)
def test_ignored_primary_coefficients_are_refused(
    group: Group, primary: PrimaryPolicy, message: str
) -> None:
    groups = tuple(group if g.code == group.code else g for g in GROUPS)
    with pytest.raises(RuleSetError, match=message):
        _rules(groups, primary=primary)


# -- severity tiers: stay bounds, tumour cost share, CCI ----------------------------------


def test_death_tiers_split_by_length_of_stay() -> None:
    tiers = (
        SeverityTier(name="死亡≤3天", dscg_ways=("5",), max_days=3, factor=0.8),
        SeverityTier(name="死亡>3天", dscg_ways=("5",), min_days=4, factor=1.3),
    )
    rules = _rules(adjustments=Adjustments(severity=tiers))
    # died on day 3: 1000 × 0.8 × 0.8 = 640; died on day 5: 1000 × 0.8 × 1.3 = 1040
    assert _score(_case("8000", dscg_way="5", act_ipt_days=3), rules).case_score == 640.0
    assert _score(_case("8000", dscg_way="5", act_ipt_days=5), rules).case_score == 1040.0
    # discharged alive: no tier → 800
    assert _score(_case("8000", dscg_way="1", act_ipt_days=3), rules).adjustment == 1.0


def test_tumour_cost_share_tier() -> None:
    tier = SeverityTier(
        name="高费用病例类型二（药品费占比≥50%）",
        min_cost_ratio=3.0,
        fee_types=("09", "10", "11"),
        min_fee_share=0.5,
        factor=1.4,
    )
    dev = DeviationPolicy(ratio_divides_by=("adjustment",))
    rules = _rules(adjustments=Adjustments(severity=(tier,)), deviation=dev)
    # 30000 ≥ 3 × 8000 and drugs (12000 + 4000) / 30000 = 0.533 ≥ 0.5 → A = 1.4;
    # ratio 30000 / (8000 × 1.4) = 2.678… > 2 → high: (2.678… − 1) × 1000 × 0.8 × 1.4
    # = 30000 / 10 − 1120 = 1880; × 12 = 22560.00
    fees = {"09": Decimal("12000"), "11": Decimal("4000"), "05": Decimal("9000")}
    s = _score(_case("30000", fees=fees), rules)
    assert (s.adjustment, s.deviation) == (1.4, "high")
    assert (s.case_score, s.estimated_payment) == (1880.0, Decimal("22560.00"))
    # drugs only 9000 / 30000 = 0.3: no tier; 30000 / 8000 = 3.75 → (3.75 − 1) × 800 = 2200
    s = _score(_case("30000", fees={"09": Decimal("9000")}), rules)
    assert (s.adjustment, s.case_score) == (1.0, 2200.0)
    # drug share 0.6 but cost 20000 < 3 × 8000: no tier
    s = _score(_case("20000", fees={"09": Decimal("12000")}), rules)
    assert s.adjustment == 1.0


def test_cci_tiers() -> None:
    cci = (
        CciCondition(name="充血性心力衰竭", diag_prefixes=("I50",), weight=1),
        CciCondition(name="糖尿病伴慢性并发症", diag_prefixes=("E11.2", "E11.4"), weight=2),
    )
    tiers = (
        SeverityTier(name="CCI≥3", min_cci=3, factor=1.15),
        SeverityTier(name="CCI 1-2", min_cci=1, max_cci=2, factor=1.05),
    )
    rules = _rules(adjustments=Adjustments(cci=cci, severity=tiers))
    # I50 (1) + E11.2 (2) = 3 → 1.15: 1000 × 0.8 × 1.15 = 920
    both = _case("8000", other_diag_codes=("I50.900", "E11.200x001"))
    assert _score(both, rules).case_score == 920.0
    # heart failure coded twice still counts 1 → 1.05: 840
    twice = _case("8000", other_diag_codes=("I50.900", "I50.100"))
    assert _score(twice, rules).case_score == 840.0
    # no comorbidity: CCI 0 → no tier
    assert _score(_case("8000", other_diag_codes=("K80.200",)), rules).adjustment == 1.0


@pytest.mark.parametrize(
    ("adj", "message"),
    [
        (Adjustments(severity=(SeverityTier(factor=1.2),)), "no condition"),
        (Adjustments(severity=(SeverityTier(min_cci=2, factor=1.2),)), "cci is empty"),
        (
            Adjustments(cci=(CciCondition(diag_prefixes=("I50",), weight=1),)),
            "no severity tier uses",
        ),
        (Adjustments(severity=(SeverityTier(fee_types=("09",), factor=1.2),)), "go together"),
        (Adjustments(apply_to=(), icu=(IcuBand(min_days=2, factor=1.1),)), "apply_to"),
        (Adjustments(icu=(IcuBand(min_days=2, factor=1.1, groups=("NOPE",)),)), "NOPE"),
    ],
)
def test_adjustments_that_would_be_ignored_are_refused(adj: Adjustments, message: str) -> None:
    with pytest.raises(RuleSetError, match=message):
        _rules(adjustments=adj)


# -- age bands ----------------------------------------------------------------------------

BABIES = Adjustments(
    age=(
        AgeBand(name="新生儿 0-28天", max_days=29, factor=1.3),
        AgeBand(name="婴幼儿 29天-1周岁", min_days=29, max_years=1, factor=1.15),
    )
)


def test_age_zero_without_days_is_an_infant_not_a_newborn() -> None:
    # age 0, 天龄 unknown → 29 天–1 周岁 (DIP 3.0): 1000 × 0.8 × 1.15 = 920 (was 1.3 → 1040)
    s = _score(_case("8000", age_years=0, age_days=None), _rules(adjustments=BABIES))
    assert (s.adjustment, s.case_score) == (1.15, 920.0)
    # a known 天龄 of 10 days is a newborn: 1000 × 0.8 × 1.3 = 1040
    assert (
        _score(_case("8000", age_years=0, age_days=10), _rules(adjustments=BABIES)).case_score
        == 1040.0
    )
    # a city may say otherwise: unknown 天龄 taken as 0 days → newborn 1.3
    adj = msgspec.structs.replace(BABIES, age_days_if_unknown=0)
    assert _score(_case("8000", age_years=0), _rules(adjustments=adj)).adjustment == 1.3


# -- bounds -------------------------------------------------------------------------------


def test_extreme_bound_inclusive_or_strict() -> None:
    # ratio 40000 / 8000 = 5 exactly
    strict = _rules(deviation=DeviationPolicy(extreme_threshold=5.0))
    s = _score(_case("40000"), strict)
    # strict: a high case (5 − 2 + 1) × 1000 × 0.8 = 3200, not flagged
    assert (s.deviation, s.case_score, s.special_review) == ("high", 3200.0, False)
    inclusive = _rules(deviation=DeviationPolicy(extreme_threshold=5.0, extreme_inclusive=True))
    s = _score(_case("40000"), inclusive)
    # ≥ 5: extreme, provisionally 3200 and flagged for 特例单议
    assert (s.deviation, s.case_score, s.special_review) == ("extreme", 3200.0, True)


def test_special_review_starts_at_twice_the_standard_by_default() -> None:
    # DIP 3.0 第六章第二节: cases above 2× the average standard may apply. Default min_ratio 2:
    rules = _rules(special_review=SpecialReviewPolicy())
    assert _score(_case("16000"), rules).special_review  # 16000 / 8000 = 2
    assert not _score(_case("15999"), rules).special_review  # 1.999875


# -- the low band's adjustment, apart from the high band's --------------------------------


def test_low_band_with_or_without_the_adjustment_factor() -> None:
    icu = Adjustments(icu=(IcuBand(min_days=2, factor=1.5),))
    low, high = _case("2000", icu_minutes=ICU_3_DAYS), _case("24000", icu_minutes=ICU_3_DAYS)
    # default: A on both bands. low 2000/8000 = 0.25 → 0.25 × 1000 × 1.5 = 375;
    # high 24000/8000 = 3 → (3 − 2 + 1) × 1000 × 0.8 × 1.5 = 2400
    rules = _rules(adjustments=icu)
    assert (_score(low, rules).case_score, _score(high, rules).case_score) == (375.0, 2400.0)
    # low without A (250), high still with A (2400)
    rules = _rules(adjustments=icu, deviation=DeviationPolicy(low_apply_adjustment=False))
    assert (_score(low, rules).case_score, _score(high, rules).case_score) == (250.0, 2400.0)
    # low with A (375), high without (2 × 800 = 1600)
    dev = DeviationPolicy(apply_adjustment=False, low_apply_adjustment=True)
    rules = _rules(adjustments=icu, deviation=dev)
    assert (_score(low, rules).case_score, _score(high, rules).case_score) == (375.0, 1600.0)


# -- incomplete stays ---------------------------------------------------------------------

INCOMPLETE = IncompletePolicy(dscg_ways=("2", "4"), death_within_days=3, case_flag=True)


def test_incomplete_stay_has_its_own_rule() -> None:
    rules = _rules(incomplete=INCOMPLETE)
    # 医嘱转院 (2), 4800 / 8000 = 0.6 (a normal band): 1000 × 0.8 × min(0.6, 1) = 480;
    # × 12 = 5760.00
    s = _score(_case("4800", dscg_way="2"), rules)
    assert (s.deviation, s.ratio, s.case_score) == ("incomplete", 0.6, 480.0)
    assert s.estimated_payment == Decimal("5760.00")
    # the same cost discharged on doctor's orders (1): normal 800
    assert _score(_case("4800", dscg_way="1"), rules).case_score == 800.0
    # 非医嘱离院 (4) above the standard: capped at the group score, 1000 × 0.8 × 1 = 800
    assert _score(_case("12000", dscg_way="4"), rules).deviation == "incomplete"
    assert _score(_case("12000", dscg_way="4"), rules).case_score == 800.0
    # died on day 2 → incomplete (480); died on day 5 → normal (800)
    assert _score(_case("4800", dscg_way="5", act_ipt_days=2), rules).case_score == 480.0
    assert _score(_case("4800", dscg_way="5", act_ipt_days=5), rules).case_score == 800.0
    # the source's flag counts when the city says so
    assert _score(_case("4800", incomplete_stay=True), rules).case_score == 480.0
    off = _rules(incomplete=IncompletePolicy(dscg_ways=("2",)))
    assert _score(_case("4800", incomplete_stay=True), off).case_score == 800.0


def test_incomplete_stay_paid_at_a_cost_fraction() -> None:
    inc = msgspec.structs.replace(INCOMPLETE, action="cost_fraction", cost_fraction=Decimal("0.9"))
    # 4800 × 0.9 = 4320.00; score equivalent 4320 / 12 = 360
    s = _score(_case("4800", dscg_way="2"), _rules(incomplete=inc))
    assert (s.deviation, s.estimated_payment, s.case_score) == (
        "incomplete",
        Decimal("4320.00"),
        360.0,
    )


@pytest.mark.parametrize(
    ("inc", "message"),
    [
        (IncompletePolicy(action="cost_fraction", cost_fraction=Decimal("0.9")), "no stay"),
        (IncompletePolicy(dscg_ways=("2",), action="cost_fraction"), "needs"),
        (IncompletePolicy(dscg_ways=("2",), cost_fraction=Decimal("0.9")), "only with"),
    ],
)
def test_incomplete_options_that_would_be_ignored_are_refused(
    inc: IncompletePolicy, message: str
) -> None:
    with pytest.raises(RuleSetError, match=message):
        _rules(incomplete=inc)


# -- the TOML and CSV format --------------------------------------------------------------

TOML = """
city = "440100"
clearing_year = 2026
version = "v1"
catalog = "cat.csv"
[[levels]]
code = "3A"
name = "三级甲等"
coefficient = 1.0
[[levels]]
code = "2"
name = "二级"
coefficient = 0.8
fund_coefficients = { "390" = 0.7 }
[[hospitals]]
code = "H44010000009"
coefficient = 1.1
[point_values]
"310" = "12.00"
"390" = "10.00"
"""


def _load(tmp_path: Path, extra: str, catalog: str) -> RuleSet:
    (tmp_path / "cat.csv").write_text(catalog, encoding="utf-8")
    (tmp_path / "p.toml").write_text(TOML + extra, encoding="utf-8")
    return load_rules(tmp_path / "p.toml")


CATALOG = (
    "病种编码,病种类型,主要诊断编码,手术操作编码,病种分值,次均费用,次均费用_2,"
    "次均费用_2_居民,次均费用(居民),基层系数\n"
    "G,核心,K35.8,47.0100,1000,9000,8000,6000,7000,\n"
    "BL,核心,R69.X,,200,2000,,,,\n"
    "P,基层,J06.9,,300,3000,,,,0.9\n"
)


def test_every_variant_is_expressible_in_toml_and_csv(tmp_path: Path) -> None:
    extra = """
[deviation]
low_threshold = "none"
extreme_threshold = 5.0
extreme_inclusive = true
ratio_divides_by = ["adjustment"]
[primary]
coefficient = "group"
[unmatched]
blank_group = "BL"
blank_factor = 0.9
[special_review]
min_ratio = "none"
[incomplete]
dscg_ways = ["2"]
[adjustments]
age_days_if_unknown = 29
[[adjustments.cci]]
diag_prefixes = ["I50"]
weight = 1
[[adjustments.severity]]
name = "死亡≤3天"
dscg_ways = ["5"]
max_days = 3
factor = 0.8
[[adjustments.severity]]
name = "CCI≥1"
min_cci = 1
factor = 1.05
[[adjustments.severity]]
name = "药占比"
min_cost_ratio = 3
fee_types = ["09"]
min_fee_share = 0.5
factor = 1.4
"""
    rs = _load(tmp_path, extra, CATALOG)
    g, _, p = rs.groups
    assert g.fund_ref_costs == {"390": {"2": Decimal("6000")}}
    assert g.fund_ref_cost_all == {"390": Decimal("7000")}
    assert (p.kind, p.primary_factor) == ("primary", 0.9)
    dev = rs.policy.deviation
    assert (dev.low_threshold, dev.extreme_inclusive, dev.ratio_divides_by) == (
        None,
        True,
        ("adjustment",),
    )
    assert rs.policy.special_review.min_ratio is None
    assert rs.policy.levels[1].fund_coefficients == {"390": 0.7}
    # a low-cost case is not low any more (the band is off): 1000 × 0.8 = 800 at ratio 0.25
    s = _score(_case("2000"), rs)
    assert (s.deviation, s.case_score) == ("normal", 800.0)
    # the fixed hospital coefficient: 1000 × 1.1 = 1100
    assert _score(_case("8000", fixmedins_code="H44010000009"), rs).case_score == 1100.0
    # 居民 at level 2: K 0.7, reference 6000: 6000 / 6000 = 1 → 1000 × 0.7 = 700
    assert _score(_case("6000", insutype="390"), rs).case_score == 700.0


@pytest.mark.parametrize(
    ("extra", "catalog", "message"),
    [
        ("[deviation]\nhigh_treshold = 3\n", CATALOG, "high_treshold"),
        ('[primary]\ncoefficient = "factor"\nfactor = 0.95\n', CATALOG, "group P"),
        ("", CATALOG.replace("等级系数", "").replace(",基层系数", ",等级系数_2_310"), "per-fund"),
        (
            "",
            CATALOG.replace("次均费用_2_居民", "次均费用_2_医保"),
            "unknown hospital level or fund",
        ),
    ],
)
def test_import_refuses_what_the_engine_would_ignore(
    tmp_path: Path, extra: str, catalog: str, message: str
) -> None:
    if "基层系数" in catalog and "coefficient" not in extra:
        extra += '[primary]\ncoefficient = "group"\n'
    with pytest.raises(RuleSetError, match=message):
        _load(tmp_path, extra, catalog)


# -- unchanged rule files keep their bytes -------------------------------------------------


def test_rule_files_without_the_new_options_keep_their_encoding_and_hash() -> None:
    from workers.dip import SAMPLE_RULES, encode_ruleset

    # golden: the sample files' hashes before the variants existed (commit b68b7f0)
    gz, sz = load_rules(SAMPLE_RULES["440100"]), load_rules(SAMPLE_RULES["440300"])
    assert gz.content_hash == "ae795734617895412062aaf64fea257dab4dcc0ccfd3b7498e67fd1254c8fab0"
    assert sz.content_hash == "20b19ed06e0b99e5f96747b3cc83819683f1b1e298787c7dbb8bfef858abb909"
    doc = encode_ruleset(gz)
    for added in (b"blank_group", b"fund_ref_costs", b"ratio_divides_by", b"hospitals", b"cci"):
        assert added not in doc
    # a new option in use is part of the content
    unmatched = msgspec.structs.replace(gz.policy.unmatched, ungrouped_cost_fraction=None)
    policy = msgspec.structs.replace(
        gz.policy, unmatched=msgspec.structs.replace(unmatched, blank_group="GZ-C001")
    )
    changed = make_ruleset(policy, gz.groups, gz.exclusions)
    assert b'"blank_group":"GZ-C001"' in encode_ruleset(changed)
    assert changed.content_hash != gz.content_hash


# -- the national 基层病种 list -------------------------------------------------------------


def test_national_primary_list_types_groups_the_city_left_untyped(tmp_path: Path) -> None:
    from workers.dip import national_pre_groups, national_primary_care

    assert (len(national_primary_care()), len(national_pre_groups())) == (127, 19)
    catalog = (
        "病种编码,病种类型,主要诊断编码,手术操作编码,病种分值,次均费用\n"
        # national list: K35 + 47.0100 (seq 59) covers K35.8 + 47.0100; K35.8 alone (seq 61)
        "A1,,K35.8,47.0100,980,9800\n"
        "A0,,K35.8,,420,4200\n"
        # the city typed this one 核心: its word wins
        "A3,核心,K35.3,47.0100,1050,10500\n"
        # not on the list
        "M1,,I21.0,36.0600,3800,41800\n"
    )
    rs = _load(tmp_path, "[primary]\nnational_list = true\n", catalog)
    assert [(g.code, g.kind) for g in rs.groups] == [
        ("A1", "primary"),
        ("A0", "primary"),
        ("A3", "core"),
        ("M1", "core"),
    ]
    # 基层病种 take no level coefficient (primary.coefficient = "none"): 980 at level 2;
    # 9800 / 9800 = 1; × 12 = 11760.00
    s = _score(_case("9800"), rs)
    assert (s.status, s.case_score, s.estimated_payment) == ("primary", 980.0, Decimal("11760.00"))
    # without the option the same catalog is all core: 980 × 0.8 = 784
    rs = _load(tmp_path, "", catalog)
    assert {g.kind for g in rs.groups} == {"core"}
    assert _score(_case("9800"), rs).case_score == 784.0


def test_a_stored_rule_set_is_not_refused_later_for_an_ignored_option(tmp_path: Path) -> None:
    """What import refuses is checked at import; a document stored earlier still scores."""
    from workers.dip import decode_ruleset, encode_ruleset, score
    from workers.dip._grouping import group

    ok = _rules()
    policy = msgspec.structs.replace(ok.policy, primary=PrimaryPolicy(factor=0.95))
    stored = RuleSet(policy=policy, groups=ok.groups)  # as an earlier version stored it
    doc = encode_ruleset(stored)
    again = decode_ruleset(doc)
    case = _case("3000", "J06.900")
    # primary.coefficient "none": 300 × 1 = 300, the ignored factor stays ignored
    assert score(group(case, again), again, case).case_score == 300.0
    (tmp_path / "rules.json").write_bytes(doc)
    with pytest.raises(RuleSetError, match=r"primary\.factor"):
        load_rules(tmp_path / "rules.json")
