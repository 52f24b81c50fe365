"""The consumer loop every worker shares: fetch a batch, handle it, then commit.

Offsets are committed only after the handler's output is written, so a crash replays the
batch (at-least-once) and the handlers' idempotent effects make the end state exactly-once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from gateway.logs import get_logger

Handler = Callable[[list[ConsumerRecord[bytes, bytes]]], Awaitable[None]]

log = get_logger("dipgw.worker")


async def run_consumer(
    *,
    name: str,
    bootstrap: str,
    group_id: str,
    topics: list[str],
    handler: Handler,
    stop: asyncio.Event,
    max_batch: int = 500,
    on_batch: Callable[[int], Any] | None = None,
) -> None:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=f"dipgw-{name}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max_batch,
    )
    await consumer.start()
    log.info("worker.started", worker=name, topics=topics, group=group_id)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=max_batch)
            records = [record for part in batches.values() for record in part]
            if not records:
                continue
            await handler(records)
            await consumer.commit()
            if on_batch is not None:
                on_batch(len(records))
    finally:
        await consumer.stop()
        log.info("worker.stopped", worker=name)
