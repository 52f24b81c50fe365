"""Shared builders for the contracts/adapters tests: one golden record and mutations of it."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import msgspec

from contracts import ValidationError, Validator

RECEIVED = datetime(2026, 11, 24, 9, 30, 0)
DELETE = object()


def golden() -> dict[str, Any]:
    """A complete 4101A upload that passes every default rule (fixed values, no randomness)."""
    setlinfo: dict[str, Any] = {
        "psn_no": "44010000000000000001",
        "mdtrt_id": "MD0000000000000001",
        "setl_id": "SETL000000000001",
        "hi_no": "4401001234567890",
        "medcasno": "BA00000001",
        "psn_name": "张三",
        "gend": "1",
        "brdy": "1970-05-01",
        "age": "56",
        "ntly": "CHN",
        "naty": "01",
        "patn_cert_type": "01",
        "certno": make_certno_fixed(),
        "prfs": "13",
        "curr_addr": "广东省广州市天河区体育西路1号",
        "emp_tel": "020-12345678",
        "poscode": "510000",
        "coner_name": "李四",
        "patn_rlts": "10",
        "coner_addr": "广东省广州市天河区体育东路2号",
        "coner_tel": "13812345678",
        "hi_type": "310",
        "insuplc": "440100",
        "insutype": "310",
        "adm_way": "2",
        "trt_type": "1",
        "adm_time": "2026-11-10 08:00:00",
        "refldept_dept": "A04.01",
        "dscg_time": "2026-11-20 10:00:00",
        "dscg_caty": "A04.01",
        "wm_dise_code": "K80.100",
        "otp_wm_dise": "胆囊结石伴有其他胆囊炎",
        "vent_used_dura": "0/0/0",
        "lv1_nurscare_days": 2,
        "scd_nurscare_days": 8,
        "dscg_way": "1",
        "bill_code": "44000001",
        "bill_no": "0000000001",
        "biz_sn": "BZ0000000000000001",
        "days_rinp_flag_31": "1",
        "setl_begn_date": "2026-11-10",
        "setl_end_date": "2026-11-20",
        "medins_fill_dept": "病案室",
        "medins_fill_psn": "编码员",
        "hi_paymtd": "3",
        "medfee_sumamt": "20000.00",
        "fund_pay_sumamt": "14000.00",
        "hifp_pay": "13000.00",
        "acct_pay": "500.00",
        "psn_cash_pay": "5500.00",
        "psn_selfpay": "3000.00",
        "psn_ownpay": "1000.00",
        "setl_time": "2026-11-20 11:00:00",
    }
    diseinfo = [
        {"diag_type": "1", "diag_code": "K80.100", "diag_name": "胆囊结石伴有其他胆囊炎",
         "adm_cond_type": "1", "maindiag_flag": "1"},
        {"diag_type": "1", "diag_code": "I10.x00", "diag_name": "原发性高血压",
         "adm_cond_type": "1", "maindiag_flag": "0"},
        {"diag_type": "1", "diag_code": "E11.900", "diag_name": "2型糖尿病不伴有并发症",
         "adm_cond_type": "2", "maindiag_flag": "0"},
    ]  # fmt: skip
    oprninfo = [
        {"oprn_oprt_type": "1", "oprn_oprt_name": "腹腔镜下胆囊切除术", "oprn_oprt_code": "51.2300",
         "anst_way": "1", "oper_dr_code": "D000001", "anst_dr_code": "D000002",
         "oprn_oprt_begntime": "2026-11-12 09:00:00", "oprn_oprt_endtime": "2026-11-12 10:30:00",
         "anst_begntime": "2026-11-12 08:45:00", "anst_endtime": "2026-11-12 10:40:00"},
        {"oprn_oprt_type": "2", "oprn_oprt_name": "心电图", "oprn_oprt_code": "89.5200",
         "anst_way": "9", "oper_dr_code": "D000003"},
    ]  # fmt: skip
    icuinfo = [
        {"scs_cutd_ward_type": "7", "scs_cutd_inpool_time": "2026-11-12 11:00:00",
         "scs_cutd_exit_time": "2026-11-13 12:30:00", "scs_cutd_sum_dura": "1/1/30"},
    ]  # fmt: skip
    return {
        "infno": "4101A",
        "msgid": "H44010000001202611240930000001",
        "mdtrtarea_admvs": "440100",
        "insuplc_admdvs": "440100",
        "fixmedins_code": "H44010000001",
        "fixmedins_name": "广州市第一人民医院",
        "inf_time": "2026-11-24 09:30:00",
        "opter_type": "1",
        "input": {
            "setlinfo": setlinfo,
            "diseinfo": diseinfo,
            "oprninfo": oprninfo,
            "icuinfo": icuinfo,
            "bldinfo": [{"bld_cat": "13", "bld_amt": "2", "bld_unt": "U"}],
            "opspdiseinfo": [],
        },
    }


def make_certno_fixed(region: str = "440100", birth: str = "1970-05-01", gend: str = "1") -> str:
    """Deterministic GB 11643 number (sequence 001 for men, 002 for women)."""
    from contracts import certno_check_char

    body = f"{region}{birth.replace('-', '')}{'001' if gend == '1' else '002'}"
    return body + certno_check_char(body)


def legacy_golden() -> dict[str, Any]:
    """The golden record as a 4101 upload (fees by category, fund lines, no summary)."""
    doc = golden()
    doc["infno"] = "4101"
    sl = doc["input"]["setlinfo"]
    for key in ("psn_no", "insutype", "medfee_sumamt", "fund_pay_sumamt", "hifp_pay"):
        sl.pop(key)
    sl["psn_cashpay"] = sl.pop("psn_cash_pay")
    sl.update(
        fixmedins_code="H44010000001",
        fixmedins_name="广州市第一人民医院",
        ipt_med_type="1",
        adm_caty="A04.01",
        act_ipt_days=10,
        hsorg="广州市医疗保障事务中心",
        hsorg_opter="经办员",
    )
    for op in doc["input"]["oprninfo"]:
        op["oprn_oprt_date"] = "2026-11-12"
        op["oper_dr_name"] = "王医生"
    doc["input"]["payinfo"] = [
        {"fund_pay_type": "310100", "fund_payamt": "14000.00"},
        {"fund_pay_type": "310200", "fund_payamt": "500.00"},
    ]
    doc["input"]["iteminfo"] = [
        {"med_chrgitm": "06", "amt": "12000.00", "claa_sumfee": "8000.00", "clab_amt": "3000.00",
         "fulamt_ownpay_amt": "1000.00", "oth_amt": "0"},
        {"med_chrgitm": "09", "amt": "8000.00", "claa_sumfee": "6000.00", "clab_amt": "2000.00",
         "fulamt_ownpay_amt": "0", "oth_amt": "0"},
    ]  # fmt: skip
    return doc


def mutate(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy with changes at dotted paths (`input__setlinfo__gend` or via `at`)."""
    out = copy.deepcopy(doc)
    for key, value in changes.items():
        at(out, key.replace("__", "."), value)
    return out


