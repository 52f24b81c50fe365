"""Poison messages: one bad message must not stop a partition forever.

A batch is applied whole; if that fails for a reason that is not a dependency being away,
each message is applied on its own and the ones that still fail are recorded in
`dead_letters` (where they are in Kafka and why), then skipped. Dependency failures are
re-raised, so the worker restarts and the batch is replayed once the dependency is back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import ConsumerRecord

from adapters.runtime.errors import describe_error, is_dependency_failure
from adapters.runtime.logs import get_logger

log = get_logger("dipgw.deadletter")


Record = ConsumerRecord[bytes, bytes]


async def apply_each_or_dead_letter(
    pool: asyncpg.Pool,
    worker: str,
    records: list[Record],
    apply: Callable[[list[Record]], Awaitable[None]],
) -> int:
    """Apply `records`; returns how many were dead-lettered."""
    try:
        await apply(records)
        return 0
    except Exception as exc:
        if is_dependency_failure(exc) or len(records) == 0:
            raise
        log.warning(
            "worker.batch_failed_splitting",
            worker=worker,
            error=describe_error(exc),
            count=len(records),
        )
    dead = 0
    for record in records:
        try:
            await apply([record])
        except Exception as exc:
            if is_dependency_failure(exc):
                raise
            dead += 1
            log.error(
                "worker.dead_letter",
                worker=worker,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error=describe_error(exc),
            )
            await pool.execute(
                """INSERT INTO dead_letters (worker, topic, "partition", "offset", key, error)
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
                worker,
                record.topic,
                record.partition,
                record.offset,
                (record.key or b"").decode("utf-8", "replace"),
                describe_error(exc),
            )
    return dead
