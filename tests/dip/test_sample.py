"""The bundled sample rules, the case generator and the pure group+score bench."""

from __future__ import annotations

import random
from collections import Counter

from contracts import city_of
from workers.dip import bench_group_score, group_and_score, make_case_facts, sample_rules
from workers.dip._scoring import ScoreError


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
    assert set(cities) == {"440100", "440300"}
    assert {"core", "primary", "comprehensive", "ungrouped"} <= set(statuses)
    assert {"normal", "high", "low", "cost_fraction"} <= set(deviations)
    assert statuses["core"] > statuses["comprehensive"] > statuses["ungrouped"]


def test_bench_reports_cases_per_second() -> None:
    r = bench_group_score(300, 0.05)
    assert r["group_score_cases_per_s"] > 0
    assert r["group_score_cases"] >= 300 and r["group_score_cases"] % 300 == 0
    assert len(r["rulesets"]) == 2