def at(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set (or with DELETE remove) a dotted path in place: `input.diseinfo.1.diag_code`."""
    node: Any = doc
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        if value is DELETE:
            del node[int(last)]
        else:
            node[int(last)] = value
    elif value is DELETE:
        node.pop(last, None)
    else:
        node[last] = value
    return doc


_DEFAULT: Validator | None = None


def validator() -> Validator:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Validator()
    return _DEFAULT


def check(
    doc: dict[str, Any] | bytes,
    v: Validator | None = None,
    received_at: datetime | None = RECEIVED,
) -> list[ValidationError]:
    """Errors of the hot path, asserted equal to the full engine's (decode + validate)."""
    v = v or validator()
    raw = doc if isinstance(doc, bytes) else msgspec.json.encode(doc)
    _env, fast = v.validate_json(raw, received_at=received_at)
    envelope, decode_errors = v.decode(raw)
    slow = (
        decode_errors
        if envelope is None
        else v.validate_decoded(envelope, decode_errors, received_at=received_at)
    )
    assert sorted(map(repr, fast)) == sorted(map(repr, slow)), (fast, slow)
    return fast


def rules(errors: list[ValidationError]) -> set[str]:
    return {e.rule for e in errors}


def fields_of_rule(errors: list[ValidationError], rule: str) -> set[str]:
    return {e.field for e in errors if e.rule == rule}
