"""A generated feed for the demo: realistic settlement lists plus the awkward cases.

Lists come from `contracts.samples.make_settlement` (they pass every default rule); this
module picks hospitals in three cities of one province and mixes in what real feeds hold:
identical resends, corrected lists (new revisions) and a few malformed uploads, so that every
path of the pipeline shows in one run. All people are invented.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from contracts import CST
from contracts.samples import make_settlement
from workers.dip import SAMPLE_RULES

# Levels are the tier codes of each city's DIP rules (workers/dip/data): Guangzhou has five
# tiers (3A, 3, 2M, 2C, 1), Shenzhen three (3, 2, 1).
HOSPITALS = (
    ("H44010000001", "广州市第一人民医院", "440100", "3A"),
    ("H44010000002", "广州市越秀区人民医院", "440100", "2M"),
    ("H44030000001", "深圳市人民医院", "440300", "3"),
    ("H44030000007", "深圳市宝安区中心医院", "440300", "2"),
    ("H44060000003", "佛山市第一人民医院", "440600", "3"),
    ("H44060000010", "佛山市南海区人民医院", "440600", "1"),
)

# Those of cities with (sample) DIP rules: a case in a city without rules is stored unscored
# (DIP_NO_RULES), which is cheaper than scoring and would flatter a benchmark or a drill.
RATED_HOSPITALS = tuple(h for h in HOSPITALS if h[2] in SAMPLE_RULES)


@dataclass(frozen=True, slots=True)
class FeedItem:
    wave: int  # 0: originals and malformed uploads; 1: resends and corrections
    body: bytes


class DemoFeed:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._run = rng.randrange(10**5)
        self._now = datetime.now(CST).replace(tzinfo=None)

    def document(self, n: int) -> dict[str, Any]:
        code, _name, city, _level = self._rng.choice(HOSPITALS)
        return make_settlement(
            self._rng,
            now=self._now,
            mdtrtarea_admvs=city,
            fixmedins_code=code,
            serial=self._run * 10**6 + n,
        )

    def build(self, records: int) -> list[FeedItem]:
        """`records` pushes: ~90% originals, ~4% identical resends, ~4% corrections, ~2% bad."""
        enc = msgspec.json.encode
        items: list[FeedItem] = []
        originals: list[dict[str, Any]] = []
        for n in range(records):
            roll = self._rng.random()
            if originals and roll < 0.04:
                resend = dict(self._rng.choice(originals))
                resend["msgid"] = str(resend.get("msgid", ""))[:-4] + "9999"  # new message id
                items.append(FeedItem(1, enc(resend)))
            elif originals and roll < 0.08:
                corrected = copy.deepcopy(self._rng.choice(originals))
                corrected["input"]["setlinfo"]["medins_fill_psn"] = "复核员"
                items.append(FeedItem(1, enc(corrected)))
            elif roll < 0.10:
                bad = self.document(n)
                del bad["input"]["setlinfo"]["setl_id"]
                bad["input"]["diseinfo"][0]["diag_code"] = "K35.8XX"  # not a 医保版 code
                items.append(FeedItem(0, enc(bad)))
            else:
                doc = self.document(n)
                originals.append(doc)
                items.append(FeedItem(0, enc(doc)))
        return items
