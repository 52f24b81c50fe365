"""Budgets of what a caller may cost a gateway process: token buckets (pure: the clock is
passed in).

A request costs requests, bytes and — known only once its body is parsed — records; a
hospital is held to a budget of each (`Budgets`), and every client address, before it is
authenticated, to budgets of requests and bytes, so neither made-up credentials nor a flood
of tiny requests carrying a thousand empty records each can keep a gateway busy.

Kept per gateway process: a caller is tied to no process, so N processes allow up to N times
each rate. Set the `limits.*` rates per process with that in mind (docs/operations.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import LRUCache

from adapters.runtime.settings import LimitSettings


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by key; the least recently used dropped past `max_keys` (a dropped
    bucket comes back full: the bound on memory, at the price of a fresh burst)."""

    def __init__(self, rate_per_s: float, burst: float, *, max_keys: int = 100_000) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._buckets: LRUCache[str, _Bucket] = LRUCache(max_keys)

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        return bucket

    def take(self, key: str, now: float, cost: float = 1.0) -> float:
        """0 if allowed (and taken), else the seconds to wait before it would be."""
        bucket = self._refilled(key, now)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self._rate

    def admit(self, key: str, now: float, cost: float = 0.0) -> float:
        """0 if the key is in credit (a token at least; then `cost` is taken, into debt if
        need be), else the seconds until it is: for costs that may exceed the burst (a whole
        file's bytes) or are learnt later (`charge`)."""
        bucket = self._refilled(key, now)
        if bucket.tokens < 1:
            return (1 - bucket.tokens) / self._rate
        bucket.tokens -= cost
        return 0.0

    def charge(self, key: str, now: float, cost: float) -> None:
        """Take `cost` now, into debt if need be: a cost learnt after the work was done."""
        self._refilled(key, now).tokens -= cost


@dataclass(frozen=True, slots=True)
class Budgets:
    """Every budget of one gateway process (`limits.*` settings)."""

    requests: RateLimiter
    """A hospital's requests (whatever their size)."""
    records: RateLimiter
    """A hospital's records, charged once a body is parsed."""
    bytes: RateLimiter
    """A hospital's body bytes, by Content-Length, before the body is read."""
    source_requests: RateLimiter
    """Every request of one client address, before authentication."""
    source_bytes: RateLimiter
    """Body bytes of one client address, by Content-Length, before anything is read."""


def budgets(limits: LimitSettings) -> Budgets:
    return Budgets(
        requests=RateLimiter(limits.rate_per_s, limits.burst),
        records=RateLimiter(limits.records_per_s, limits.records_burst),
        bytes=RateLimiter(limits.bytes_per_s, limits.bytes_burst),
        source_requests=RateLimiter(limits.source_rate_per_s, limits.source_burst),
        source_bytes=RateLimiter(limits.source_bytes_per_s, limits.source_bytes_burst),
    )
