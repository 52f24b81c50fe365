"""Sink worker: accepted settlement lists → the `cases` table, latest revision wins.

The upsert ignores a revision older than the stored one, so replays and out-of-order
redeliveries never move a case backwards.
"""

from __future__ import annotations

import uuid

import asyncpg
from aiokafka import ConsumerRecord

from adapters.runtime.logs import get_logger
from contracts.messages import ACCEPTED_DECODER
from workers._deadletter import apply_each_or_dead_letter
from workers._runner import decode_each

log = get_logger("dipgw.sink")

_UPSERT = """
INSERT INTO cases (fixmedins_code, setl_id, revision, receipt_id, mdtrtarea_admvs,
                   insuplc_admdvs, record, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
ON CONFLICT (fixmedins_code, setl_id) DO UPDATE
SET revision = EXCLUDED.revision, receipt_id = EXCLUDED.receipt_id,
    mdtrtarea_admvs = EXCLUDED.mdtrtarea_admvs, insuplc_admdvs = EXCLUDED.insuplc_admdvs,
    record = EXCLUDED.record, received_at = EXCLUDED.received_at, stored_at = now()
WHERE cases.revision <= EXCLUDED.revision
"""


def _rows(
    records: list[ConsumerRecord[bytes, bytes]],
) -> tuple[list[tuple[object, ...]], list[tuple[uuid.UUID, str, int, int]]]:
    rows, receipts = [], []
    for record, msg in decode_each(records, ACCEPTED_DECODER, "sink"):
        receipt = uuid.UUID(msg.receipt_id)
        rows.append(
            (
                msg.fixmedins_code,
                msg.setl_id,
                msg.revision,
                receipt,
                msg.mdtrtarea_admvs,
                msg.insuplc_admdvs,
                bytes(msg.document).decode("utf-8"),
                msg.received_at,
            )
        )
        receipts.append((receipt, record.topic, record.partition, record.offset))
    return rows, receipts


class Sink:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def handle(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        await apply_each_or_dead_letter(self._pool, "sink", records, self._apply)

    async def _apply(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        rows, receipts = _rows(records)
        if not rows:
            return
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(_UPSERT, rows)
            # Where the record is in Kafka is known here too: a receipt is complete once
            # stored, whether or not the gateway's batched 'accepted' mark came first. Its
            # moments stay in causal order (received ≤ accepted ≤ stored) whichever clock
            # stamped them and whichever write came first (see gateway.ingest._ACCEPT).
            await conn.execute(
                """UPDATE receipts r
                   SET status = 'stored',
                       stored_at = COALESCE(
                           r.stored_at, GREATEST(now(), r.received_at, r.accepted_at)),
                       accepted_at = COALESCE(r.accepted_at, GREATEST(now(), r.received_at)),
                       kafka_topic = COALESCE(r.kafka_topic, u.t),
                       kafka_partition = COALESCE(r.kafka_partition, u.p),
                       kafka_offset = COALESCE(r.kafka_offset, u.o)
                   FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[]) AS u(id, t, p, o)
                   WHERE r.receipt_id = u.id AND r.status <> 'stored'""",
                [r[0] for r in receipts],
                [r[1] for r in receipts],
                [r[2] for r in receipts],
                [r[3] for r in receipts],
            )
