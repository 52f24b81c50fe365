"""The tests' data, built in one place.

- contracts/adapters: one golden record (`golden`, `legacy_golden`) and mutations of it;
- uploads: `document` (a list that passes every default rule), `dip_document` (one with the
  DIP-relevant fields set), `push` (a batch, all accepted), the quality mix `push_mix`;
- the DIP core: `dip_case` (a `CaseFacts`, every field but the ones a test changes fixed);
- waiting on the real stack: `wait_stored`, `wait_received`, `wait_scored`, `read_topic`,
  `handled` (a worker's consumer group committed past records);
- `rules_variant`: a sample city's policy for another clearing year.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import random
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts import ValidationError, Validator
from contracts.dip import CaseFacts
from contracts.samples import make_settlement
from tests.clock import naive_now

if TYPE_CHECKING:
    from adapters.runtime.settings import Settings
    from gateway.runtime import LocalServices, Stack
    from tests.conftest import Client

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


SL = "input.setlinfo."
# Edge values of single fields (path, value) the contracts tests try on every base record.
EDGES: list[tuple[str, Any]] = [
    # amounts: exponents, signs, bounds, specials (the decimal guard)
    *((SL + "acct_pay", v) for v in ("0", "-0", "-0.00", "0.001", "1E+2", "0E-5", "12.3",
                                     "99999999999999.99", "100000000000000", "NaN", "sNaN",
                                     "Infinity", "-1.00", "20000.01")),
    (SL + "age", "56.0"), (SL + "age", "1E+1"), (SL + "age", "55.5"), (SL + "age", "54"),
    (SL + "age", "58"), (SL + "age", "NaN"), (SL + "age", "999.9"), (SL + "age", "1000"),
    (SL + "nwb_bir_wt", "3200.5"), (SL + "nwb_bir_wt", "100"), (SL + "nwb_bir_wt", "-1"),
    (SL + "hifp_pay", "14000.01"), (SL + "medfee_sumamt", "NaN"), (SL + "medfee_sumamt", "-5"),
    (SL + "psn_cash_pay", DELETE), (SL + "psn_cashpay", "5500.00"), (SL + "psn_cashpay", "12.345"),
    # durations (now checked on the python side on both paths)
    (SL + "vent_used_dura", "1/24/00"), (SL + "vent_used_dura", "0/0/0"),
    (SL + "vent_used_dura", "１/2/3"),
    ("input.icuinfo.0.scs_cutd_sum_dura", "1/1/60"), ("input.icuinfo.0.scs_cutd_sum_dura", ""),
    # identity, ages, dates
    (SL + "certno", "44010019700501001X"), (SL + "certno", "440100197005010019"),
    (SL + "certno", "4401001970050100 1"), (SL + "certno", "44010019700230001X"),
    (SL + "brdy", "1970-05-02"), (SL + "brdy", "2026-11-11"), (SL + "brdy", "2025-11-10"),
    (SL + "brdy", "2025-11-11"), (SL + "brdy", "2024-02-29"), (SL + "gend", "2"),
    (SL + "setl_time", "2026-11-20 00:00:00"), (SL + "setl_time", "2026-11-19 23:59:59"),
    (SL + "setl_begn_date", "2026-11-09"), (SL + "setl_end_date", "2026-11-21"),
    (SL + "dscg_time", "2026-11-10 07:00:00"), (SL + "adm_time", "2026-11-20"),
    # regions and institution
    ("fixmedins_code", "H44010100001"), ("fixmedins_code", "H4401000000１"),
    ("fixmedins_code", "H44010000001\n"), ("mdtrtarea_admvs", "440000"),
    ("insuplc_admdvs", "440300"), (SL + "insuplc", "440300"),
    ("mdtrtarea_admvs", "440188"), ("insuplc_admdvs", "439900"), (SL + "insuplc", "429000"),
    ("mdtrtarea_admvs", "441900"), ("fixmedins_code", "H44018400001"),
    # operations and diagnoses
    ("input.oprninfo.0.anst_endtime", DELETE), ("input.oprninfo.0.oprn_oprt_type", "2"),
    ("input.oprninfo.1.oprn_oprt_type", "1"), ("input.oprninfo.0.oprn_oprt_date", "2026-11-12"),
    ("input.oprninfo.0.oprn_oprt_date", "2026-11-21"),
    ("input.oprninfo.1.oprn_oprt_date", "2026-11-09"),
    ("input.oprninfo.0.oprn_oprt_endtime", "2026-11-20 10:00:01"),
    ("input.diseinfo.1.diag_code", "N80.000"), ("input.diseinfo.1.diag_code", "P07.300"),
    ("input.diseinfo.0.diag_type", "2"), ("input.diseinfo.1.maindiag_flag", "1"),
    (SL + "refldept_dept", "A03→A04.01"), (SL + "refldept_dept", "A03→Z99"),
]  # fmt: skip


def edge_base(name: str) -> dict[str, Any]:
    """The golden records (sparse operations), or generated ones (every interval given)."""
    if name == "golden":
        return golden()
    if name == "legacy":
        return legacy_golden()
    flavour = "4101" if name == "legacy sample" else "4101A"
    rng = random.Random(4)
    while True:  # the first sample with an ICU stay, so that the ICU edges apply
        doc = make_settlement(rng, infno=flavour, now=RECEIVED)
        if doc["input"]["icuinfo"]:
            return doc


# The base records of `edge_base`.
BASES = ["golden", "legacy", "sample", "legacy sample"]


# -- the DIP core -------------------------------------------------------------------------


def offline_case(key: str, **kw: Any) -> dict[str, Any]:
    """One case as `dipgw group` / `dipgw score` read it offline (Guangzhou, appendicitis
    surgery), with `kw` changed."""
    base: dict[str, Any] = {
        "case_key": key,
        "fixmedins_code": "H44010000001",
        "hospital_level": "3A",
        "treating_admdvs": "440104",
        "insured_admdvs": "440304",
        "insutype": "310",
        "main_diag_code": "K35.800x002",
        "operations": [["47.0100", "surgery"]],
        "total_cost": "11270.00",
        "discharge_date": "2026-03-02",
    }
    base.update(kw)
    return base


def dip_case(**fields: Any) -> CaseFacts:
    """A case for the DIP core: K35.800 + 47.0100 (surgery), 11270 yuan, at a level-3A
    Guangzhou hospital, treated and insured in 440104 (insutype 310); `fields` override."""
    base: dict[str, Any] = {
        "case_key": "H44010000001:S1",
        "fixmedins_code": "H44010000001",
        "hospital_level": "3A",
        "treating_admdvs": "440104",
        "insured_admdvs": "440104",
        "insutype": "310",
        "main_diag_code": "K35.800",
        "operations": (("47.0100", "surgery"),),
        "total_cost": Decimal("11270"),
    }
    return CaseFacts(**{**base, **fields})


# -- uploads ------------------------------------------------------------------------------


def document(
    setl_id: str,
    code: str = "H44010000001",
    area: str = "440100",
    insured: str = "440300",
    **setlinfo: Any,
) -> dict[str, Any]:
    """A settlement list that passes every default rule, with the given keys and fields."""
    doc = make_settlement(
        random.Random(setl_id),
        now=naive_now(),
        mdtrtarea_admvs=area,
        insuplc_admdvs=insured,
        fixmedins_code=code,
    )
    doc["msgid"] = f"{code}{uuid.uuid4().int % 10**18:018d}"
    doc["input"]["setlinfo"].update(setl_id=setl_id, psn_name="张三", **setlinfo)
    return doc


async def wait_stored(client: Client, receipt_id: str, timeout: float = 20) -> dict[str, Any]:
    body: Any = None
    for _ in range(int(timeout / 0.1)):
        _, body = await client.get(f"/v1/receipts/{receipt_id}")
        if body.get("status") == "stored":
            return dict(body)
        await asyncio.sleep(0.1)
    raise AssertionError(f"receipt {receipt_id} not stored within {timeout}s: {body}")


async def push(client: Client, *docs: dict[str, Any]) -> list[dict[str, Any]]:
    """Upload `docs` as one batch; every record must be accepted. The per-record results."""
    status, body = await client.post("/v1/settlements/batch", {"records": list(docs)})
    assert status == 200, body
    assert body["accepted"] == len(docs), body
    return list(body["results"])


async def wait_received(pool: asyncpg.Pool, code: str, count: int) -> None:
    for _ in range(300):
        got = await pool.fetchval(
            "SELECT coalesce(sum(received), 0) FROM quality_daily WHERE fixmedins_code = $1",
            code,
        )
        if got >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"quality rollups of {code} stuck at {got} of {count}")


async def push_mix(client: Client, code: str, area: str = "440100") -> dict[str, Any]:
    """3 clean, 2 warned, 2 rejected lists; one rejected fixed and resent; one corrected."""
    assert client.hospital == code
    ids: dict[str, Any] = {"accepted": [], "rejected": []}
    for n in range(3):
        status, body = await client.post(
            "/v1/settlements", document(f"QC{n}", code=code, area=area)
        )
        assert status == 202, body
        ids["accepted"].append(body["receipt_id"])
    for n in range(2):
        status, body = await client.post(
            "/v1/settlements", document(f"QW{n}", code=code, area=area, poscode="12")
        )
        assert status == 202, body
        ids["accepted"].append(body["receipt_id"])
    for n in range(2):
        status, body = await client.post(
            "/v1/settlements", document(f"QR{n}", code=code, area=area, medfee_sumamt=None)
        )
        assert status == 422, body
    status, body = await client.post("/v1/settlements", document("QR0", code=code, area=area))
    assert status == 202 and body["revision"] == 1, body
    ids["accepted"].append(body["receipt_id"])
    status, body = await client.post(
        "/v1/settlements", document("QC0", code=code, area=area, medcasno="X")
    )
    assert status == 202 and body["revision"] == 2, body
    ids["accepted"].append(body["receipt_id"])
    return ids


def new_code() -> str:
    """A fresh hospital code, so a test's rollups are its own."""
    return f"H4401{random.randrange(10**6, 10**7)}"


