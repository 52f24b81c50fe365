"""A receipt's moments are in causal order (received ≤ accepted ≤ stored) and in +08:00.

The gateway writes its 'accepted' marks a few milliseconds after the acknowledgement, in
batches, so the sink may store the record first: that mark once overwrote `accepted_at` with a
moment after `stored_at`. Both orders of the two writes are forced here (the marks are held
until `Ingestor.close`), against the real database, and so is a gateway clock ahead of the
database's.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from aiokafka import ConsumerRecord

from contracts.messages import ACCEPTED_DECODER
from gateway.ingest import Ingestor, Upload, receipt_status
from gateway.runtime import Stack
from tests.clock import now as clock_now
from workers.sink import Sink

pytestmark = pytest.mark.integration


class _Acked:
    def __init__(self, offset: int) -> None:
        self.partition, self.offset = 0, offset


class _Producer:
    """Acknowledges at once and keeps what was sent (the gateway's side of Kafka)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        self.sent.append((topic, value, key))
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(_Acked(len(self.sent)))
        return done


def _record(topic: str, value: bytes, key: bytes, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=(),
    )


@pytest.mark.parametrize(
    ("sink_first", "gateway_ahead"),
    [(True, timedelta(0)), (False, timedelta(0)), (True, timedelta(days=3650))],
    ids=["stored-before-the-mark", "mark-before-stored", "gateway-clock-ahead"],
)
async def test_receipt_moments_are_in_causal_order(
    stack: Stack, sink_first: bool, gateway_ahead: timedelta
) -> None:
    producer = _Producer()
    topic = stack.settings.topics.accepted
    ingestor = Ingestor(stack.pool, producer, topic, accept_delay_s=3600)  # marks held
    setl_id = f"T{uuid.uuid4().hex[:12]}"
    upload = Upload(
        fixmedins_code="H44010000001",
        setl_id=setl_id,
        mdtrtarea_admvs="440104",
        insuplc_admdvs="440104",
        content_sha256=hashlib.sha256(setl_id.encode()).digest(),
        document=b'{"input": {}}',
    )
    receipt = await ingestor.submit(upload, clock_now() + gateway_ahead)
    assert receipt.status == "accepted" and not receipt.duplicate
    ((sent_topic, value, key),) = producer.sent
    if not sink_first:
        await ingestor.close()
    await Sink(stack.pool)._apply([_record(sent_topic, value, key, 1)])
    if sink_first:
        await ingestor.close()

    row = await receipt_status(stack.pool, receipt.receipt_id)
    assert row is not None and row["status"] == "stored"
    moments = [row["received_at"], row["accepted_at"], row["stored_at"]]
    assert moments == sorted(moments), moments
    assert all(m.utcoffset() == timedelta(hours=8) for m in moments)
    # the accepted message carries the receipt's moment as the database stored it, in +08:00
    sent = ACCEPTED_DECODER.decode(value)
    assert sent.received_at == row["received_at"]
    assert msgspec.json.decode(value)["received_at"].endswith("+08:00")
