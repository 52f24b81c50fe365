"""Realistic settlement lists for tests, the benchmark and the demo.

`make_settlement(rng)` returns one upload document (a plain dict in the shape of
docs/upload-format.md) that passes every default rule: about 8 diagnoses and 3 operations
from the bundled 医保版 2.0 tables, every coded field filled with a dictionary value, a
resident ID with a correct GB 11643 check digit, hospital codes `H` + 11 digits inside the
treating region. Names and numbers are synthetic.

Costs are log-normal around an average (`COST_SIGMA`, mean = the average), not uniform: a
DIP city then sees mostly normal cases and a few low and high ones, as in real data. The
main diagnosis, operations and average come from `CASES` unless the caller passes a
`case_mix` (`MixCase`s, e.g. built from a city's DIP catalog: this layer knows no catalog).
Secondary diagnoses are drawn half from common comorbidities, half from the whole table,
keeping only codes the contract's sex and age rules allow for the patient.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any, Final

from contracts._certno import certno_check_char
from contracts._codes import CodeTable, CodeTables, DiagnosisCode, normalise_code
from contracts._diagrules import constraints_by_category

__all__ = [
    "CASES",
    "COST_SIGMA",
    "REGIONS",
    "MixCase",
    "lognormal_cost",
    "main_codes",
    "make_certno",
    "make_envelope_bytes",
    "make_settlement",
]

#: σ of ln(cost) around a group's average. With the mean kept at the average
#: (μ = ln(average) − σ²/2), P(cost < 0.5 × average) = Φ((ln 0.5 + σ²/2)/σ) ≈ 9.4 % and
#: P(cost > 2 × average) ≈ 3.9 %: ~87 % normal under the usual 0.5/2 bounds, the mix DIP
#: cities report (most cases normal, low-cost cases more frequent than high-cost ones).
COST_SIGMA: Final = 0.45

#: city region codes of one province (Guangdong) used by the generator
REGIONS: tuple[tuple[str, str], ...] = (
    ("440100", "广州市"),
    ("440300", "深圳市"),
    ("440400", "珠海市"),
    ("440600", "佛山市"),
    ("441900", "东莞市"),
    ("440500", "汕头市"),
)

#: (main diagnosis, operations with their anaesthesia, sex restriction, age range, dept,
#: average cost in yuan — plausible 三级 hospital figures, made up)
_Case = tuple[str, str, tuple[tuple[str, str, str], ...], str | None, tuple[int, int], str, float]
CASES: tuple[_Case, ...] = (
    ("K35.800x001", "急性阑尾炎",
     (("47.0100", "腹腔镜下阑尾切除术", "1"), ("54.5100", "腹腔镜下腹膜粘连松解术", "1"),
      ("99.0400", "浓缩红细胞输注", "9")), None, (18, 70), "A04.01", 11000.0),
    ("K80.100", "胆囊结石伴有其他胆囊炎",
     (("51.2300", "腹腔镜下胆囊切除术", "1"), ("88.0100", "腹部计算机轴向断层照相术", "9"),
      ("89.5200", "心电图", "9")), None, (25, 80), "A04.01", 15000.0),
    ("I21.000", "急性前壁透壁性心肌梗死",
     (("36.0700", "药物洗脱冠状动脉支架置入", "3"), ("88.5600", "用两根导管的冠状动脉造影术", "3"),
      ("00.6600", "经皮冠状动脉腔内血管成形术", "3")), None, (40, 85), "A03.04", 42000.0),
    ("S72.000", "股骨颈骨折",
     (("81.5200", "部分髋关节置换", "22"), ("99.0400", "浓缩红细胞输注", "9"),
      ("87.0300", "头部计算机轴向断层照相术", "9")), None, (60, 90), "A04.03", 33000.0),
    ("C34.900", "肺恶性肿瘤",
     (("32.4100", "胸腔镜下肺叶切除术", "1"), ("33.2200", "纤维支气管镜检查", "36"),
      ("34.0400", "胸腔闭式引流", "3")), None, (45, 80), "A04.05", 45000.0),
    ("N40.x00", "前列腺增生",
     (("60.2900", "其他经尿道前列腺切除术", "21"), ("57.9400", "留置导尿管置入", "9"),
      ("57.3200", "其他膀胱镜检查", "36")), "1", (55, 85), "A04.04", 16000.0),
    ("O80.000", "头位顺产",
     (("73.5900", "其他手法助产", "9"), ("73.6x00", "外阴切开术", "35"),
      ("75.6900", "其他近期产科裂伤修补术", "35")), "2", (20, 40), "A05.01", 5000.0),
    ("M17.900", "膝关节骨关节病",
     (("81.5400", "全膝关节置换", "1"), ("88.3800", "其他计算机轴向断层照相术", "9"),
      ("99.0400", "浓缩红细胞输注", "9")), None, (50, 85), "A04.03", 38000.0),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class MixCase:
    """One kind of case a caller wants in the feed (e.g. one DIP catalog group).

    `diag` is a diagnosis code or the start of some (category `K35`, subcategory `K35.8`):
    the main diagnosis is drawn from the table's codes under it, skipping those under any
    `avoid` prefix (so a comprehensive group's case does not fall into a core group of the
    same category). `operations`: main first, each slot one code or alternatives joined by
    `|`; exactly these are coded (an extra operation could move the case to another group).
    `mean_cost` is the average the cost is drawn around; `weight` its relative frequency;
    `label` is the caller's name for it (e.g. the group code), not written to the document.
    """

    diag: str
    mean_cost: float
    operations: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()
    weight: float = 1.0
    label: str = ""


#: common comorbidities, valid for any adult of either sex (names for the reader: the
#: document gets the table's)
_SECONDARY: tuple[tuple[str, str], ...] = (
    ("I10.x00", "原发性高血压"),
    ("E11.900", "2型糖尿病不伴有并发症"),
    ("E78.500", "高脂血症"),
    ("J44.900", "慢性阻塞性肺病"),
    ("I25.100", "动脉硬化性心脏病"),
    ("K76.000", "脂肪肝"),
    ("D64.900", "贫血"),
    ("E87.600", "低钾血症"),
    ("N18.900", "慢性肾病"),
    ("K29.500", "慢性胃炎"),
    ("M81.900", "骨质疏松"),
    ("I63.900", "脑梗死"),
    ("J18.900", "肺炎"),
    ("E03.900", "甲状腺功能减退症"),
    ("K21.900", "胃食管反流病"),
    ("G47.300", "睡眠呼吸暂停"),
)
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"
_FEN = Decimal("0.01")


def make_certno(rng: random.Random, region: str, birth: date, gend: str) -> str:
    """A GB 11643 number with a correct check character and sex digit."""
    parity = (1, 3, 5, 7, 9) if gend == "1" else (0, 2, 4, 6, 8)
    seq = rng.randrange(0, 100) * 10 + rng.choice(parity)
    body = f"{region}{birth:%Y%m%d}{seq:03d}"
    return body + certno_check_char(body)


def lognormal_cost(rng: random.Random, mean: float, sigma: float = COST_SIGMA) -> float:
    """A cost whose distribution has mean `mean`: `mean` × LogNormal(−σ²/2, σ)."""
    return mean * rng.lognormvariate(-sigma * sigma / 2, sigma)


_ADULT: Final = (18, 85)
#: families never drawn: pregnancy (O), perinatal (P), health-status contact reasons (Z),
#: special purposes (U), external causes (V-Y: supplementary, not diagnoses), injuries (S, T:
#: coded with an external cause); dagger/asterisk pairs are drawn (checked part by part)
_NO_SECONDARY: Final = frozenset("OPZUVWXYST")


def _categories(code: str) -> list[str]:
    return [part.strip()[:3] for part in code.split("+")]


def _age_range(code: str, lo: int, hi: int) -> tuple[int, int, str | None]:
    """The patient's age range (years) and sex the contract's rules allow with `code`."""
    sex: str | None = None
    for cat in _categories(code):
        for c in constraints_by_category().get(cat, ()):
            if c.gend is not None:
                sex = c.gend
            if c.min_age_days is not None:
                lo = max(lo, -(-c.min_age_days // 365))
            if c.max_age_days is not None:
                hi = min(hi, c.max_age_days // 365 - 1)
    return lo, hi, sex


@cache
def _sorted_codes(table: CodeTable[DiagnosisCode]) -> tuple[str, ...]:
    return tuple(sorted(table.entries))


@cache
def _main_codes(
    table: CodeTable[DiagnosisCode], prefix: str, avoid: tuple[str, ...]
) -> tuple[str, ...]:
    codes = _sorted_codes(table)
    start = bisect.bisect_left(codes, prefix)
    out = []
    for code in codes[start:]:
        if not code.startswith(prefix):
            break
        if "+" in code or any(code.startswith(a) for a in avoid):
            continue
        lo, hi, _ = _age_range(code, *_ADULT)
        if lo <= hi:
            out.append(code)
    return tuple(out)


def main_codes(
    prefix: str, avoid: Sequence[str] = (), tables: CodeTables | None = None
) -> tuple[str, ...]:
    """The codes `make_settlement` may draw as the main diagnosis of a `MixCase(prefix)`:
    single codes (no dagger/asterisk pair) under `prefix` and no `avoid` prefix whose sex and
    age rules an adult (18-85) can meet. Empty: such a case cannot be generated."""
    table = (tables or CodeTables.load_bundled()).diagnosis_table()
    if table is None:
        return ()
    return _main_codes(table, normalise_code(prefix), tuple(normalise_code(a) for a in avoid))


@cache
def _secondary_pool(table: CodeTable[DiagnosisCode], gend: str) -> tuple[str, ...]:
    """Codes of the table a patient of sex `gend` may carry as a secondary diagnosis at any
    adult age (every part of a pair checked, as the validator does)."""
    out = []
    for code in _sorted_codes(table):
        if code[0] in _NO_SECONDARY or any(c[0] in _NO_SECONDARY for c in _categories(code)):
            continue
        lo, hi, sex = _age_range(code, *_ADULT)
        if (lo, hi) == _ADULT and sex in (None, gend):
            out.append(code)
    return tuple(out)


def _dept(main_code: str, sex: str | None, surgical: bool) -> str:
    """A plausible discharge department (dictionary `dept`) for a generated case."""
    if main_code.startswith("O"):
        return "A05.02"  # 产科
    if sex == "2":
        return "A05.01"  # 妇科
    return "A04" if surgical else "A03"  # 外科 / 内科


def _money(value: float) -> str:
    return str(Decimal(value).quantize(_FEN, rounding=ROUND_HALF_UP))


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def make_settlement(
    rng: random.Random,
    *,
    infno: str = "4101A",
    now: datetime | None = None,
    mdtrtarea_admvs: str | None = None,
    insuplc_admdvs: str | None = None,
    fixmedins_code: str | None = None,
    serial: int | None = None,
    case_mix: Sequence[MixCase] | None = None,
) -> dict[str, Any]:
    """One upload document (envelope + input) that passes every default rule.

    `now` is the moment of upload (default 2026-11-24 09:30 CST, naive): discharge falls
    1-6 days before it, so the timeliness rule is satisfied. `case_mix`: draw the case from
    these (by weight) instead of `CASES`; a `MixCase` no code can be drawn for (`main_codes`
    empty) or naming an operation not in the table raises ValueError.
    """
    now = now or datetime(2026, 11, 24, 9, 30, 0)
    serial = rng.randrange(10**8) if serial is None else serial
    area = mdtrtarea_admvs or rng.choice(REGIONS)[0]
    insured = insuplc_admdvs or (area if rng.random() < 0.8 else rng.choice(REGIONS)[0])
    hospital = fixmedins_code or f"H{area}{rng.randrange(1, 400):05d}"
    dscg = now - timedelta(days=rng.randrange(1, 6), hours=rng.randrange(0, 12))
    dscg = dscg.replace(microsecond=0)
    tables = CodeTables.load_bundled()
    diag_table = tables.diagnosis_table(dscg.date()) or tables.diagnosis_table()
    assert diag_table is not None, "no diagnosis table bundled"
    if case_mix:
        main_code, main_name, ops, sex, (age_lo, age_hi), dept, mean_cost = _mix_case(
            rng, case_mix, tables, dscg.date()
        )
    else:
        main_code, main_name, ops, sex, (age_lo, age_hi), dept, mean_cost = rng.choice(CASES)
        main_name = diag_table.entries[main_code].name
    gend = sex or rng.choice(("1", "2"))
    los = rng.randrange(3, 15)
    adm = dscg - timedelta(days=los, hours=rng.randrange(0, 10))
    age = rng.randrange(age_lo, age_hi + 1)
    birth = adm.date().replace(year=adm.year - age - 1) + timedelta(days=rng.randrange(1, 360))
    years = adm.year - birth.year - ((adm.month, adm.day) < (birth.month, birth.day))
    certno = make_certno(rng, insured, birth, gend)
    name = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.randrange(1, 3)))
    medfee = lognormal_cost(rng, mean_cost)
    fund = medfee * rng.uniform(0.55, 0.8)
    acct = min(medfee - fund, rng.uniform(0, 800))
    cash = medfee - fund - acct
    setl_time = dscg + timedelta(minutes=rng.randrange(0, 90))
    if setl_time.date() != dscg.date():
        setl_time = dscg
    setlinfo: dict[str, Any] = {
        "psn_no": f"{insured}{serial:014d}",
        "mdtrt_id": f"MD{serial:016d}",
        "setl_id": f"SETL{serial:012d}",
        "hi_no": f"{insured}{rng.randrange(10**10):010d}",
        "medcasno": f"BA{rng.randrange(10**8):08d}",
        "dcla_time": _ts(now),
        "psn_name": name,
        "gend": gend,
        "brdy": birth.isoformat(),
        "age": str(years),
        "ntly": "CHN",
        "naty": "01" if rng.random() < 0.9 else rng.choice(("03", "08", "11")),
        "patn_cert_type": "01",
        "certno": certno,
        "prfs": rng.choice(("11", "13", "17", "21", "24", "27", "51", "80", "90")),
        "curr_addr": "广东省广州市天河区体育西路" + str(rng.randrange(1, 300)) + "号",
        "emp_name": "广州市某某有限公司",
        "emp_addr": "广东省广州市越秀区中山五路1号",
        "emp_tel": f"020-{rng.randrange(10**7, 10**8)}",
        "poscode": "510000",
        "coner_name": rng.choice(_SURNAMES) + rng.choice(_GIVEN),
        "patn_rlts": rng.choice(("10", "20", "30", "40")),
        "coner_addr": "广东省广州市天河区体育东路" + str(rng.randrange(1, 300)) + "号",
        "coner_tel": f"13{rng.randrange(10**8, 10**9)}",
        "hi_type": "310",
        "insuplc": insured,
        "sp_psn_type": "9",
        "insutype": "310" if rng.random() < 0.7 else "390",
        "adm_way": rng.choice(("1", "2")),
        "trt_type": "1",
        "adm_time": _ts(adm),
        "refldept_dept": dept,
        "dscg_time": _ts(dscg),
        "dscg_caty": dept,
        "otp_wm_dise": main_name,
        "wm_dise_code": main_code,
        "vent_used_dura": "0/0/0",
        "spga_nurscare_days": 0,
        "lv1_nurscare_days": rng.randrange(0, 3),
        "scd_nurscare_days": rng.randrange(1, los),
        "lv3_nurscare_days": 0,
        "dscg_way": "1",
        "bill_code": f"44{rng.randrange(10**6):06d}",
        "bill_no": f"{rng.randrange(10**10):010d}",
        "biz_sn": f"BZ{serial:016d}",
        "days_rinp_flag_31": "1",
        "chfpdr_code": f"D{area}{rng.randrange(10**6):06d}",
        "setl_begn_date": adm.date().isoformat(),
        "setl_end_date": dscg.date().isoformat(),
        "medins_fill_dept": "病案室",
        "medins_fill_psn": "病案编码员",
        "resp_nurs_code": f"N{rng.randrange(10**6):06d}",
        "stas_type": "1",
        "hi_paymtd": "3",
        "adm_dept_codg": dept,
        "adm_dept_name": _DEPT_NAMES[dept[:3]],
        "dscg_dept_codg": dept,
        "dscg_dept_name": _DEPT_NAMES[dept[:3]],
        "medfee_sumamt": _money(medfee),
        "fund_pay_sumamt": _money(fund),
        "hifp_pay": _money(fund * 0.92),
        "acct_pay": _money(acct),
        "psn_cash_pay": _money(cash),
        "psn_selfpay": _money(cash * 0.6),
        "psn_ownpay": _money(cash * 0.3),
        "setl_time": _ts(setl_time),
    }
    diseinfo = [
        {"diag_type": "1", "diag_code": main_code, "diag_name": main_name,
         "adm_cond_type": "1", "maindiag_flag": "1"},
    ]  # fmt: skip
    for code, dname in _secondaries(rng, diag_table, gend, main_code, rng.randrange(6, 9)):
        diseinfo.append(
            {"diag_type": "1", "diag_code": code, "diag_name": dname,
             "adm_cond_type": rng.choice(("1", "2", "3", "4")), "maindiag_flag": "0"}
        )  # fmt: skip
    oprninfo = []
    start = adm + timedelta(hours=rng.randrange(6, 30))
    for i, (code, oname, anst) in enumerate(ops):
        begin = start + timedelta(hours=i * 3)
        end = begin + timedelta(minutes=rng.randrange(20, 150))
        oprninfo.append(
            {
                "oprn_oprt_type": "1" if i == 0 else "2",
                "oprn_oprt_name": oname,
                "oprn_oprt_code": code,
                "anst_way": anst,
                "oper_dr_code": f"D{rng.randrange(10**6):06d}",
                "anst_dr_code": f"D{rng.randrange(10**6):06d}",
                "oprn_oprt_begntime": _ts(begin),
                "oprn_oprt_endtime": _ts(end),
                "anst_begntime": _ts(begin - timedelta(minutes=10)),
                "anst_endtime": _ts(end + timedelta(minutes=5)),
            }
        )
    icuinfo = []
    if rng.random() < 0.3:
        inpool = adm + timedelta(hours=2)
        exit_ = inpool + timedelta(hours=rng.randrange(12, 60), minutes=rng.randrange(0, 60))
        minutes = int((exit_ - inpool).total_seconds() // 60)
        icuinfo.append(
            {
                "scs_cutd_ward_type": "7",
                "scs_cutd_inpool_time": _ts(inpool),
                "scs_cutd_exit_time": _ts(exit_),
                "scs_cutd_sum_dura": f"{minutes // 1440}/{minutes // 60 % 24}/{minutes % 60}",
            }
        )
    bldinfo = [{"bld_cat": "13", "bld_amt": "2", "bld_unt": "U"}] if rng.random() < 0.3 else []
    document: dict[str, Any] = {
        "infno": infno,
        "msgid": f"{hospital}{now:%Y%m%d%H%M%S}{serial % 10000:04d}",
        "mdtrtarea_admvs": area,
        "insuplc_admdvs": insured,
        "recer_sys_code": "DIPGW",
        "infver": "V1.0",
        "opter_type": "1",
        "opter": "001",
        "opter_name": "上传接口",
        "inf_time": _ts(now),
        "fixmedins_code": hospital,
        "fixmedins_name": "第一人民医院",
        "signtype": "SM3",
        "input": {
            "setlinfo": setlinfo,
            "diseinfo": diseinfo,
            "oprninfo": oprninfo,
            "icuinfo": icuinfo,
            "bldinfo": bldinfo,
            "opspdiseinfo": [],
        },
    }
    if infno == "4101":
        _to_4101(document, rng, los)
    return document


_DEPT_NAMES: Final = {"A03": "内科", "A04": "外科", "A05": "妇产科"}
#: anaesthesia by operation class (None: a main operation the source does not class)
_ANST: Final = {"surgery": "1", "intervention": "3", None: "1"}


def _mix_case(rng: random.Random, mix: Sequence[MixCase], tables: CodeTables, day: date) -> _Case:
    """A `CASES`-shaped case drawn from `mix`: main code under the entry's prefix, names from
    the tables, sex and age from the code's constraints, department from the treatment."""
    entry = rng.choices(mix, weights=[m.weight for m in mix])[0]
    codes = main_codes(entry.diag, entry.avoid, tables)
    if not codes:
        raise ValueError(f"no drawable main diagnosis under {entry.diag!r} ({entry.label})")
    main_code = rng.choice(codes)
    found = tables.diagnosis(main_code, day)
    assert found is not None
    ops: list[tuple[str, str, str]] = []
    surgical = False
    for i, slot in enumerate(entry.operations):
        code = rng.choice(slot.split("|"))
        op = tables.operation(code, day)
        if op is None:
            raise ValueError(f"operation {code!r} of {entry.label or entry.diag} not in the table")
        cls = op.oprn_class if op.oprn_class is not None or i == 0 else "diagnostic"
        surgical = surgical or cls in ("surgery", "intervention", None)
        ops.append((op.code, op.name, _ANST.get(cls, "9")))
    lo, hi, sex = _age_range(main_code, *_ADULT)
    dept = _dept(main_code, sex, surgical)
    return (main_code, found.name, tuple(ops), sex, (lo, hi), dept, entry.mean_cost)