_NAMES = {
    "K35.800x001": "急性阑尾炎",
    "J18.900": "肺炎",
    "I21.000": "急性前壁透壁性心肌梗死",
    "47.0100": "腹腔镜下阑尾切除术",
    "89.5200": "心电图",
    "36.0600": "非药物洗脱冠状动脉支架置入",
}
# Secondary diagnoses on the sample rules' severity lists would change the score.
_SEVERE = ("J18", "N39.0", "K65", "R57", "A41", "J96", "N17", "I50", "K72")


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def dip_document(
    *,
    code: str = "H44010000001",
    area: str = "440100",
    insured: str | None = None,
    diag: str = "K35.800x001",
    oprn: str | None = "47.0100",
    total: str = "9000.00",
    insutype: str = "310",
    dscg: str | None = None,
    setl_id: str | None = None,
    seed: int = 1,
) -> dict[str, Any]:
    """A settlement list that passes the contract (contracts.samples), with the DIP-relevant
    fields set: one main diagnosis, at most one operation, no ICU stay, an adult under 65,
    no secondary diagnosis on a severity list, consistent money. `dscg` moves the discharge
    (and so the clearing year); default: a few days before now on the tests' clock."""
    now = datetime.strptime(dscg, "%Y-%m-%d %H:%M:%S") + timedelta(days=2) if dscg else None
    rng = random.Random(seed)
    while True:  # the sample whose case is the K35.8 one (adults, either sex), under 65
        doc = make_settlement(
            rng,
            now=now or naive_now(),
            mdtrtarea_admvs=area,
            insuplc_admdvs=insured or area,
            fixmedins_code=code,
            serial=rng.randrange(10**8),
        )
        setl = doc["input"]["setlinfo"]
        if doc["input"]["diseinfo"][0]["diag_code"] == "K35.800x001" and int(setl["age"]) < 65:
            break
    setl_id = setl_id or f"DIP{uuid.uuid4().hex[:14].upper()}"
    inp = doc["input"]
    inp["diseinfo"][0].update(diag_code=diag, diag_name=_NAMES[diag])
    inp["diseinfo"] = [inp["diseinfo"][0]] + [
        d for d in inp["diseinfo"][1:] if not d["diag_code"].startswith(_SEVERE)
    ]
    if oprn is None:
        inp["oprninfo"] = []
    else:
        inp["oprninfo"] = [{**inp["oprninfo"][0], "oprn_oprt_code": oprn}]
        inp["oprninfo"][0]["oprn_oprt_name"] = _NAMES[oprn]
    inp["icuinfo"] = []
    medfee = Decimal(total)
    fund = (medfee * Decimal("0.7")).quantize(Decimal("0.01"))
    cash = medfee - fund
    setl.update(
        setl_id=setl_id,
        mdtrt_id="M" + setl_id,
        insutype=insutype,
        medfee_sumamt=_money(medfee),
        fund_pay_sumamt=_money(fund),
        hifp_pay=_money(fund * Decimal("0.92")),
        acct_pay="0.00",
        psn_cash_pay=_money(cash),
        psn_selfpay=_money(cash * Decimal("0.6")),
        psn_ownpay=_money(cash * Decimal("0.3")),
        dscg_way="1",
    )
    doc["msgid"] = f"{code}{uuid.uuid4().int % 10**18:018d}"
    setl["biz_sn"] = f"BZ{uuid.uuid4().int % 10**16:016d}"
    return doc


