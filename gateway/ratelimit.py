"""Per-hospital token buckets (pure: the clock is passed in).

Kept per gateway process: a hospital is tied to no process, so N processes allow up to N
times the rate; set `limits.rate_per_s` per process with that in mind.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float, cost: float = 1.0) -> float:
        """0 if allowed (and taken), else the seconds to wait before it would be."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self._rate
