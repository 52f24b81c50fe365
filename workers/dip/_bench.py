"""The pure half of ``dipgw bench pipeline``: group + score throughput on one core."""

from __future__ import annotations

import random
import time
from typing import Any

from contracts import city_of

from ._grouping import group
from ._sample import make_case_facts, sample_rules
from ._scoring import ScoreError, score


def bench_group_score(n_cases: int, seconds: float) -> dict[str, Any]:
    """Group and score ``n_cases`` generated cases (seeded, both sample cities) repeatedly for
    about ``seconds`` (at least one pass). Case generation and rule loading are not timed."""
    rng = random.Random(20260101)
    rules = {c: sample_rules(c) for c in ("440100", "440300")}
    cases = [make_case_facts(rng, tuple(rules.values())) for _ in range(max(1, n_cases))]
    pairs = [(c, rules[city_of(c.treating_admdvs) or c.treating_admdvs]) for c in cases]
    for rs in rules.values():
        group(cases[0], rs)  # build the indexes outside the timed loop
    done = errors = passes = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for case, rs in pairs:
            g = group(case, rs)
            try:
                score(g, rs, case)
            except ScoreError:
                errors += 1
        done += len(pairs)
        passes += 1
        if time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - start
    return {
        "group_score_cases_per_s": done / elapsed if elapsed > 0 else 0.0,
        "group_score_cases": done,
        "group_score_seconds": elapsed,
        "group_score_passes": passes,
        "group_score_errors": errors,
        "rulesets": [rs.version_id for rs in rules.values()],
    }
