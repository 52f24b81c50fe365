from __future__ import annotations

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