async def wait_scored(
    pool: asyncpg.Pool,
    keys: dict[tuple[str, str], int],
    timeout: float = 90,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Wait until every (fixmedins_code, setl_id) has its scored row at the given revision."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for _ in range(int(timeout / 0.1)):
        found = await pool.fetch(
            """SELECT * FROM scored_cases
               WHERE (fixmedins_code, setl_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))""",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        rows = {(r["fixmedins_code"], r["setl_id"]): dict(r) for r in found}
        if all(k in rows and rows[k]["revision"] >= rev for k, rev in keys.items()):
            return rows
        await asyncio.sleep(0.1)
    missing = {k: v for k, v in keys.items() if k not in rows or rows[k]["revision"] < v}
    raise AssertionError(f"not scored within {timeout}s: {missing}")


async def read_topic(
    bootstrap: str, topic: str, keys: set[str], *, expect: int, timeout: float = 15
) -> list[dict[str, Any]]:
    """Messages of `topic` whose key is in `keys`, from the beginning, until `expect` are seen."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(out) < expect and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for part in batches.values():
                for record in part:
                    if record.key is not None and record.key.decode() in keys:
                        out.append(msgspec.json.decode(record.value or b"{}"))
    finally:
        await consumer.stop()
    return out


def rules_variant(
    tmp: Path, city: str, year: int, *, point_310: str | None = None, version: str | None = None
) -> Path:
    """A copy of a sample city's TOML policy for another clearing year (same catalog)."""
    from workers.dip import SAMPLE_RULES

    source = SAMPLE_RULES[city]
    text = source.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^clearing_year = \d+", f"clearing_year = {year}", text)
    text = re.sub(
        r'(?m)^catalog = "([^"]+)"',
        lambda m: f'catalog = "{(source.parent / m[1]).as_posix()}"',
        text,
    )
    if point_310 is not None:
        text = re.sub(r'(?m)^"310" = "[^"]+"', f'"310" = "{point_310}"', text)
    if version is not None:
        text = re.sub(r'(?m)^version = "[^"]+"', f'version = "{version}"', text)
    out = tmp / f"{city}-{year}-{point_310 or 'base'}-{version or 'v'}.toml"
    out.write_text(text, encoding="utf-8")
    return out


async def handled(stack: Stack, worker: str, positions: list[Any], within_s: float = 20) -> None:
    """Wait until `worker`'s consumer group has committed past these records (metadata from
    `send_and_wait`): workers commit only after writing, so they were handled."""
    group = f"{stack.settings.worker.group_prefix}.{worker}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        for _ in range(int(within_s / 0.05)):
            committed = await admin.list_consumer_group_offsets(group)
            if all(
                (c := committed.get(TopicPartition(p.topic, p.partition))) is not None
                and c.offset > p.offset
                for p in positions
            ):
                return
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    raise AssertionError(f"{worker} never committed past {positions}")


def tagged_settings(base: Settings, prefix: str, **worker: Any) -> Settings:
    """Settings whose topics and consumer groups belong to one test alone (a fresh tag), so
    the session's workers on the same broker never take its records; `worker` overrides
    other worker settings (batch size, rules cache)."""
    tag = prefix + uuid.uuid4().hex[:8]
    topics = msgspec.structs.replace(
        base.topics,
        accepted=f"{tag}.accepted",
        rejected=f"{tag}.rejected",
        grouped=f"{tag}.grouped",
        scored=f"{tag}.scored.{{admdvs}}",
        scored_all=f"{tag}.scored.all",
        out_of_province=f"{tag}.scored.oop",
    )
    workers = msgspec.structs.replace(base.worker, group_prefix=tag, **worker)
    return msgspec.structs.replace(base, topics=topics, worker=workers)


@contextlib.asynccontextmanager
async def isolated(
    services: LocalServices, prefix: str, **worker: Any
) -> AsyncIterator[tuple[Settings, str]]:
    """Settings with their own topics and consumer groups (`tagged_settings`) and a database
    of their own, dropped afterwards: a stack started on them shares nothing with the
    session's but the servers."""
    settings = tagged_settings(services.settings, prefix, **worker)
    tag = settings.worker.group_prefix
    admin = await asyncpg.connect(services.dsn)
    try:
        await admin.execute(f"CREATE DATABASE {tag}")
    finally:
        await admin.close()
    try:
        yield settings, urlunsplit(urlsplit(services.dsn)._replace(path="/" + tag))
    finally:
        admin = await asyncpg.connect(services.dsn)
        try:
            await admin.execute(f"DROP DATABASE {tag} WITH (FORCE)")
        finally:
            await admin.close()
