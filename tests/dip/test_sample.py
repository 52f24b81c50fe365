"""The bundled sample rules, the case generator and the pure group+score bench."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime
from decimal import Decimal
from math import log, sqrt
from statistics import NormalDist

import msgspec
import pytest

from contracts import Validator, city_of
from contracts.samples import COST_SIGMA, make_settlement
from workers.casefacts_map import case_facts
from workers.dip import (
    SAMPLE_RULES,
    bench_group_score,
    group,
    group_and_score,
    load_rules,
    make_case_facts,
    sample_rules,
)
from workers.dip._model import Group
from workers.dip._sample import reference_cost, sample_case_mix
from workers.dip._scoring import ScoreError

CITIES = ("440100", "440300", "440600")


def test_generator_is_seeded_and_covers_the_interesting_paths() -> None:
    a = [make_case_facts(random.Random(5)) for _ in range(3)]
    b = [make_case_facts(random.Random(5)) for _ in range(3)]
    assert a == b
    rng = random.Random(11)
    statuses: Counter[str] = Counter()
    deviations: Counter[str] = Counter()
    cities: Counter[str] = Counter()
    for _ in range(3000):
        case = make_case_facts(rng)
        rs = sample_rules(city_of(case.treating_admdvs) or case.treating_admdvs)
        cities[rs.city] += 1
        try:
            g, s = group_and_score(case, rs)
        except ScoreError:
            continue
        statuses[g.status] += 1
        deviations[s.deviation] += 1
    assert set(cities) == set(CITIES)
    assert {"core", "primary", "comprehensive", "ungrouped"} <= set(statuses)
    assert {"normal", "high", "low", "cost_fraction"} <= set(deviations)
    assert statuses["core"] > statuses["comprehensive"] > statuses["ungrouped"]


def test_bench_reports_cases_per_second() -> None:
    r = bench_group_score(300, 0.05)
    assert r["group_score_cases_per_s"] > 0
    assert r["group_score_cases"] >= 300 and r["group_score_cases"] % 300 == 0
    assert len(r["rulesets"]) == 2  # the bench's two cities (_bench.py)


def _law(threshold: float, below: bool) -> float:
    """P(ratio < threshold) (or >) for cost = reference × LogNormal(−σ²/2, σ)."""
    p = NormalDist().cdf((log(threshold) + COST_SIGMA**2 / 2) / COST_SIGMA)
    return p if below else 1 - p


def test_case_facts_deviation_shares_follow_the_log_normal_law() -> None:
    """10,000 generated cases: among those with a deviation check, the low and high shares of
    each city are the law's for its bounds (σ = COST_SIGMA = 0.45, mean = reference cost):
    0.5/2 (广州, 佛山) → 9.4 % low, 3.9 % high (2× and above, extremes included), 86.7 %
    normal; 0.4/2 (深圳) → 3.3 % low, 3.9 % high, 92.8 % normal. Band: ± 4 binomial sd."""
    rng = random.Random(20261130)
    counts: dict[str, Counter[str]] = {c: Counter() for c in CITIES}
    for _ in range(10_000):
        case = make_case_facts(rng)
        rs = sample_rules(city_of(case.treating_admdvs) or "")
        try:
            _, s = group_and_score(case, rs)
        except ScoreError:
            continue
        if s.ratio is not None:
            counts[rs.city][s.deviation] += 1
    for city, seen in counts.items():
        dev = sample_rules(city).policy.deviation
        assert dev.low_threshold is not None and dev.high_threshold is not None
        n = sum(seen.values())
        assert n > 2500, (city, seen)
        expected = {
            "low": _law(dev.low_threshold, True),
            "high": _law(dev.high_threshold, False),
        }
        got = {"low": seen["low"] / n, "high": (seen["high"] + seen["extreme"]) / n}
        for kind, p in expected.items():
            sd = sqrt(p * (1 - p) / n)
            assert abs(got[kind] - p) <= 4 * sd, (city, kind, got[kind], p, seen)
        assert set(seen) <= {"normal", "low", "high", "extreme"}, seen
        assert 0.80 <= seen["normal"] / n <= 0.95, (city, seen)


@pytest.mark.parametrize("city", CITIES)
def test_sample_case_mix_lands_each_entry_in_its_group_and_passes_the_contract(city: str) -> None:
    """Every MixCase of every level: the generated list validates, maps to case facts and
    groups into the catalog group it was built from."""
    rs = sample_rules(city)
    validator = Validator()
    now = datetime(2026, 11, 24, 9, 30)
    rng = random.Random(city)
    kinds: Counter[str] = Counter()
    for level in rs.policy.levels:
        mix = sample_case_mix(rs, level.code)
        groups = {g.code: g for g in rs.groups}
        assert len(mix) >= len([g for g in rs.groups if g.kind != "bed_day"]) - 3
        for entry in mix:
            kinds[groups[entry.label].kind] += 1
            assert entry.mean_cost == reference_cost(groups[entry.label], rs.policy, level.code)
            for _ in range(2):
                doc = make_settlement(rng, now=now, mdtrtarea_admvs=city, case_mix=(entry,))
                raw = msgspec.json.encode(doc)
                _, errors = validator.validate_json(raw, received_at=now)
                assert [e.rule for e in errors if e.severity == "reject"] == [], entry
                facts = case_facts(
                    raw,
                    case_key="k",
                    fixmedins_code=doc["fixmedins_code"],
                    treating_admdvs=city,
                    insured_admdvs=doc["insuplc_admdvs"],
                    hospital_level=level.code,
                )
                got = group(facts, rs)
                assert got.group_code == entry.label, (entry, facts.main_diag_code, got)
    assert {"core", "primary", "comprehensive"} <= set(kinds)


def test_reference_cost_is_the_one_the_deviation_check_uses() -> None:
    gz, sz = sample_rules("440100"), sample_rules("440300")
    g = next(x for x in gz.groups if x.code == "GZ-C002")
    assert reference_cost(g, gz.policy, "2M") == 8330.0  # same_level: the level's column
    g = next(x for x in sz.groups if x.code == "SZ0002")
    assert reference_cost(g, sz.policy, "1") == 11209.0  # all_levels: the 次均费用 column
    by_score = msgspec.structs.replace(
        gz.policy,
        deviation=msgspec.structs.replace(
            gz.policy.deviation, reference="score", yuan_per_point={"310": Decimal("12")}
        ),
    )
    assert reference_cost(g, by_score, "3A") == 1019 * 12.0
    assert reference_cost(g, by_score, "3A", insutype="390") is None  # no yuan per point
    fund = Group(
        code="X",
        kind="core",
        diag="K35.8",
        score=1.0,
        ref_cost_all=Decimal(900),
        ref_costs={"3A": Decimal(1000)},
        fund_ref_costs={"390": {"3A": Decimal(700)}},
    )
    assert reference_cost(fund, gz.policy, "3A", "390") == 700.0
    assert reference_cost(fund, gz.policy, "3A", "310") == 1000.0
    assert reference_cost(fund, gz.policy, "1", "310") == 900.0  # no level column: all levels


def test_foshan_sample_rules() -> None:
    fs = load_rules(SAMPLE_RULES["440600"])
    assert (fs.city, fs.clearing_year, [lv.code for lv in fs.policy.levels]) == (
        "440600",
        2026,
        ["3", "2", "1"],
    )
    kinds = Counter(g.kind for g in fs.groups)
    assert kinds["core"] >= 35 and kinds["comprehensive"] >= 15 and kinds["primary"] >= 4
    hernia = next(g for g in fs.groups if g.code == "FS-C038")
    assert (hernia.diag, hernia.operations, hernia.ref_costs["3"]) == (
        "K40.9",
        ("53.0002",),
        Decimal(11648),
    )