def _secondaries(
    rng: random.Random, table: CodeTable[DiagnosisCode], gend: str, main: str, n: int
) -> list[tuple[str, str]]:
    """`n` distinct secondary diagnoses: half common comorbidities, half any code of the
    table the contract allows for an adult of sex `gend` (see `_NO_SECONDARY`)."""
    pool = _secondary_pool(table, gend)
    common = list(_SECONDARY)
    rng.shuffle(common)
    out: dict[str, str] = {}
    while len(out) < n:
        code = common.pop()[0] if rng.random() < 0.5 and common else rng.choice(pool)
        if code != main and code not in out:
            out[code] = table.entries[code].name  # the table's name, as a HIS sends it
    return list(out.items())


def _to_4101(document: dict[str, Any], rng: random.Random, los: int) -> None:
    """Reshape a 4101A document into the legacy 4101 flavour (fees by category, fund lines)."""
    inp = document["input"]
    sl = inp["setlinfo"]
    medfee = Decimal(sl.pop("medfee_sumamt"))
    fund = Decimal(sl.pop("fund_pay_sumamt"))
    sl.pop("insutype")
    sl.pop("hifp_pay")
    sl["psn_cashpay"] = sl.pop("psn_cash_pay")
    for key in ("psn_no", "resp_nurs_code", "stas_type", "adm_dept_codg", "adm_dept_name"):
        sl.pop(key, None)
    for key in ("dscg_dept_codg", "dscg_dept_name"):
        sl.pop(key, None)
    sl.update(
        fixmedins_code=document["fixmedins_code"],
        fixmedins_name=document["fixmedins_name"],
        hi_setl_lv="3",
        ipt_med_type="1",
        adm_caty=sl["dscg_caty"],
        act_ipt_days=(date.fromisoformat(sl["dscg_time"][:10])
                      - date.fromisoformat(sl["adm_time"][:10])).days,
        hsorg="市医疗保障事务中心",
        hsorg_opter="经办员",
        chfpdr_name="主诊医师",
    )  # fmt: skip
    for o in inp["oprninfo"]:
        o["oprn_oprt_date"] = o["oprn_oprt_begntime"][:10]
        o["oper_dr_name"] = "术者"
        o["anst_dr_name"] = "麻醉师"
    inp["payinfo"] = [{"fund_pay_type": "310100", "fund_payamt": str(fund)}]
    shares = [Decimal(rng.randrange(5, 30)) for _ in range(4)]
    cats = ("01", "05", "06", "09")
    items = []
    remaining = medfee
    for i, (cat, share) in enumerate(zip(cats, shares, strict=True)):
        amt = remaining if i == 3 else (medfee * share / 100).quantize(_FEN)
        remaining -= amt
        items.append(
            {
                "med_chrgitm": cat,
                "amt": str(amt),
                "claa_sumfee": str((amt * Decimal("0.6")).quantize(_FEN)),
                "clab_amt": str((amt * Decimal("0.3")).quantize(_FEN)),
                "fulamt_ownpay_amt": "0.00",
                "oth_amt": "0.00",
            }
        )
    inp["iteminfo"] = items
    del inp["bldinfo"]
    inp["bldinfo"] = []


def make_envelope_bytes(rng: random.Random, **kwargs: Any) -> bytes:
    """`make_settlement` encoded as compact JSON."""
    import msgspec

    return msgspec.json.encode(make_settlement(rng, **kwargs))
