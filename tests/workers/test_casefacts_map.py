"""The mapping from an upload document (national envelope JSON) to the DIP core's CaseFacts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from tests.builders import dip_document
from workers.casefacts_map import MappingError, case_facts, oprn_class
from workers.dip import CaseFacts


def facts(doc: dict[str, Any], insured: str | None = None) -> CaseFacts:
    return case_facts(
        msgspec.json.encode(doc),
        case_key="H44010000001:S1",
        fixmedins_code="H44010000001",
        treating_admdvs=doc["mdtrtarea_admvs"],
        insured_admdvs=insured,
        hospital_level="3A",
    )


def test_the_fields_dip_needs() -> None:
    doc = dip_document(insured="440300", total="12345.67", insutype="390")
    setl = doc["input"]["setlinfo"]
    setl.update(act_ipt_days=6, nwb_age=None, hifp_pay="8000.10", dscg_way="5")
    doc["input"]["icuinfo"] = [
        {"scs_cutd_sum_dura": "1/02/30"},
        {"scs_cutd_sum_dura": "0/12/00"},
    ]
    f = facts(doc)
    assert (f.treating_admdvs, f.insured_admdvs, f.insutype) == ("440100", "440300", "390")
    assert f.total_cost == Decimal("12345.67") and f.fund_pay == Decimal("8000.10")
    others = tuple(d["diag_code"] for d in doc["input"]["diseinfo"][1:])
    assert (f.main_diag_code, f.other_diag_codes) == ("K35.800x001", others)
    assert f.operations == (("47.0100", "surgery"),)
    assert (f.age_years, f.act_ipt_days, f.dscg_way) == (int(setl["age"]), 6, "5")
    assert f.icu_minutes == (24 * 60 + 150) + 12 * 60
    assert f.discharge_date == setl["dscg_time"][:10] and f.hospital_level == "3A"


def test_main_diagnosis_and_main_operation_by_their_flags() -> None:
    doc = dip_document(oprn=None)
    doc["input"]["diseinfo"] = [
        {"diag_code": "I10.x00", "maindiag_flag": "0"},
        {"diag_code": "A01.001+K77.0*", "maindiag_flag": "1"},
    ]
    doc["input"]["oprninfo"] = [
        {"oprn_oprt_code": "89.5200", "oprn_oprt_type": "2"},
        {"oprn_oprt_code": "47.0100", "oprn_oprt_type": "1"},
        {"oprn_oprt_code": "99.9999", "oprn_oprt_type": "2"},
    ]
    f = facts(doc)
    assert f.main_diag_code == "A01.001"  # the dagger half groups
    assert f.other_diag_codes == ("I10.x00",)
    # Main first; classes from the bundled code table, the documented guess for unknown codes.
    assert f.operations == (
        ("47.0100", "surgery"),
        ("89.5200", "diagnostic"),
        ("99.9999", "diagnostic"),
    )


def test_stay_days_from_the_dates_when_4101a_leaves_them_out() -> None:
    doc = dip_document()
    setl = doc["input"]["setlinfo"]
    setl.pop("act_ipt_days", None)
    setl.update(adm_time="2026-11-02 08:00:00", dscg_time="2026-11-12 10:00:00")
    assert facts(doc).act_ipt_days == 10
    setl.update(adm_time="2026-11-12 08:00:00")
    assert facts(doc).act_ipt_days == 1  # admitted and discharged the same day
    setl.update(act_ipt_days="7")
    assert facts(doc).act_ipt_days == 7


def test_operation_classes() -> None:
    assert oprn_class("36.0600", True) == "intervention"  # NHSA: 介入治疗
    assert oprn_class("99.1000", False) == "therapeutic"
    assert oprn_class("00.0000", True) == "surgery"  # not in the tables: main → surgery
    assert oprn_class("00.0000", False) == "diagnostic"


def test_numbers_as_text_or_json_numbers_and_insured_fallbacks() -> None:
    doc = dip_document()
    setl = doc["input"]["setlinfo"]
    setl.update(medfee_sumamt=8800.5, age="67", act_ipt_days="4")
    doc.pop("insuplc_admdvs")
    setl["insuplc"] = "440300"
    f = facts(doc)
    assert f.total_cost == Decimal("8800.5") and f.age_years == 67 and f.act_ipt_days == 4
    assert f.insured_admdvs == "440300"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["input"]["setlinfo"].pop("medfee_sumamt"), "setlinfo.medfee_sumamt"),
        (lambda d: d["input"]["setlinfo"].update(medfee_sumamt="n/a"), "setlinfo.medfee_sumamt"),
        (lambda d: d["input"].update(diseinfo=[]), "diseinfo"),
    ],
)
def test_what_cannot_be_grouped_says_which_field(change: Any, field: str) -> None:
    doc = dip_document()
    change(doc)
    with pytest.raises(MappingError) as err:
        facts(doc)
    assert err.value.field == field and err.value.message and err.value.message_en


def test_no_personal_data_is_carried() -> None:
    doc = dip_document()
    encoded = msgspec.json.encode(facts(doc)).decode()
    setl = doc["input"]["setlinfo"]
    for value in (setl["psn_name"], setl["certno"], setl["psn_no"]):
        assert value not in encoded


def test_fee_breakdown_by_charge_category() -> None:
    doc = dip_document()
    doc["input"]["iteminfo"] = [
        {"med_chrgitm": "09", "amt": "1200.50"},  # 西药费
        {"med_chrgitm": "11", "amt": 300},  # 中成药费, a JSON number
        {"med_chrgitm": "09", "amt": "99.50"},  # a second 西药费 line adds up
        {"med_chrgitm": "05", "amt": "800.00"},  # 治疗费
        {"med_chrgitm": "", "amt": "5.00"},  # no category: left out
        {"med_chrgitm": "06", "amt": "abc"},  # unreadable amount: left out
    ]
    # 1200.50 + 99.50 = 1300.00
    assert facts(doc).fees == {
        "09": Decimal("1300.00"),
        "11": Decimal("300"),
        "05": Decimal("800.00"),
    }
    del doc["input"]["iteminfo"]
    assert facts(doc).fees == {} and not facts(doc).incomplete_stay


def test_newborn_birth_weight_for_the_low_birth_weight_pre_groups() -> None:
    doc = dip_document()
    setl = doc["input"]["setlinfo"]
    setl.update(age=0, nwb_age=12, nwb_bir_wt="1250.00")  # grams, to 10 g (4101A)
    f = facts(doc)
    assert (f.age_days, f.birth_weight) == (12, Decimal("1250.00"))
    setl.update(nwb_bir_wt=980)  # a JSON number
    assert facts(doc).birth_weight == Decimal("980")
    for missing in (None, "", "abc", "-5", "1e9"):  # absent, unreadable or out of range
        setl.update(nwb_bir_wt=missing)
        assert facts(doc).birth_weight is None
    del setl["nwb_bir_wt"]
    assert facts(doc).birth_weight is None


def test_legacy_codes_group_as_the_2_0_codes_they_map_to() -> None:
    """A legacy code is accepted with DIAG_LEGACY / OPRN_LEGACY naming the 2.0 code; the
    city's catalog is in 2.0 codes, so grouping reads the 2.0 code (found: the legacy code
    reached grouping as sent)."""
    doc = dip_document(oprn=None)
    doc["input"]["diseinfo"] = [
        {"diag_code": "K35.000", "maindiag_flag": "1"},  # legacy -> K35.200
        {"diag_code": "K35.000x004", "maindiag_flag": "0"},  # legacy -> K35.201
        {"diag_code": "I10.x00", "maindiag_flag": "0"},  # 2.0 already
    ]
    doc["input"]["oprninfo"] = [
        {"oprn_oprt_code": "37.8300x002", "oprn_oprt_type": "1"},  # legacy -> 00.5000x004
        {"oprn_oprt_code": "99.9999", "oprn_oprt_type": "2"},  # in no table: as sent
    ]
    f = facts(doc)
    assert (f.main_diag_code, f.other_diag_codes) == ("K35.200", ("K35.201", "I10.x00"))
    assert [code for code, _ in f.operations] == ["00.5000x004", "99.9999"]
