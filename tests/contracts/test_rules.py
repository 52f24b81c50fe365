# ruff: noqa: E501  (the rule table is clearer one case per line)
"""Every rule of data/rules.toml: one passing and one failing case, on both engine paths.

Each case mutates the golden record; `check` runs the hot path and the full engine and
asserts they agree, so every case below also tests the fast path's equivalence.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from contracts import rulebook
from tests.builders import (
    DELETE,
    RECEIVED,
    at,
    check,
    fields_of_rule,
    golden,
    legacy_golden,
    make_certno_fixed,
    mutate,
    rules,
)

Doc = dict[str, Any]
SL = "input.setlinfo."


def infant(doc: Doc, days: int = 60) -> Doc:
    """Make the patient `days` old at admission (2026-11-10)."""
    birth = {60: "2026-09-11", 10: "2026-10-31"}[days]
    at(doc, SL + "brdy", birth)
    at(doc, SL + "certno", make_certno_fixed(birth=birth))
    at(doc, SL + "age", DELETE)
    at(doc, SL + "nwb_age", days)
    at(doc, SL + "nwb_bir_wt", "3200")
    at(doc, SL + "nwb_adm_wt", "3300")
    return doc


def edit(**changes: Any) -> Callable[[Doc], Doc]:
    return lambda doc: mutate(doc, **changes)


def seq(*steps: Callable[[Doc], Doc]) -> Callable[[Doc], Doc]:
    def run(doc: Doc) -> Doc:
        for step in steps:
            doc = step(doc)
        return doc

    return run


def setl(**changes: Any) -> Callable[[Doc], Doc]:
    return edit(**{f"input__setlinfo__{k}": v for k, v in changes.items()})


def same(doc: Doc) -> Doc:
    return doc


LEGACY = lambda _doc: legacy_golden()  # noqa: E731

# rule -> (passing mutation, failing mutation, field the failure names)
CASES: dict[str, tuple[Callable[[Doc], Doc], Callable[[Doc], Doc], str]] = {
    "ENV_INFNO": (edit(infno="4101a"), edit(infno="4102"), "infno"),
    "INST_FORMAT": (same, edit(fixmedins_code="X44010000001"), "fixmedins_code"),
    "ADMDVS_FORMAT": (edit(mdtrtarea_admvs="440000"), edit(mdtrtarea_admvs="990100"), "mdtrtarea_admvs"),
    "ADMDVS_UNKNOWN": (edit(insuplc_admdvs="439900", input__setlinfo__insuplc="439900"), edit(mdtrtarea_admvs="440188"), "mdtrtarea_admvs"),
    "INST_REGION": (edit(mdtrtarea_admvs="440000"), edit(mdtrtarea_admvs="440300"), "fixmedins_code"),
    "INST_MATCH": (LEGACY, seq(LEGACY, setl(fixmedins_code="H44010000002")), "setlinfo.fixmedins_code"),
    "INSUPLC_MATCH": (same, edit(insuplc_admdvs="440300"), "insuplc_admdvs"),
    "REQ_FIELD": (seq(LEGACY, setl(psn_no=DELETE)), setl(psn_no=DELETE), "setlinfo.psn_no"),
    "REQ_AGE": (lambda d: infant(d), setl(age=DELETE), "setlinfo.age"),
    "REQ_NWB_AGE": (lambda d: infant(d), seq(lambda d: infant(d), setl(nwb_age=DELETE)), "setlinfo.nwb_age"),
    "REQ_CONER": (setl(coner_name=DELETE, coner_tel=DELETE), setl(coner_tel=""), "setlinfo.coner_tel"),
    "REQ_ACP_MEDINS": (
        setl(dscg_way="2", acp_medins_name="广州市第二人民医院", acp_optins_code="H44010000002"),
        setl(dscg_way="2"),
        "setlinfo.acp_medins_name",
    ),
    "REQ_NWB_WT": (lambda d: infant(d, 10), seq(lambda d: infant(d, 10), setl(nwb_adm_wt=DELETE)), "setlinfo.nwb_adm_wt"),
    "DIAG_MAIN": (
        edit(input__diseinfo__2={"diag_type": "2", "diag_code": "BNG010", "diag_name": "胁痛", "maindiag_flag": "1"}),
        edit(input__diseinfo__1__maindiag_flag="1"),
        "diseinfo",
    ),
    "OPRN_MAIN": (same, edit(input__oprninfo__0__oprn_oprt_type="2"), "oprninfo"),
    "FMT_LENGTH": (setl(medcasno="B" * 40), setl(medcasno="B" * 41), "setlinfo.medcasno"),
    "DICT_VALUE": (setl(refldept_dept="A03→A04.01"), setl(refldept_dept="A03→Z99"), "setlinfo.refldept_dept"),
    "FMT_DATETIME": (setl(adm_time="2026-11-10"), setl(adm_time="2026/11/10 08:00"), "setlinfo.adm_time"),
    "FMT_DURATION": (setl(vent_used_dura="1/13/24"), setl(vent_used_dura="1/24/00"), "setlinfo.vent_used_dura"),
    "FMT_NUMBER": (
        edit(input__bldinfo__0__bld_amt="12.34"),
        edit(input__bldinfo__0__bld_amt="12.345"),
        "bldinfo[0].bld_amt",
    ),
    "FMT_POSCODE": (setl(poscode="510000"), setl(poscode="51000A"), "setlinfo.poscode"),
    "FMT_WEIGHTS": (setl(mul_nwb_bir_wt="3000,2800"), setl(mul_nwb_bir_wt="3000;2800"), "setlinfo.mul_nwb_bir_wt"),
    "DIAG_FORMAT": (
        edit(input__diseinfo__0__diag_code="k80.100"),
        edit(input__diseinfo__0__diag_code="K80-1"),
        "diseinfo[0].diag_code",
    ),
    "DIAG_UNKNOWN": (
        edit(input__diseinfo__1__diag_code="I10.x00x002"),
        edit(input__diseinfo__1__diag_code="I10.x99"),
        "diseinfo[1].diag_code",
    ),
    "OPRN_FORMAT": (
        edit(input__oprninfo__1__oprn_oprt_code="74.1X00"),
        edit(input__oprninfo__1__oprn_oprt_code="8952"),
        "oprninfo[1].oprn_oprt_code",
    ),
    "OPRN_UNKNOWN": (
        edit(input__oprninfo__1__oprn_oprt_code="47.0100"),
        edit(input__oprninfo__1__oprn_oprt_code="89.9999"),
        "oprninfo[1].oprn_oprt_code",
    ),
    "DIAG_LEGACY": (
        edit(input__diseinfo__1__diag_code="K35.800x001"),
        edit(input__diseinfo__1__diag_code="K35.900"),
        "diseinfo[1].diag_code",
    ),
    "OPRN_LEGACY": (
        edit(input__oprninfo__1__oprn_oprt_code="00.5000x004"),
        edit(input__oprninfo__1__oprn_oprt_code="37.8300x002"),
        "oprninfo[1].oprn_oprt_code",
    ),
    "CERTNO_CHECK": (
        setl(patn_cert_type="03", certno="440100197005010010"),
        setl(certno="440100197005010010"),
        "setlinfo.certno",
    ),
    "CERTNO_BRDY": (same, setl(brdy="1970-05-02"), "setlinfo.brdy"),
    "FMT_IDENT": (setl(setl_id="结算-0001"), setl(setl_id="SETL\u202e1000"), "setlinfo.setl_id"),
    "CERTNO_GEND": (setl(gend="9"), setl(gend="2"), "setlinfo.gend"),
    "DATE_ADM_DSCG": (
        setl(adm_time="2026-11-20 12:00:00", dscg_time="2026-11-20", setl_begn_date="2026-11-20"),
        setl(dscg_time="2026-11-09 10:00:00", setl_end_date="2026-11-09", setl_begn_date="2026-11-09"),
        "setlinfo.dscg_time",
    ),
    "DATE_DSCG_SETL": (setl(setl_time="2026-11-20 09:00:00"), setl(setl_time="2026-11-19 23:00:00"), "setlinfo.setl_time"),
    "DATE_SETL_PERIOD": (setl(setl_begn_date="2026-11-15"), setl(setl_begn_date="2026-11-21"), "setlinfo.setl_end_date"),
    "DATE_BIRTH": (same, setl(brdy="2026-11-11"), "setlinfo.brdy"),
    "DATE_OPRN_STAY": (
        edit(input__oprninfo__0__oprn_oprt_begntime="2026-11-10"),
        edit(input__oprninfo__0__oprn_oprt_endtime="2026-11-12 08:59:00"),
        "oprninfo[0].oprn_oprt_endtime",
    ),
    "DATE_ICU_STAY": (
        edit(input__icuinfo__0__scs_cutd_exit_time="2026-11-20 10:00:00"),
        edit(input__icuinfo__0__scs_cutd_exit_time="2026-11-21 10:00:00"),
        "icuinfo[0].scs_cutd_exit_time",
    ),
    "IPT_DAYS": (LEGACY, seq(LEGACY, setl(act_ipt_days=11)), "setlinfo.act_ipt_days"),
    "AGE_CONSISTENT": (setl(age="55"), setl(age="30"), "setlinfo.age"),
    "SEX_DIAG": (
        edit(input__diseinfo__1__diag_code="N40.x00"),
        edit(input__diseinfo__1__diag_code="N80.000"),
        "diseinfo[1].diag_code",
    ),
    "AGE_DIAG": (
        seq(lambda d: infant(d), edit(input__diseinfo__1__diag_code="P07.300")),
        edit(input__diseinfo__1__diag_code="P07.300"),
        "diseinfo[1].diag_code",
    ),
    "NWB_WEIGHT": (setl(nwb_bir_wt="3200"), setl(nwb_bir_wt="150"), "setlinfo.nwb_bir_wt"),
    "AMT_NONNEG": (setl(acct_pay="0"), setl(acct_pay="-1.00"), "setlinfo.acct_pay"),
    "AMT_PARTS": (setl(fund_pay_sumamt="20000.00"), setl(fund_pay_sumamt="20000.01"), "setlinfo.fund_pay_sumamt"),
    "AMT_ITEMS_TOTAL": (
        edit(input__iteminfo=[{"med_chrgitm": "06", "amt": "20000.00"}]),
        edit(input__iteminfo=[{"med_chrgitm": "06", "amt": "19000.00"}]),
        "setlinfo.medfee_sumamt",
    ),
}  # fmt: skip

# decode rules and the timeliness rule need other inputs than a mutated document
SPECIAL = {"DEC_JSON", "DEC_SHAPE", "DEC_TYPE", "DEC_ROW", "LAG_UPLOAD", "DATE_FUTURE"}


def test_every_rule_has_a_case() -> None:
    assert set(rulebook()) == set(CASES) | SPECIAL


def test_every_rule_is_listed_in_the_contracts_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "contracts" / "README.md").read_text("utf-8")
    assert [r for r in rulebook() if f"| `{r}` |" not in readme] == []


def test_golden_records_are_clean() -> None:
    assert check(golden()) == []
    assert check(legacy_golden()) == []


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_passes(rule: str) -> None:
    passing, _failing, _field = CASES[rule]
    errors = check(passing(golden()))
    assert rule not in rules(errors), errors


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fails(rule: str) -> None:
    _passing, failing, field = CASES[rule]
    errors = check(failing(golden()))
    assert field in fields_of_rule(errors, rule), errors
    meta = rulebook()[rule]
    hit = next(e for e in errors if e.rule == rule and e.field == field)
    assert hit.dimension == meta.dimension
    assert hit.severity == meta.severity
    assert hit.message and hit.message_en


def test_dec_json() -> None:
    assert rules(check(b'{"infno": "4101A",')) == {"DEC_JSON"}
    assert "DEC_JSON" not in rules(check(golden()))


def test_dec_shape() -> None:
    assert rules(check(b"[1, 2]")) == {"DEC_SHAPE"}
    assert rules(check(b'"text"')) == {"DEC_SHAPE"}


def test_dec_type_names_the_field() -> None:
    errors = check(mutate(golden(), input__setlinfo__lv1_nurscare_days="many"))
    assert [(e.rule, e.field) for e in errors] == [("DEC_TYPE", "setlinfo.lv1_nurscare_days")]
    # a numeric string is a number (national exports often quote numbers)
    assert check(mutate(golden(), input__setlinfo__lv1_nurscare_days="2")) == []


def test_lag_upload_threshold() -> None:
    late = datetime(2026, 11, 27, 10, 0, 1)  # 7 days and 1 second after discharge
    assert fields_of_rule(check(golden(), received_at=late), "LAG_UPLOAD") == {"setlinfo.dscg_time"}
    on_time = datetime(2026, 11, 27, 10, 0, 0)
    assert "LAG_UPLOAD" not in rules(check(golden(), received_at=on_time))


def test_date_future() -> None:
    before = datetime(2026, 11, 20, 9, 0, 0)
    assert "DATE_FUTURE" in rules(check(golden(), received_at=before))
    assert "DATE_FUTURE" not in rules(check(golden(), received_at=RECEIVED))


def test_received_at_with_offset_is_compared_in_cst() -> None:

    # 2026-11-20 02:30 UTC = 10:30 CST, 30 minutes after the discharge
    utc = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)
    assert "DATE_FUTURE" not in rules(check(golden(), received_at=utc))
    utc_before = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)  # 09:30 CST
    assert "DATE_FUTURE" in rules(check(golden(), received_at=utc_before))


def test_errors_report_all_problems_at_once() -> None:
    doc = mutate(
        golden(),
        input__setlinfo__gend="7",
        input__setlinfo__medcasno="B" * 41,
        input__diseinfo__0__diag_code="K80-1",
        input__oprninfo__0__oprn_oprt_code="89.9999",
    )
    assert {"DICT_VALUE", "FMT_LENGTH", "DIAG_FORMAT", "OPRN_UNKNOWN"} <= rules(check(doc))


def test_reject_and_warn_severities() -> None:
    errors = check(mutate(golden(), input__setlinfo__dscg_way="3"))
    assert errors and all(e.severity == "warn" for e in errors)


def test_dagger_asterisk_pair_checked_part_by_part() -> None:
    ok = mutate(golden(), input__diseinfo__1__diag_code="A01.000+K80.100")
    assert "DIAG_UNKNOWN" not in rules(check(ok))
    bad = mutate(golden(), input__diseinfo__1__diag_code="A01.000+K80.199*")
    assert "DIAG_UNKNOWN" in rules(check(bad))


def test_tcm_diagnoses_are_not_checked_against_icd10() -> None:
    tcm = {"diag_type": "2", "diag_code": "BNG010", "diag_name": "胁痛", "maindiag_flag": "0"}
    doc = mutate(golden(), input__diseinfo__2=tcm)
    assert check(doc) == []


def test_legacy_upload_requires_its_own_fields() -> None:
    doc = legacy_golden()
    at(doc, SL + "hsorg", DELETE)
    assert fields_of_rule(check(doc), "REQ_FIELD") == {"setlinfo.hsorg"}
    # the same field is optional in a 4101A upload
    assert check(mutate(golden(), input__setlinfo__hsorg=None)) == []


def test_message_never_echoes_personal_values() -> None:
    doc = mutate(
        golden(), input__setlinfo__certno="110105194912310023", input__setlinfo__psn_name="X" * 60
    )
    errors = check(doc)
    assert {"CERTNO_CHECK", "FMT_LENGTH"} <= rules(errors)
    text = msgspec.json.encode(errors).decode()
    assert "110105194912310023" not in text and "XXXXXXXX" not in text


def test_aliased_amount_is_reported_once_under_the_name_sent() -> None:
    doc = legacy_golden()
    at(doc, SL + "psn_cashpay", "-5.00")
    errors = [e for e in check(doc) if e.rule == "AMT_NONNEG"]
    assert [e.field for e in errors] == ["setlinfo.psn_cashpay"]


# -- hostile identity (issue 11) -------------------------------------------------------------


def test_a_list_naming_another_hospital_inside_is_refused_in_4101a_too() -> None:
    """4101A leaves `setlinfo.fixmedins_code` out, but a list that sends it with another
    hospital than its envelope's was accepted as the envelope's hospital."""
    errors = check(mutate(golden(), input__setlinfo__fixmedins_code="H44010000002"))
    assert fields_of_rule(errors, "INST_MATCH") == {"setlinfo.fixmedins_code"}
    assert check(mutate(golden(), input__setlinfo__fixmedins_code="H44010000001")) == []


@pytest.mark.parametrize(
    "char", ["\u202e", "\u2028", "\u2029", "\u200b", "\u2066", "\x1b", "\x85", "\ufeff"]
)
@pytest.mark.parametrize("field", ["setl_id", "mdtrt_id", "psn_no", "medcasno"])
def test_identifiers_refuse_invisible_and_layout_characters(char: str, field: str) -> None:
    """A case key with a right-to-left override or a line separator can spoof listings."""
    errors = check(mutate(golden(), **{f"input__setlinfo__{field}": f"SETL{char}0001"}))
    assert fields_of_rule(errors, "FMT_IDENT") == {f"setlinfo.{field}"}


def test_identifiers_may_be_any_printable_text() -> None:
    assert check(mutate(golden(), input__setlinfo__medcasno="住院BA-0001/2")) == []


@pytest.mark.parametrize("number", [b"1e-400", b"-1E-400", b"1e400", b"2.5e-320"])
@pytest.mark.parametrize("field", ["nwb_age", "lv1_nurscare_days", "acct_pay"])
def test_numbers_beyond_float_range_are_refused_not_rounded(number: bytes, field: str) -> None:
    """`1e-400` in an integer field was read as 0 (a silent underflow)."""
    doc = mutate(golden(), **{f"input__setlinfo__{field}": 12345})
    raw = msgspec.json.encode(doc).replace(b":12345", b":" + number)
    errors = check(raw)
    refused = fields_of_rule(errors, "DEC_TYPE") | fields_of_rule(errors, "FMT_NUMBER")
    assert f"setlinfo.{field}" in refused, errors  # (an amount is exact: FMT_NUMBER says why)


def test_exponents_inside_text_and_ordinary_exponents_are_not_numbers_out_of_range() -> None:
    doc = mutate(golden(), input__setlinfo__medcasno="BA1e-400", input__setlinfo__acct_pay=12345)
    raw = msgspec.json.encode(doc).replace(b":12345", b":1.5e2")
    assert "DEC_TYPE" not in rules(check(raw))


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        ("fixmedins_code", "H４４０１００００００１", "INST_FORMAT"),  # fullwidth digits
        ("fixmedins_code", "H44010000001\n", "INST_FORMAT"),  # `$` took a final newline
        ("mdtrtarea_admvs", "４４０１００", "ADMDVS_FORMAT"),
        ("input.diseinfo.0.diag_code", "K３5.800x002", "DIAG_FORMAT"),
        ("input.oprninfo.0.oprn_oprt_code", "４7.0100", "OPRN_FORMAT"),
    ],
)
def test_codes_are_ascii_digits_only(path: str, value: str, rule: str) -> None:
    doc = golden()
    at(doc, path, value)
    assert rule in rules(check(doc))


@pytest.mark.parametrize(
    ("path", "legacy"),
    [
        ("input.setlinfo.age", False),
        ("input.setlinfo.acct_pay", False),
        ("input.iteminfo.0.amt", True),
        ("input.payinfo.0.fund_payamt", True),
    ],
)
def test_a_number_past_decimal_range_is_refused_not_a_crash(path: str, legacy: bool) -> None:
    """`1E+999999999` decodes into a Decimal, and arithmetic on it raised decimal.Overflow:
    a 500 on every upload endpoint (found by the API fuzzer, issue 11)."""
    doc = legacy_golden() if legacy else golden()
    at(doc, path, 12345)
    raw = msgspec.json.encode(doc).replace(b":12345", b":1E+999999999")
    errors = check(raw)
    field = path.removeprefix("input.").replace(".0.", "[0].")
    assert field in fields_of_rule(errors, "DEC_TYPE") | fields_of_rule(errors, "FMT_NUMBER")
    assert rules(errors) & {"DEC_TYPE", "FMT_NUMBER"}
