"""Poison messages: one bad message must not stop a partition forever.

A batch is applied whole; if that fails for a reason that is not a dependency being away,
each message is applied on its own and the ones that still fail are recorded in
`dead_letters` (where they are in Kafka and why), then skipped. Dependency failures are
re-raised, so the worker restarts and the batch is replayed once the dependency is back.

Ops replay a dead letter after a fix (`/v1/ops/dead-letters/…/replay`): its original bytes are
written again to its topic with its key and a `dipgw-replay` header naming the worker and the
original position. Only that worker applies the copy (the others consuming the topic already
applied the original), and keys what it counts by the original position (`replayed_from`),
so a copy is exactly as idempotent as a redelivery of the original.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias

import asyncpg
from aiokafka import ConsumerRecord

from adapters.runtime.errors import describe_error, is_dependency_failure
from adapters.runtime.logs import get_logger

log = get_logger("dipgw.deadletter")


Record: TypeAlias = ConsumerRecord[bytes, bytes]

# Written by gateway/ops/messages.py (which may not import workers; a test keeps them equal).
REPLAY_HEADER = "dipgw-replay"


def replay_header(worker: str, topic: str, partition: int, offset: int) -> bytes:
    """The header value of a replayed copy: which worker, and where the original was."""
    return f"{worker}/{topic}/{partition}/{offset}".encode()


def replayed_from(record: Record) -> tuple[str, str, int, int] | None:
    """(worker, topic, partition, offset) of the original if `record` is a replayed copy."""
    for name, value in record.headers or ():
        if name != REPLAY_HEADER:
            continue
        worker, topic, partition, offset = bytes(value).decode("utf-8", "replace").split("/")
        return worker, topic, int(partition), int(offset)
    return None


def _meant_for(record: Record, worker: str) -> bool:
    """A replayed copy is for the worker that dead-lettered the original; others skip it."""
    try:
        origin = replayed_from(record)
    except ValueError:  # a header no gateway wrote: not a copy for anyone
        return False
    return origin is None or origin[0] == worker


async def apply_each_or_dead_letter(
    pool: asyncpg.Pool,
    worker: str,
    records: list[Record],
    apply: Callable[[list[Record]], Awaitable[None]],
) -> int:
    """Apply `records`; returns how many were dead-lettered."""
    records = [record for record in records if _meant_for(record, worker)]
    if not records:
        return 0
    try:
        await apply(records)
        return 0
    except Exception as exc:
        if is_dependency_failure(exc):
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
