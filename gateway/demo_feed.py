"""A generated feed of realistic settlement lists for the demo and the benchmarks.

Hospitals in three cities of one province, patients insured in their own or a neighbouring
city (cross-city cases), a few identical resends, a few corrected lists (new revisions) and a
few malformed uploads, so that every path of the pipeline shows in one run. All people are
invented; certificate numbers are synthetic but carry a valid GB 11643 check digit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

HOSPITALS = (
    ("H44010000001", "广州市第一人民医院", "440100", "3"),
    ("H44010000002", "广州市越秀区人民医院", "440100", "2"),
    ("H44030000001", "深圳市人民医院", "440300", "3"),
    ("H44030000007", "深圳市宝安区中心医院", "440300", "2"),
    ("H44060000003", "佛山市第一人民医院", "440600", "3"),
    ("H44060000010", "佛山市南海区人民医院", "440600", "1"),
)
CITIES = ("440100", "440300", "440600")
# (main diagnosis code, name, operation code, operation name) — common DIP core combinations.
CASES = (
    ("K35.800x002", "急性阑尾炎", "47.0100", "腹腔镜下阑尾切除术"),
    ("K80.100", "胆囊结石伴有其他胆囊炎", "51.2300", "腹腔镜胆囊切除术"),
    ("I21.000", "前壁急性透壁性心肌梗死", "36.0600", "非药物洗脱冠状动脉支架置入"),
    ("J18.900", "肺炎", None, None),
    ("I63.900", "脑梗死", None, None),
    ("S72.000", "股骨颈骨折", "81.5100", "全髋关节置换"),
    ("O80.000", "单胎顺产", "73.5900", "其他手法助产"),
    ("C34.900", "支气管或肺恶性肿瘤", "32.4100", "胸腔镜下肺叶切除术"),
)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def certno_check_digit(first17: str) -> str:
    """GB 11643: weighted sum of the first 17 digits mod 11 indexes "10X98765432"."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


@dataclass(frozen=True, slots=True)
class FeedItem:
    wave: int  # 0: originals and malformed uploads; 1: resends and corrections
    body: bytes


class DemoFeed:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._run = f"{rng.randrange(16**6):06X}"

    def document(self, n: int) -> dict[str, Any]:
        rng = self._rng
        code, name, city, _level = rng.choice(HOSPITALS)
        insured = city if rng.random() < 0.8 else rng.choice([c for c in CITIES if c != city])
        birth = datetime(1940, 1, 1) + timedelta(days=rng.randrange(0, 80 * 365))
        first17 = f"{insured}{birth:%Y%m%d}{rng.randrange(1000):03d}"
        adm = datetime(2026, 10, 1, 8) + timedelta(hours=rng.randrange(0, 40 * 24))
        dscg = adm + timedelta(days=rng.randrange(2, 15), hours=rng.randrange(0, 8))
        diag, diag_name, oprn, oprn_name = rng.choice(CASES)
        total = rng.randrange(3000_00, 80000_00) / 100
        setl_id = f"S{self._run}{n:06d}"
        setlinfo = {
            "setl_id": setl_id,
            "mdtrt_id": f"M{self._run}{n:06d}",
            "psn_no": f"{insured}{rng.randrange(10**12):012d}",
            "medcasno": f"BA{n:08d}",
            "psn_name": rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2)))),
            "gend": rng.choice("12"),
            "brdy": f"{birth:%Y-%m-%d}",
            "age": (dscg - birth).days // 365,
            "patn_cert_type": "01",
            "certno": first17 + certno_check_digit(first17),
            "ntly": "CHN",
            "naty": "01",
            "prfs": "90",
            "insuplc": insured,
            "insutype": rng.choice(("310", "390")),
            "hi_type": "310",
            "adm_time": f"{adm:%Y-%m-%d %H:%M:%S}",
            "dscg_time": f"{dscg:%Y-%m-%d %H:%M:%S}",
            "setl_begn_date": f"{adm:%Y-%m-%d}",
            "setl_end_date": f"{dscg:%Y-%m-%d}",
            "act_ipt_days": (dscg.date() - adm.date()).days,
            "dscg_way": "1",
            "hi_paymtd": "4",
            "medfee_sumamt": f"{total:.2f}",
            "fund_pay_sumamt": f"{total * 0.7:.2f}",
            "bill_code": "44010120",
            "bill_no": f"{rng.randrange(10**8):08d}",
            "biz_sn": f"{code}{n:010d}",
            "medins_fill_dept": "病案室",
            "medins_fill_psn": "填报员",
        }
        doc: dict[str, Any] = {
            "infno": "4101A",
            "msgid": f"{code}{dscg:%Y%m%d%H%M%S}{n % 10000:04d}",
            "fixmedins_code": code,
            "fixmedins_name": name,
            "mdtrtarea_admvs": city,
            "insuplc_admdvs": insured,
            "inf_time": f"{dscg + timedelta(days=rng.randrange(0, 5)):%Y-%m-%d %H:%M:%S}",
            "input": {
                "setlinfo": setlinfo,
                "diseinfo": [
                    {
                        "diag_type": "1",
                        "diag_code": diag,
                        "diag_name": diag_name,
                        "maindiag_flag": "1",
                        "adm_cond_type": "1",
                    },
                    {
                        "diag_type": "1",
                        "diag_code": "I10.x00",
                        "diag_name": "高血压",
                        "maindiag_flag": "0",
                        "adm_cond_type": "1",
                    },
                ],
                "oprninfo": [],
            },
        }
        if oprn is not None:
            doc["input"]["oprninfo"].append(
                {
                    "oprn_oprt_type": "1",
                    "oprn_oprt_code": oprn,
                    "oprn_oprt_name": oprn_name,
                    "oprn_oprt_date": f"{adm + timedelta(days=1):%Y-%m-%d}",
                    "anst_way": "01",
                    "oper_dr_code": "D001",
                    "oper_dr_name": "主刀医师",
                }
            )
        return doc

    def build(self, records: int) -> list[FeedItem]:
        """`records` pushes: ~90% originals, ~4% identical resends, ~4% corrections, ~2% bad."""
        enc = msgspec.json.encode
        items: list[FeedItem] = []
        originals: list[dict[str, Any]] = []
        for n in range(records):
            roll = self._rng.random()
            if originals and roll < 0.04:
                resend = dict(self._rng.choice(originals))
                resend["msgid"] = resend["msgid"][:-4] + "9999"  # new message id, same list
                items.append(FeedItem(1, enc(resend)))
            elif originals and roll < 0.08:
                base = self._rng.choice(originals)
                corrected = msgspec.json.decode(enc(base))
                corrected["input"]["setlinfo"]["medins_fill_psn"] = "复核员"
                items.append(FeedItem(1, enc(corrected)))
            elif roll < 0.10:
                bad = self.document(n)
                del bad["input"]["setlinfo"]["setl_id"]
                items.append(FeedItem(0, enc(bad)))
            else:
                doc = self.document(n)
                originals.append(doc)
                items.append(FeedItem(0, enc(doc)))
        return items
