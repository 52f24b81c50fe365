"""Kafka plumbing shared by every process: the producer and topic creation.

The producer is idempotent with acks=all, so a write acknowledged to a hospital is on every
in-sync replica and a retried send cannot duplicate it.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from gateway.settings import Settings


def new_producer(
    settings: Settings, bootstrap: str, *, purpose: str = "ingest"
) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=f"{settings.kafka.client_id}-{purpose}",
        acks="all",
        enable_idempotence=True,
        linger_ms=0,  # a request's records are all added before the sender runs
        # A 200-list request is ~800 KB: let it go out in a few produce requests, not in
        # hundreds of 16 KB batches (the idempotent producer has one request in flight).
        max_batch_size=1024 * 1024,
        request_timeout_ms=settings.kafka.request_timeout_ms,
        compression_type=settings.kafka.compression or None,
    )


def _topic_configs(replication_factor: int) -> dict[str, str]:
    """With replicas, acks=all must mean at least two copies (one may be down)."""
    return {"min.insync.replicas": str(max(1, min(2, replication_factor - 1)))}


class KafkaTopicError(RuntimeError):
    pass


async def ensure_topics(settings: Settings, bootstrap: str, names: list[str]) -> list[str]:
    """Create the missing topics with the configured partitions; returns those created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id=f"{settings.kafka.client_id}-admin"
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name,
                        num_partitions=settings.topics.partitions,
                        replication_factor=settings.topics.replication_factor,
                        topic_configs=_topic_configs(settings.topics.replication_factor),
                    )
                    for name in missing
                ]
            )
            for topic, code, *rest in response.topic_errors:
                # 36 = TOPIC_ALREADY_EXISTS: another process created it first, which is fine.
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise KafkaTopicError(f"cannot create topic {topic}: error {code} {rest}")
            await _until_led(admin, missing)
        return missing
    finally:
        await admin.close()


async def _until_led(admin: AIOKafkaAdminClient, topics: list[str], within_s: float = 10) -> None:
    """Wait until every partition of new topics has a leader, so the first writes to them
    do not spin on NotLeaderForPartition (bounded: after that, producer retries take over)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        described = await admin.describe_topics(topics)
        if all(
            t.get("error_code", 0) == 0
            and t.get("partitions")
            and all(p.get("leader", -1) >= 0 for p in t["partitions"])
            for t in described
        ):
            return
        await asyncio.sleep(0.1)
