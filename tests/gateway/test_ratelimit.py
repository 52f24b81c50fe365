from __future__ import annotations

import pytest

from gateway.ratelimit import RateLimiter


def test_burst_then_steady_rate_per_key() -> None:
    limiter = RateLimiter(rate_per_s=2, burst=3)
    assert [limiter.take("H1", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("H1", 0.0) == 0.5  # empty: one token comes back in 1/2 s
    assert limiter.take("H2", 0.0) == 0.0  # another hospital has its own bucket
    assert limiter.take("H1", 0.5) == 0.0
    assert limiter.take("H1", 0.5) > 0
    assert limiter.take("H1", 100.0) == 0.0  # refilled, but never above the burst
    assert [limiter.take("H1", 100.0) for _ in range(3)][-1] > 0


def test_a_cost_budget_admits_while_in_credit_and_then_waits_off_the_debt() -> None:
    """Records and bytes are known only as a request is handled: a request is admitted while
    its hospital is in credit, its cost then charged in full (the debt waited off)."""
    records = RateLimiter(rate_per_s=100, burst=1000)
    assert records.admit("H1", 0.0, 1000) == 0.0  # a whole batch within the burst
    assert records.admit("H1", 0.0, 1) == 0.01  # empty: the next waits
    records.charge("H1", 0.5, 1000)  # a batch charged after parsing: 50 back, 1000 owed
    assert records.admit("H1", 0.5, 1) == pytest.approx(9.51)  # until back in credit
    assert records.admit("H1", 10.01, 1) == 0.0


def test_buckets_are_bounded_whoever_calls() -> None:
    """One bucket per client address: a scan from many addresses must not grow memory."""
    sources = RateLimiter(rate_per_s=1, burst=1, max_keys=100)
    for i in range(10_000):
        sources.take(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(sources) <= 100
