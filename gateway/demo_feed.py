"""A generated feed for the demo: realistic settlement lists plus the awkward cases.

Lists come from `contracts.samples.make_settlement` (they pass every default rule); this
module picks hospitals in three cities of one province and mixes in what real feeds hold:
identical resends, corrected lists (new revisions) and a few malformed uploads, so that every
path of the pipeline shows in one run. Each hospital's cases are drawn from its city's sample
DIP catalog (`workers.dip` `sample_case_mix`: the groups' diagnoses and operations, costs
log-normal around the group's average at the hospital's level), so the scored cases show the
deviation mix of real data. All people are invented.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import log
from statistics import NormalDist
from typing import Any

import msgspec

from contracts import CST
from contracts.samples import COST_SIGMA, MixCase, make_settlement
from workers.dip import SAMPLE_RULES, Policy, sample_case_mix, sample_rules

# Levels are the tier codes of each city's DIP rules (workers/dip/data): Guangzhou has five
# tiers (3A, 3, 2M, 2C, 1), Shenzhen and Foshan three (3, 2, 1).
HOSPITALS = (
    ("H44010000001", "广州市第一人民医院", "440100", "3A"),
    ("H44010000002", "广州市越秀区人民医院", "440100", "2M"),
    ("H44030000001", "深圳市人民医院", "440300", "3"),
    ("H44030000007", "深圳市宝安区中心医院", "440300", "2"),
    ("H44060000003", "佛山市第一人民医院", "440600", "3"),
    ("H44060000010", "佛山市南海区人民医院", "440600", "1"),
)

# Those of cities with (sample) DIP rules — all of them now; a case in a city without rules
# would be stored unscored (DIP_NO_RULES), which is cheaper than scoring and would flatter a
# benchmark or a drill.
RATED_HOSPITALS = tuple(h for h in HOSPITALS if h[2] in SAMPLE_RULES)


def hospital_case_mix(city: str, level: str) -> tuple[MixCase, ...] | None:
    """The case mix of a hospital: its city's sample catalog at its level; None (the
    generator's own cases) for a city without sample rules."""
    return sample_case_mix(sample_rules(city), level) if city in SAMPLE_RULES else None


def expected_shares(policy: Policy, sigma: float = COST_SIGMA) -> dict[str, float]:
    """Shares of normal, low and high (extremes included) cases the city's deviation bounds
    give when costs are the reference × LogNormal(−σ²/2, σ), as the feed draws them."""
    law = NormalDist()

    def below(t: float) -> float:
        return law.cdf((log(t) + sigma * sigma / 2) / sigma)

    dev = policy.deviation
    low = below(dev.low_threshold) if dev.low_threshold is not None else 0.0
    high = 1 - below(dev.high_threshold) if dev.high_threshold is not None else 0.0
    return {"normal": 1 - low - high, "low": low, "high": high}


@dataclass(frozen=True, slots=True)
class FeedItem:
    wave: int  # 0: originals and malformed uploads; 1: resends and corrections
    body: bytes


class DemoFeed:
    def __init__(self, rng: random.Random, now: datetime | None = None) -> None:
        self._rng = rng
        self._run = rng.randrange(10**5)
        self._now = now or datetime.now(CST).replace(tzinfo=None)
        self._mix = {code: hospital_case_mix(city, level) for code, _, city, level in HOSPITALS}

    @property
    def clearing_years(self) -> tuple[int, ...]:
        """The discharge years of the feed's lists (discharged 1-6 days before now)."""
        return tuple(sorted({self._now.year, (self._now - timedelta(days=7)).year}))

    def document(self, n: int) -> dict[str, Any]:
        code, _name, city, _level = self._rng.choice(HOSPITALS)
        return make_settlement(
            self._rng,
            now=self._now,
            mdtrtarea_admvs=city,
            fixmedins_code=code,
            serial=self._run * 10**6 + n,
            case_mix=self._mix[code],
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
