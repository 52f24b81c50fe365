"""Realistic settlement lists for tests, the benchmark and the demo.

`make_settlement(rng)` returns one upload document (a plain dict in the shape of
docs/upload-format.md) that passes every default rule: about 8 diagnoses and 3 operations
drawn from the bundled code tables, every coded field filled with a dictionary value, a
resident ID with a correct GB 11643 check digit, hospital codes `H` + 11 digits inside the
treating region. Names and numbers are synthetic.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from contracts._certno import certno_check_char

__all__ = ["CASES", "REGIONS", "make_certno", "make_envelope_bytes", "make_settlement"]

#: city region codes of one province (Guangdong) used by the generator
REGIONS: tuple[tuple[str, str], ...] = (
    ("440100", "广州市"),
    ("440300", "深圳市"),
    ("440400", "珠海市"),
    ("440600", "佛山市"),
    ("441900", "东莞市"),
    ("440500", "汕头市"),
)

#: (main diagnosis, operations with their anaesthesia, sex restriction, age range, dept)
_Case = tuple[str, str, tuple[tuple[str, str, str], ...], str | None, tuple[int, int], str]
CASES: tuple[_Case, ...] = (
    ("K35.800x001", "急性阑尾炎",
     (("47.0100", "腹腔镜下阑尾切除术", "1"), ("54.5100", "腹腔镜下腹膜粘连松解术", "1"),
      ("99.0400", "浓缩红细胞输注", "9")), None, (18, 70), "A04.01"),
    ("K80.100", "胆囊结石伴有其他胆囊炎",
     (("51.2300", "腹腔镜下胆囊切除术", "1"), ("88.0100", "腹部计算机轴向断层照相术", "9"),
      ("89.5200", "心电图", "9")), None, (25, 80), "A04.01"),
    ("I21.000", "急性前壁透壁性心肌梗死",
     (("36.0700", "药物洗脱冠状动脉支架置入", "3"), ("88.5600", "用两根导管的冠状动脉造影术", "3"),
      ("00.6600", "经皮冠状动脉腔内血管成形术", "3")), None, (40, 85), "A03.04"),
    ("S72.000", "股骨颈骨折",
     (("81.5200", "部分髋关节置换", "22"), ("99.0400", "浓缩红细胞输注", "9"),
      ("87.0300", "头部计算机轴向断层照相术", "9")), None, (60, 90), "A04.03"),
    ("C34.900", "肺恶性肿瘤",
     (("32.4100", "胸腔镜下肺叶切除术", "1"), ("33.2200", "纤维支气管镜检查", "36"),
      ("34.0400", "胸腔闭式引流", "3")), None, (45, 80), "A04.05"),
    ("N40.x00", "前列腺增生",
     (("60.2900", "其他经尿道前列腺切除术", "21"), ("57.9400", "留置导尿管置入", "9"),
      ("57.3200", "其他膀胱镜检查", "36")), "1", (55, 85), "A04.04"),
    ("O80.000", "头位顺产",
     (("73.5900", "其他手法助产", "9"), ("73.6x00", "外阴切开术", "35"),
      ("75.6900", "其他近期产科裂伤修补术", "35")), "2", (20, 40), "A05.01"),
    ("M17.900", "膝关节骨关节病",
     (("81.5400", "全膝关节置换", "1"), ("88.3800", "其他计算机轴向断层照相术", "9"),
      ("99.0400", "浓缩红细胞输注", "9")), None, (50, 85), "A04.03"),
)  # fmt: skip

#: secondary diagnoses valid for any adult of either sex
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
) -> dict[str, Any]:
    """One upload document (envelope + input) that passes every default rule.

    `now` is the moment of upload (default 2026-11-24 09:30 CST, naive): discharge falls
    1-6 days before it, so the timeliness rule is satisfied.
    """
    now = now or datetime(2026, 11, 24, 9, 30, 0)
    serial = rng.randrange(10**8) if serial is None else serial
    area = mdtrtarea_admvs or rng.choice(REGIONS)[0]
    insured = insuplc_admdvs or (area if rng.random() < 0.8 else rng.choice(REGIONS)[0])
    hospital = fixmedins_code or f"H{area}{rng.randrange(1, 400):05d}"
    main_code, main_name, ops, sex, (age_lo, age_hi), dept = rng.choice(CASES)
    gend = sex or rng.choice(("1", "2"))
    dscg = now - timedelta(days=rng.randrange(1, 6), hours=rng.randrange(0, 12))
    dscg = dscg.replace(microsecond=0)
    los = rng.randrange(3, 15)
    adm = dscg - timedelta(days=los, hours=rng.randrange(0, 10))
    age = rng.randrange(age_lo, age_hi + 1)
    birth = adm.date().replace(year=adm.year - age - 1) + timedelta(days=rng.randrange(1, 360))
    years = adm.year - birth.year - ((adm.month, adm.day) < (birth.month, birth.day))
    certno = make_certno(rng, insured, birth, gend)
    name = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.randrange(1, 3)))
    medfee = rng.uniform(6000, 90000)
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
        "adm_dept_name": "外科" if dept.startswith("A04") else "内科",
        "dscg_dept_codg": dept,
        "dscg_dept_name": "外科" if dept.startswith("A04") else "内科",
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
    for code, dname in rng.sample(_SECONDARY, rng.randrange(6, 9)):
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
