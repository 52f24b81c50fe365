"""The consumer loop every worker shares: fetch a batch, handle it, then commit.

Offsets are committed only after the handler's output is written, so a crash replays the
batch (at-least-once) and the handlers' idempotent effects make the end state exactly-once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import msgspec
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from adapters.runtime.logs import get_logger
from adapters.runtime.metrics import CONSUMER_LAG, STAGE_LATENCY, TOPIC_END_OFFSET

Handler = Callable[[list[ConsumerRecord[bytes, bytes]]], Awaitable[None]]
T = TypeVar("T")

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
    batch_timeout_s: float = 300.0,
    on_batch: Callable[[int], Any] | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> None:
    """`client_options`: the security arguments every client gets (`kafka.client_options`)."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=f"dipgw-{name}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max_batch,
        **(client_options or {}),
    )
    await consumer.start()
    log.info("worker.started", worker=name, topics=topics, group=group_id)
    lag_due = 0.0
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=max_batch)
            records = [record for part in batches.values() for record in part]
            if time.monotonic() >= lag_due:
                lag_due = time.monotonic() + 1.0
                await _observe_lag(name, consumer)
            if not records:
                continue
            # Bounded: a handler stuck on a dependency must end (TimeoutError) so that its
            # supervisor restarts the stage and the uncommitted batch replays.
            await asyncio.wait_for(handler(records), batch_timeout_s)
            await asyncio.wait_for(consumer.commit(), batch_timeout_s)
            if on_batch is not None:
                on_batch(len(records))
            now_ms, stage = time.time() * 1000, STAGE_LATENCY.labels(name)
            for record in records:
                stage.observe(max(0.0, now_ms - record.timestamp) / 1000)
    finally:
        await consumer.stop()
        log.info("worker.stopped", worker=name)


async def _observe_lag(name: str, consumer: AIOKafkaConsumer) -> None:
    """Consumer lag per partition (end offset − position), at most once a second."""
    for tp in consumer.assignment():
        end = consumer.highwater(tp)
        if end is None:
            continue
        try:  # a partition revoked meanwhile has no position: skip it, never fail the loop
            position = await asyncio.wait_for(consumer.position(tp), timeout=1)
        except Exception:
            continue
        CONSUMER_LAG.labels(name, tp.topic, str(tp.partition)).set(max(0, end - position))
        TOPIC_END_OFFSET.labels(tp.topic, str(tp.partition)).set(end)


def decode_each(
    records: list[ConsumerRecord[bytes, bytes]], decoder: msgspec.json.Decoder[T], worker: str
) -> list[tuple[ConsumerRecord[bytes, bytes], T]]:
    """The decodable messages of a batch, each with its record.

    Only dipgw writes its topics: an undecodable message is a bug to see in the log, not a
    reason to stall the partition, so it is logged (never its content) and skipped.
    """
    decoded = []
    for record in records:
        try:
            decoded.append((record, decoder.decode(record.value or b"")))
        except msgspec.DecodeError as exc:
            log.error(
                f"{worker}.undecodable",
                partition=record.partition,
                offset=record.offset,
                error=str(exc),
            )
    return decoded
