"""Grouping: exclusions → bed-day → core/primary → comprehensive, on small inline catalogs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.builders import dip_case
from workers.dip import (
    BedDayPolicy,
    CaseFacts,
    Exclusion,
    Group,
    GroupingPolicy,
    Level,
    Policy,
    RuleSet,
    RuleSetError,
    group,
    make_ruleset,
    sample_rules,
)


def _policy(**kw: Any) -> Policy:
    base: dict[str, Any] = {
        "city": "440100",
        "clearing_year": 2026,
        "version": "t1",
        "catalog_version": "cat-t1",
        "levels": (Level(code="3A", coefficient=1.0), Level(code="2", coefficient=0.8)),
        "point_values": {"310": Decimal("12.00")},
    }
    base.update(kw)
    return Policy(**base)


def _core(code: str, diag: str, *ops: str, kind: str = "core", score: float = 1000.0) -> Group:
    return Group(code=code, kind=kind, diag=diag, score=score, operations=ops)  # type: ignore[arg-type]


def _comp(code: str, cat: str, treatment: str, score: float = 500.0) -> Group:
    return Group(code=code, kind="comprehensive", diag=cat, score=score, treatment=treatment)  # type: ignore[arg-type]


GROUPS = (
    _core("A0", "K35.8"),
    _core("A1", "K35.8", "47.0100"),
    _core("A2", "K35.8", "47.0901"),
    _core("M1", "I21.0", "36.0600"),
    _core("M2", "I21.0", "36.0600", "00.2400"),
    _core("V1", "I83.9", "38.5900x010", "38.5901|38.5903"),
    _core("P1", "J06.9", kind="primary", score=300.0),
    _comp("Z-K35-S", "K35", "surgery"),
    _comp("Z-K35-T", "K35", "therapeutic"),
    _comp("Z-K35-D", "K35", "diagnostic"),
    _comp("Z-K35-C", "K35", "conservative"),
    _comp("Z-K80-C", "K80", "conservative"),
    Group(code="B1", kind="bed_day", diag="F20", score=12.0),
)
EXCL = (
    Exclusion(code="Z53", target="diagnosis"),
    Exclusion(code="89.5200", target="operation"),
)


def _rules(groups: tuple[Group, ...] = GROUPS, **policy: Any) -> RuleSet:
    return make_ruleset(_policy(**policy), groups, EXCL)


def _case(diag: str, *ops: tuple[str, str], **kw: Any) -> CaseFacts:
    base: dict[str, Any] = {
        "case_key": "H44010000001:1",
        "hospital_level": "2",
        "main_diag_code": diag,
        "operations": ops,
        "total_cost": Decimal("8000"),
    }
    return dip_case(**{**base, **kw})


RULES = _rules()


def test_core_subcategory_plus_main_operation() -> None:
    r = group(_case("K35.800x002", ("47.0100", "surgery")), RULES)
    assert (r.status, r.group_code, r.group_score) == ("core", "A1", 1000.0)
    r = group(_case("K35.801", ("47.0901", "surgery")), RULES)
    assert r.group_code == "A2"


def test_core_conservative_has_no_operations() -> None:
    assert group(_case("K35.800"), RULES).group_code == "A0"


def test_related_operation_selects_the_richer_group_in_any_order() -> None:
    with_ivus = _case("I21.000", ("36.0600", "intervention"), ("00.2400", "diagnostic"))
    assert group(with_ivus, RULES).group_code == "M2"
    # an unrelated extra operation leaves the main-operation group
    other = _case("I21.000", ("36.0600", "intervention"), ("88.5700", "diagnostic"))
    assert group(other, RULES).group_code == "M1"


def test_main_operation_is_the_first_listed() -> None:
    # 00.2400 listed first: no core group has it as main operation, so not M2; the case falls
    # through to comprehensive, and this catalog has no I21 comprehensive group → ungrouped
    r = group(_case("I21.000", ("00.2400", "diagnostic"), ("36.0600", "intervention")), RULES)
    assert (r.status, r.group_code) == ("ungrouped", "")


def test_alternative_operations_joined_by_bar() -> None:
    for alt in ("38.5901", "38.5903"):
        case = _case("I83.900", ("38.5900x010", "surgery"), (alt, "surgery"))
        assert group(case, RULES).group_code == "V1"
    missing = _case("I83.900", ("38.5900x010", "surgery"), ("38.5902", "surgery"))
    assert group(missing, RULES).status == "ungrouped"  # no main-only group, no I83 comp.


def test_set_mode_matches_the_sorted_operation_set() -> None:
    rules = _rules(grouping=GroupingPolicy(core_operation_match="set"))
    case = _case("I21.000", ("00.2400", "diagnostic"), ("36.0600", "intervention"))
    assert group(case, rules).group_code == "M2"
    assert group(_case("I21.000", ("36.0600", "surgery")), rules).group_code == "M1"
    extra = _case("I21.000", ("36.0600", "surgery"), ("88.5700", "diagnostic"))
    assert group(extra, rules).status == "ungrouped"


def test_main_mode_ignores_related_operations() -> None:
    groups = tuple(g for g in GROUPS if g.code != "M2")
    rules = _rules(groups, grouping=GroupingPolicy(core_operation_match="main"))
    case = _case("I21.000", ("36.0600", "surgery"), ("00.2400", "diagnostic"))
    assert group(case, rules).group_code == "M1"


def test_excluded_diagnosis_and_ignored_operation() -> None:
    assert group(_case("Z53.000"), RULES).status == "excluded"
    # 89.5200 (ECG) is on the operation exclusion list: dropped before matching
    case = _case("K35.800", ("47.0100", "surgery"), ("89.5200", "diagnostic"))
    assert group(case, RULES).group_code == "A1"
    only_ecg = _case("K35.800", ("89.5200", "diagnostic"))
    assert group(only_ecg, RULES).group_code == "A0"


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ((("54.1100", "surgery"), ("88.7200", "diagnostic")), "Z-K35-S"),
        ((("88.7200", "diagnostic"), ("99.1000", "therapeutic")), "Z-K35-T"),
        ((("88.7200", "diagnostic"),), "Z-K35-D"),
        ((("39.5000", "intervention"),), "Z-K35-T"),  # default: 介入 counts as therapeutic
        ((), "Z-K35-C"),
    ],
)
def test_comprehensive_ladder(ops: tuple[tuple[str, str], ...], expected: str) -> None:
    r = group(_case("K35.900", *ops), RULES)
    assert (r.status, r.group_code) == ("comprehensive", expected)


def test_intervention_as_surgery_and_main_class() -> None:
    rules = _rules(grouping=GroupingPolicy(intervention_as="surgery", comprehensive_by="main"))
    assert group(_case("K35.900", ("39.5000", "intervention")), rules).group_code == "Z-K35-S"
    # by main: the main operation is diagnostic although a surgery follows
    case = _case("K35.900", ("88.7200", "diagnostic"), ("54.1100", "surgery"))
    assert group(case, rules).group_code == "Z-K35-D"


def test_fallback_to_conservative_comprehensive() -> None:
    case = _case("K80.200", ("51.2200", "surgery"))  # K80: only a conservative group
    assert group(case, RULES).group_code == "Z-K80-C"
    strict = _rules(grouping=GroupingPolicy(fallback_to_conservative=False))
    r = group(case, strict)
    assert (r.status, r.group_code, r.treatment) == ("ungrouped", "", "surgery")


def test_unknown_operation_class_is_not_guessed() -> None:
    r = group(_case("K35.900", ("54.1100", "laser")), RULES)
    assert r.status == "ungrouped" and "laser" in r.reason


def test_primary_care_group_status() -> None:
    r = group(_case("J06.900"), RULES)
    assert (r.status, r.group_code, r.group_score) == ("primary", "P1", 300.0)


def test_bed_day_only_for_long_stays() -> None:
    long_stay = _case("F20.000", act_ipt_days=60)
    assert group(long_stay, RULES).status == "bed_day"
    assert group(_case("F20.000", act_ipt_days=59), RULES).status == "ungrouped"
    rules = _rules(bed_day=BedDayPolicy(min_days=30))
    assert group(_case("F20.000", act_ipt_days=30), rules).group_code == "B1"


def test_blank_and_dagger_diagnoses() -> None:
    assert group(_case("  "), RULES).status == "ungrouped"
    rules = _rules((_core("T1", "A01.0"),))
    assert group(_case("a01.001+K77.0*"), rules).group_code == "T1"


def test_result_records_catalog_and_ruleset_versions() -> None:
    r = group(_case("K35.800"), RULES)
    assert r.catalog_version == "cat-t1"
    assert r.ruleset_version == RULES.version_id
    assert r.ruleset_version.startswith("440100/2026/t1@")


def test_inconsistent_catalogs_are_rejected() -> None:
    with pytest.raises(RuleSetError):
        _rules((_core("X1", "K35.8", "47.0100"), _core("X2", "K35.8", "47.0100")))
    with pytest.raises(RuleSetError):
        _rules((_core("X1", "K35.8"), _core("X1", "K35.3")))
    with pytest.raises(RuleSetError):
        _rules((Group(code="C", kind="comprehensive", diag="K35", score=1.0),))


def test_sample_rules_group_appendicitis_pci_and_cholecystectomy() -> None:
    gz = sample_rules("440100")
    assert group(_case("K35.800x002", ("47.0100", "surgery")), gz).group_code == "GZ-C002"
    assert group(_case("K35.800", ("47.0901", "surgery")), gz).group_code == "GZ-C003"
    pci = _case("I21.000", ("36.0600", "intervention"))
    assert group(pci, gz).group_code == "GZ-C007"
    sz = sample_rules("440300")
    lc = _case("K80.100", ("51.2300", "surgery"), hospital_level="3")
    assert group(lc, sz).group_code == "SZ0013"
