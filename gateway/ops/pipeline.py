"""The pipeline as the `/ops` dashboard shows it: consumer lag per worker and topic, and how
many messages a topic has had."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import asyncpg

from adapters.runtime.metrics import TOPIC_END_OFFSET, consumer_lags
from contracts import shown


async def pipeline(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Consumer lag per worker and topic: this process's own consumers as measured now, the
    other processes' as their quality evaluator last stored it."""
    now = shown(datetime.now(UTC))
    here: dict[tuple[str, str], int] = defaultdict(int)
    for worker, topic, _, lag in consumer_lags():
        here[(worker, topic)] += lag
    rows = {
        (r["worker"], r["topic"]): {**dict(r), "at": shown(r["at"])}
        for r in await pool.fetch(
            """SELECT worker, topic, sum(lag)::bigint AS lag, max(at) AS at
               FROM quality_consumer_lag WHERE at > now() - interval '10 minutes'
               GROUP BY worker, topic"""
        )
    }
    for (worker, topic), lag in here.items():
        rows[(worker, topic)] = {"worker": worker, "topic": topic, "lag": lag, "at": now}
    return [rows[k] for k in sorted(rows)]


def topic_depth(topic: str) -> int | None:
    """Messages ever written to `topic` as this process's consumers last saw its end."""
    total, seen = 0, False
    for metric in TOPIC_END_OFFSET.collect():
        for sample in metric.samples:
            if sample.labels.get("topic") == topic:
                total, seen = total + int(sample.value), True
    return total if seen else None
