"""Test helper: a real barrier on a worker's progress (instead of sleeping and hoping)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from gateway.runtime import Stack


async def handled(stack: Stack, worker: str, positions: list[Any], within_s: float = 20) -> None:
    """Wait until `worker`'s consumer group has committed past these records (metadata from
    `send_and_wait`): workers commit only after writing, so they were handled."""
    group = f"{stack.settings.worker.group_prefix}.{worker}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        for _ in range(int(within_s / 0.05)):
            committed = await admin.list_consumer_group_offsets(group)
            if all(
                (c := committed.get(TopicPartition(p.topic, p.partition))) is not None
                and c.offset > p.offset
                for p in positions
            ):
                return
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    raise AssertionError(f"{worker} never committed past {positions}")
