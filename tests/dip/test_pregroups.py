"""先期分组 (DIP 3.0 pre-groups): decided before the diagnosis-based grouping, priced by the city.

Test city (the TOML of `_load`): levels 3A (K 1.0) and 2 (K 0.8); point value 310 → 12.00.
Core group G = K35.8 + 47.0100, score 1000, 次均费用 9000 (8000 at level 2). The numbers
are worked out in the comments, never copied from the output.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.builders import dip_case
from workers.dip import (
    CaseFacts,
    Group,
    GroupResult,
    PreGroupPolicy,
    PreGroupRule,
    RuleSet,
    RuleSetError,
    ScoreResult,
    group,
    group_and_score,
    load_rules,
    national_pre_group_rules,
)

TOML = """
city = "440100"
clearing_year = 2026
version = "v1"
catalog = "cat.csv"
[[levels]]
code = "3A"
coefficient = 1.0
[[levels]]
code = "2"
coefficient = 0.8
[point_values]
"310" = "12.00"
[special_review]
min_ratio = "none"
"""

HEADER = "病种编码,病种类型,主要诊断编码,手术操作编码,病种分值,次均费用,次均费用_2\n"
G_ROW = "G,核心,K35.8,47.0100,1000,9000,8000\n"


def _load(tmp_path: Path, rows: str, extra: str = "", header: str = HEADER) -> RuleSet:
    (tmp_path / "cat.csv").write_text(header + G_ROW + rows, encoding="utf-8")
    (tmp_path / "p.toml").write_text(TOML + extra, encoding="utf-8")
    return load_rules(tmp_path / "p.toml")


def _case(*ops: str, diag: str = "K35.800", cost: str = "9000", **kw: Any) -> CaseFacts:
    base: dict[str, Any] = {
        "case_key": "k",
        "hospital_level": "2",
        "main_diag_code": diag,
        "operations": tuple((op, "surgery") for op in ops),
        "total_cost": Decimal(cost),
    }
    return dip_case(**{**base, **kw})


def _group(case: CaseFacts, rules: RuleSet) -> GroupResult:
    return group(case, rules)


def _score(case: CaseFacts, rules: RuleSet) -> ScoreResult:
    return group_and_score(case, rules)[1]


# -- the national list as data ---------------------------------------------------------------


def test_the_19_national_pre_groups_read_as_matching_rules() -> None:
    rules = national_pre_group_rules()
    assert list(rules) == [f"XQ{n}" for n in range(1, 20)]
    # XQ3: seven alternatives of the MAIN operation (DIP 3.0: 依靠主要手术操作), any diagnosis
    xq3 = rules["XQ3"]
    assert xq3.diag == "" and len(xq3.operations) == 1
    assert set(xq3.operations[0].split("|")) == {
        "50.5100",
        "50.5100x001",
        "50.5900x001",
        "50.5900x004",
        "50.5900x005",
        "50.5901",
        "50.5902",
    }
    assert xq3.pre_group == PreGroupRule(national="XQ3")
    # XQ11 ECMO: 39.6500 or 39.6500x001 anywhere in the list (不限定为主要手术操作)
    assert rules["XQ11"].operations == ("39.6500|39.6500x001",)
    assert rules["XQ11"].pre_group == PreGroupRule(national="XQ11", operations_anywhere=True)
    # XQ13: '+' = both required, anywhere
    assert rules["XQ13"].operations == ("96.7201", "39.9500x007")
    assert rules["XQ13"].pre_group == PreGroupRule(national="XQ13", operations_anywhere=True)
    # XQ17: P07 in any diagnosis, 天龄 < 29 天, 出生体重 1000-1499 克 (< 1500)
    xq17 = rules["XQ17"]
    assert (xq17.diag, xq17.operations) == ("P07", ())
    assert xq17.pre_group == PreGroupRule(
        national="XQ17",
        diag_anywhere=True,
        age_days_below=29,
        min_birth_weight=Decimal(1000),
        birth_weight_below=Decimal(1500),
    )
    assert rules["XQ16"].pre_group is not None
    assert rules["XQ16"].pre_group.min_birth_weight == Decimal(0)
    assert rules["XQ19"].pre_group is not None
    assert rules["XQ19"].pre_group.birth_weight_below == Decimal(2500)


# -- a transplant lands in its pre-group whatever the main diagnosis --------------------------

XQ3_ROW = "XQ3,先期分组,,,12000,130000,120000\n"


def test_a_transplant_with_an_unrelated_main_diagnosis_lands_in_the_pre_group(
    tmp_path: Path,
) -> None:
    rules = _load(tmp_path, XQ3_ROW)
    (xq3,) = [g for g in rules.groups if g.kind == "pre_group"]
    # the national membership is written into the rule set (its hash covers it)
    assert "50.5901" in xq3.operations[0] and xq3.pre_group is not None
    # appendicitis (K35.8) with a liver transplant (50.5901) as the main operation
    case = _case("50.5901", "47.0100", cost="96000")
    g = _group(case, rules)
    assert (g.status, g.group_code, g.group_score) == ("pre_group", "XQ3", 12000.0)
    # the city's row prices it: reference 120000 at level 2, ratio 96000 / 120000 = 0.8,
    # normal; 12000 × K 0.8 = 9600 points × 12.00 = 115200.00
    s = _score(case, rules)
    assert (s.status, s.deviation, s.ratio, s.level_coefficient) == (
        "pre_group",
        "normal",
        0.8,
        0.8,
    )
    assert (s.case_score, s.estimated_payment) == (9600.0, Decimal("115200.00"))


def test_a_transplant_operation_that_is_not_the_main_one_does_not_make_the_pre_group(
    tmp_path: Path,
) -> None:
    rules = _load(tmp_path, XQ3_ROW)
    # 47.0100 main, 50.5901 a further operation: XQ3 needs the MAIN operation → core G
    g = _group(_case("47.0100", "50.5901"), rules)
    assert (g.status, g.group_code) == ("core", "G")


def test_the_pre_group_comes_before_bed_day_and_core_but_after_exclusions(
    tmp_path: Path,
) -> None:
    rows = XQ3_ROW + "B1,床日,K35,,90,,\n" + "E1,排除,K35.8,,,,\n"
    rules = _load(tmp_path, rows, "[bed_day]\nmin_days = 60\n")
    assert _group(_case("50.5901", diag="K35.300", act_ipt_days=90), rules).status == "pre_group"
    # an excluded main diagnosis stays excluded (DIP 3.0: 排除列表对照 first)
    assert _group(_case("50.5901", diag="K35.800"), rules).status == "excluded"


# -- '+' requires all; ';' alternatives; anywhere in the list ---------------------------------

VENT_ROWS = "XQ13,先期分组,,,6000,70000,\nXQ14,先期分组,,,3500,40000,\n"


def test_plus_requires_every_operation_and_the_fuller_pre_group_wins(tmp_path: Path) -> None:
    rules = _load(tmp_path, VENT_ROWS)
    # main operation 31.1x00 (tracheostomy); ventilation ≥ 96 h and CRRT further down
    both = _group(_case("31.1x00", "96.7201", "39.9500x007", diag="J96.000"), rules)
    assert (both.status, both.group_code) == ("pre_group", "XQ13")
    # ventilation alone: XQ14 (XQ13 needs both)
    vent = _group(_case("31.1x00", "96.7201", diag="J96.000"), rules)
    assert vent.group_code == "XQ14"
    # CRRT alone: no pre-group; J96 has no group here → ungrouped as before
    crrt = _group(_case("39.9500x007", diag="J96.000"), rules)
    assert crrt.status == "ungrouped"
    # XQ13 (2 operations) is tried before XQ14 whatever the catalog order
    rules = _load(tmp_path, "XQ14,先期分组,,,3500,40000,\nXQ13,先期分组,,,6000,70000,\n")
    assert _group(_case("96.7201", "39.9500x007", diag="J96.000"), rules).group_code == "XQ13"


def test_alternatives_and_the_national_order_between_pre_groups(tmp_path: Path) -> None:
    rules = _load(tmp_path, XQ3_ROW + "XQ11,先期分组,,,9000,100000,\n")
    # ECMO's second code (39.6500x001), not the main operation: XQ11
    g = _group(_case("36.0600", "39.6500x001", diag="I21.000"), rules)
    assert g.group_code == "XQ11"
    # a liver transplant on ECMO: XQ3 (seq 3) before XQ11 (seq 11)
    g = _group(_case("50.5100x001", "39.6500", diag="K72.000"), rules)
    assert g.group_code == "XQ3"


# -- newborn birth weight (P07 pre-groups) ----------------------------------------------------

P07_ROWS = "XQ17,先期分组,,,5000,60000,\n"


def _baby(**kw: Any) -> CaseFacts:
    # main diagnosis 新生儿呼吸窘迫综合征; P07.100 (其他低出生体重) among the others
    base: dict[str, Any] = {
        "diag": "P22.000",
        "other_diag_codes": ("P07.100",),
        "age_years": 0,
        "age_days": 10,
        "birth_weight": Decimal("1200"),
    }
    return _case(**{**base, **kw})


def test_low_birth_weight_by_weight_age_and_p07_anywhere(tmp_path: Path) -> None:
    rules = _load(tmp_path, P07_ROWS)
    g = _group(_baby(), rules)
    assert (g.status, g.group_code) == ("pre_group", "XQ17")
    # 1000 g is in (1000-1499), 1499.99 too; 1500 g is XQ18 (not priced here)
    assert _group(_baby(birth_weight=Decimal("1000")), rules).group_code == "XQ17"
    assert _group(_baby(birth_weight=Decimal("1499.99")), rules).group_code == "XQ17"
    assert _group(_baby(birth_weight=Decimal("1500")), rules).status != "pre_group"
    # 天龄 < 29 天: 28 days yes, 29 no; no 天龄 (age 0 without nwb_age) no
    assert _group(_baby(age_days=28), rules).group_code == "XQ17"
    assert _group(_baby(age_days=29), rules).status != "pre_group"
    assert _group(_baby(age_days=None), rules).status != "pre_group"
    # no birth weight, or no P07 among the diagnoses: ordinary grouping
    assert _group(_baby(birth_weight=None), rules).status != "pre_group"
    assert _group(_baby(other_diag_codes=()), rules).status != "pre_group"
    # P07 as the main diagnosis counts as well
    assert _group(_baby(diag="P07.100", other_diag_codes=()), rules).group_code == "XQ17"
    # priced: 5000 × K 0.8 = 4000 points (cost 48000 / 60000 = 0.8, normal) × 12 = 48000.00
    s = _score(_baby(cost="48000"), rules)
    assert (s.case_score, s.estimated_payment) == (4000.0, Decimal("48000.00"))


# -- a national pre-group the city does not price ---------------------------------------------


def test_an_unpriced_national_pre_group_falls_through_to_ordinary_grouping(
    tmp_path: Path,
) -> None:
    rules = _load(tmp_path, XQ3_ROW)
    # 96.7201 (XQ14) is not priced by this city: the case is grouped by its diagnosis and
    # operations as before, the reason names the pre-group
    case = _case("47.0100", "96.7201")
    g = _group(case, rules)
    assert (g.status, g.group_code) == ("core", "G")
    assert "XQ14" in g.reason and "not in the catalog" in g.reason
    # scored as G: 1000 × 0.8 = 800 (9000 / 8000 = 1.125, normal)
    assert _score(case, rules).case_score == 800.0
    # with the national defaults off: the same group, no note
    off = _load(tmp_path, XQ3_ROW.replace(",,,12000", ",,50.5901,12000"), NATIONAL_OFF)
    g = _group(case, off)
    assert (g.status, g.group_code, g.reason) == ("core", "G", "")


def test_the_sample_cities_group_and_score_as_before() -> None:
    """The sample cities price no pre-group: every case (a liver transplant too) groups and
    scores exactly as with the national list off, only the reason may name the pre-group."""
    from workers.dip import SAMPLE_RULES, ScoreError, decode_cases_ndjson, score

    cases = decode_cases_ndjson(
        (Path(SAMPLE_RULES["440100"]).parent / "sample-cases.ndjson").read_bytes()
    )
    transplant = dip_case(operations=(("50.5901", "surgery"), ("47.0100", "surgery")))

    def outcome(case: CaseFacts, rules: RuleSet) -> tuple[object, ...]:
        g = group(case, rules)
        try:
            s = score(g, rules, case)
        except ScoreError as exc:
            return (g.status, g.group_code, g.group_score, exc.message)
        return (g.status, g.group_code, g.group_score, s.case_score, s.estimated_payment)

    for city in SAMPLE_RULES:
        rules = load_rules(SAMPLE_RULES[city])
        assert not [g for g in rules.groups if g.kind == "pre_group"]
        off = RuleSet(
            policy=msgspec.structs.replace(rules.policy, pre_groups=PreGroupPolicy(national=False)),
            groups=rules.groups,
            exclusions=rules.exclusions,
        )
        for case in (*cases, transplant):
            assert outcome(case, rules) == outcome(case, off)
        assert "XQ3" in group(transplant, rules).reason


# -- the city's own membership and switching the national list off ----------------------------

NATIONAL_OFF = "[pre_groups]\nnational = false\n"


def test_a_city_overrides_the_national_membership_with_its_own_operations(
    tmp_path: Path,
) -> None:
    # the city pays only 异体 kidney transplants (55.6901) as XQ6, not 自体 (55.6100)
    rules = _load(tmp_path, "XQ6,先期分组,,55.6901,8000,90000,\n")
    (xq6,) = [g for g in rules.groups if g.kind == "pre_group"]
    assert xq6.operations == ("55.6901",) and xq6.pre_group == PreGroupRule(national="XQ6")
    assert _group(_case("55.6901", diag="N18.500"), rules).group_code == "XQ6"
    auto = _group(_case("55.6100", diag="N18.500"), rules)
    assert auto.status != "pre_group" and "XQ6" not in auto.reason


def test_a_city_pre_group_of_its_own_and_a_national_one_under_another_code(
    tmp_path: Path,
) -> None:
    header = HEADER.rstrip("\n") + ",先期分组编码,不限定主要手术操作\n"
    rows = (
        # Guangzhou's code for the national heart transplant (membership from the list)
        "GZ-XQ02,先期分组,所有诊断,,15000,160000,,XQ2,\n"
        # its own: a ventricular assist device anywhere in the list
        "GZ-VAD,先期分组,,37.6600x001,11000,120000,,,是\n"
    )
    rules = _load(tmp_path, rows, header=header)
    by = {g.code: g for g in rules.groups}
    assert by["GZ-XQ02"].pre_group == PreGroupRule(national="XQ2")
    assert by["GZ-XQ02"].operations == ("37.5100|37.5100x001",)
    assert by["GZ-VAD"].pre_group == PreGroupRule(operations_anywhere=True)
    assert _group(_case("37.5100x001", diag="I42.000"), rules).group_code == "GZ-XQ02"
    assert _group(_case("36.0600", "37.6600x001", diag="I50.000"), rules).group_code == "GZ-VAD"


def test_national_defaults_switched_off(tmp_path: Path) -> None:
    # a row naming the national pre-group without operations has no membership any more
    with pytest.raises(RuleSetError, match=r"XQ3.*national = false"):
        _load(tmp_path, XQ3_ROW, NATIONAL_OFF)
    # its own operations: used; the other alternatives of the national XQ3 are not
    rules = _load(tmp_path, XQ3_ROW.replace(",,,12000", ",,50.5901,12000"), NATIONAL_OFF)
    assert rules.policy.pre_groups.national is False
    assert _group(_case("50.5901"), rules).group_code == "XQ3"
    assert _group(_case("50.5100"), rules).status != "pre_group"


def test_options_left_at_their_default_keep_the_encoding() -> None:
    from workers.dip import SAMPLE_RULES, encode_ruleset

    doc = encode_ruleset(load_rules(SAMPLE_RULES["440100"]))
    assert b"pre_group" not in doc


# -- import refuses what it cannot read or would ignore ---------------------------------------


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("XQ20,先期分组,,,100,1000,\n", "XQ20.*not a national pre-group"),
        ("XQ3,先期分组,K74.6,,100,1000,\n", "XQ3.*diagnosis"),
        ("QT1,先期分组,,,100,1000,\n", "QT1.*no operations"),
        ("QT1,先期分组,,50.5901;50.5902,100,1000,\n", r"QT1.*'\|'"),
    ],
)
def test_import_refuses_pre_group_rows_it_cannot_use(
    tmp_path: Path, rows: str, message: str
) -> None:
    with pytest.raises(RuleSetError, match=message):
        _load(tmp_path, rows)


def test_a_national_pre_group_priced_twice_is_refused(tmp_path: Path) -> None:
    header = HEADER.rstrip("\n") + ",先期分组编码\n"
    rows = XQ3_ROW + "GZ3,先期分组,,,100,1000,,XQ3\n"
    with pytest.raises(RuleSetError, match=r"XQ3.*twice"):
        _load(tmp_path, rows, header=header)


def test_operations_anywhere_on_another_kind_is_refused(tmp_path: Path) -> None:
    header = HEADER.rstrip("\n") + ",不限定主要手术操作\n"
    with pytest.raises(RuleSetError, match=r"G2.*pre-group"):
        _load(tmp_path, "G2,核心,K35.3,47.0100,900,8000,,是\n", header=header)


def test_a_pre_group_rule_on_another_kind_is_refused() -> None:
    from workers.dip import Level, Policy, make_ruleset

    policy = Policy(
        city="440100",
        clearing_year=2026,
        version="t",
        levels=(Level(code="3A", coefficient=1.0),),
        point_values={"310": Decimal("12")},
    )
    bad = Group(
        code="G", kind="core", diag="K35.8", score=1.0, pre_group=PreGroupRule(national="XQ3")
    )
    with pytest.raises(RuleSetError, match=r"G.*pre-group"):
        make_ruleset(policy, (bad,))


def test_two_pre_groups_matching_the_same_cases_are_refused(tmp_path: Path) -> None:
    rows = "QT1,先期分组,,50.5901,100,1000,\nQT2,先期分组,,50.5901,200,2000,\n"
    with pytest.raises(RuleSetError, match=r"QT1 and QT2 match the same cases"):
        _load(tmp_path, rows)


def test_operations_anywhere_needs_operations_of_the_row_itself(tmp_path: Path) -> None:
    header = HEADER.rstrip("\n") + ",不限定主要手术操作\n"
    with pytest.raises(RuleSetError, match=r"XQ3.*不限定主要手术操作"):
        _load(tmp_path, "XQ3,先期分组,,,12000,130000,120000,是\n", header=header)


def test_adjustments_apply_to_pre_groups_when_the_city_lists_them(tmp_path: Path) -> None:
    icu = "[[adjustments.icu]]\nmin_days = 2\nfactor = 1.5\n"
    case = _case("50.5901", cost="96000", icu_minutes=3 * 1440)
    # apply_to default ("core",): 12000 × 0.8 = 9600, no ICU factor
    assert _score(case, _load(tmp_path, XQ3_ROW, "[adjustments]\n" + icu)).case_score == 9600.0
    extra = '[adjustments]\napply_to = ["core", "pre_group"]\n' + icu
    # 3 ICU days ≥ 2: 12000 × 0.8 × 1.5 = 14400 (ratio 96000 / 120000 = 0.8, normal)
    assert _score(case, _load(tmp_path, XQ3_ROW, extra)).case_score == 14400.0


def test_resolving_is_idempotent_and_a_stored_rule_set_groups_the_same(tmp_path: Path) -> None:
    from workers.dip import decode_ruleset, encode_ruleset, make_ruleset

    rules = _load(tmp_path, XQ3_ROW + P07_ROWS + VENT_ROWS)
    again = make_ruleset(rules.policy, rules.groups, rules.exclusions)
    stored = decode_ruleset(encode_ruleset(rules))
    assert again.content_hash == stored.content_hash == rules.content_hash
    for rs in (again, stored):
        assert _group(_baby(), rs).group_code == "XQ17"
        assert _group(_case("50.5901"), rs).group_code == "XQ3"
