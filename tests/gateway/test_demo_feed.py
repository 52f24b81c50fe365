"""The demo's feed (pure, no broker): every city's hospitals draw their cases from the city's
sample catalog, the lists pass the contract, every one is scored, and the deviation shares are
the cost law's; the demo's deviation table shows them beside the law's."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime
from math import sqrt

import msgspec
from rich.console import Console

from contracts import Validator
from gateway.commands.demo import deviation_table
from gateway.demo_feed import HOSPITALS, RATED_HOSPITALS, DemoFeed, expected_shares
from workers.casefacts_map import case_facts
from workers.dip import SAMPLE_RULES, group_and_score, rules_for_year, sample_rules

NOW = datetime(2026, 11, 24, 9, 30)


def test_every_demo_city_has_sample_rules_for_its_hospitals_levels() -> None:
    assert RATED_HOSPITALS == HOSPITALS
    assert {city for _, _, city, _ in HOSPITALS} == {"440100", "440300", "440600"}
    for _, _, city, level in HOSPITALS:
        assert level in {lv.code for lv in sample_rules(city).policy.levels}
    assert DemoFeed(random.Random(1), NOW).clearing_years == (2026,)
    assert DemoFeed(random.Random(1), datetime(2027, 1, 3)).clearing_years == (2026, 2027)


def test_expected_shares_of_the_cost_law() -> None:
    # By hand: σ = 0.45, σ²/2 = 0.10125. Low (< 0.5): Φ((ln 0.5 + 0.10125) / 0.45)
    # = Φ(−1.3153) = 0.0942; high (> 2): 1 − Φ((0.6931 + 0.10125) / 0.45) = 1 − Φ(1.7653)
    # = 0.0388; 深圳 low (≤ 0.4): Φ((−0.9163 + 0.10125) / 0.45) = Φ(−1.8112) = 0.0351.
    gz = expected_shares(sample_rules("440100").policy)
    assert abs(gz["low"] - 0.0942) < 0.0005 and abs(gz["high"] - 0.0388) < 0.0005
    assert abs(gz["normal"] - (1 - 0.0942 - 0.0388)) < 0.001
    sz = expected_shares(sample_rules("440300").policy)
    assert abs(sz["low"] - 0.0351) < 0.0005 and abs(sz["high"] - 0.0388) < 0.0005


def test_feed_cases_pass_are_scored_and_show_the_law_s_deviation_shares() -> None:
    """3,000 pushes: the originals validate, map, group in their city's catalog and score; per
    city, the low and high shares lie within 4 binomial sd of `expected_shares`."""
    feed = DemoFeed(random.Random(7), NOW).build(3000)
    validator = Validator()
    hospitals = {code: (city, level) for code, _, city, level in HOSPITALS}
    rules = {city: rules_for_year(sample_rules(city), 2026) for city in SAMPLE_RULES}
    kinds: dict[str, Counter[str]] = {city: Counter() for city in SAMPLE_RULES}
    for item in feed:
        _, errors = validator.validate_json(item.body, received_at=NOW)
        if any(e.severity == "reject" for e in errors):
            assert item.wave == 0 and {e.rule for e in errors} >= {"REQ_FIELD"}  # the bad ones
            continue
        doc = msgspec.json.decode(item.body)
        city, level = hospitals[doc["fixmedins_code"]]
        facts = case_facts(
            item.body,
            case_key="k",
            fixmedins_code=doc["fixmedins_code"],
            treating_admdvs=city,
            insured_admdvs=doc["insuplc_admdvs"],
            hospital_level=level,
        )
        g, s = group_and_score(facts, rules[city])
        assert g.status in ("core", "primary", "comprehensive"), (facts, g)
        kinds[city][s.deviation] += 1
    for city, seen in kinds.items():
        n = sum(seen.values())
        assert n > 700 and set(seen) <= {"normal", "low", "high", "extreme"}, (city, seen)
        law = expected_shares(rules[city].policy)
        got = {"low": seen["low"] / n, "high": (seen["high"] + seen["extreme"]) / n}
        for kind in ("low", "high"):
            sd = sqrt(law[kind] * (1 - law[kind]) / n)
            assert abs(got[kind] - law[kind]) <= 4 * sd, (city, kind, got, law)


def test_deviation_table_shows_counts_shares_and_the_law() -> None:
    rows = [
        {"city": "440100", "kind": "normal", "n": 44},
        {"city": "440100", "kind": "low", "n": 4},
        {"city": "440100", "kind": "high", "n": 2},
        {"city": "440600", "kind": "normal", "n": 9},
        {"city": "440600", "kind": "cost_fraction", "n": 1},
    ]
    console = Console(record=True, width=160)
    console.print(deviation_table(rows))
    text = console.export_text()
    gz = next(line for line in text.splitlines() if "440100" in line)
    assert "50" in gz and "44 (88%)" in gz and "4 (8%)" in gz and "2 (4%)" in gz
    assert "87% / 9% / 4%" in gz  # expected_shares of Guangzhou's 0.5/2 bounds
    fs = next(line for line in text.splitlines() if "440600" in line)
    assert "9 (90%)" in fs and "cost_fraction 1" in fs and "0" in fs
