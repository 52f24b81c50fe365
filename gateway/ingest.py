"""Taking settlement lists from a hospital to durable, acknowledged Kafka records.

The order is what makes a 202 honest: reserve the receipts (PostgreSQL) → produce with
acks=all (Kafka) → mark the receipts accepted → answer. A failure before the end answers an
error the hospital can retry with the same request; the reservation is then either removed
or, if the process died, taken over by the retry, which re-sends the same receipt and
revision (the sink's upsert makes a second copy harmless).

Everything works on batches — one request of 200 lists costs three database round trips and
one Kafka batch, not six hundred round trips — and a single list is a batch of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg
import msgspec

from contracts import ValidationError
from gateway.messages import ENCODER, AcceptedSettlement, case_key

# A reservation left 'pending' longer than this belongs to a process that died mid-request.
STALE_PENDING = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Upload:
    fixmedins_code: str
    setl_id: str
    mdtrtarea_admvs: str
    insuplc_admdvs: str | None
    content_sha256: bytes
    document: bytes
    warnings: tuple[ValidationError, ...] = ()

    @property
    def case_key(self) -> str:
        return case_key(self.fixmedins_code, self.setl_id)


class Producer(Protocol):
    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]: ...


class Unavailable(Exception):
    """Kafka or PostgreSQL could not take the record now; the client should retry."""


@dataclass(frozen=True, slots=True)
class Receipt:
    receipt_id: uuid.UUID
    revision: int
    status: str
    duplicate: bool


@dataclass
class _Slot:
    """One upload's way through a batch."""

    upload: Upload
    row: Any = None
    produce: bool = False
    wait: bool = False
    result: Receipt | Unavailable | None = None
    meta: Any = field(default=None, repr=False)


_RESERVE_EXISTING = """
SELECT u.i, r.receipt_id, r.revision, r.status, r.received_at,
       now() - r.received_at > $4 AS stale
FROM unnest($1::text[], $2::text[], $3::bytea[]) WITH ORDINALITY AS u(code, setl, h, i)
JOIN receipts r ON r.fixmedins_code = u.code AND r.setl_id = u.setl AND r.content_sha256 = u.h
"""
_MAX_REVISION = """
SELECT u.code, u.setl, COALESCE(MAX(r.revision), 0) AS revision
FROM unnest($1::text[], $2::text[]) AS u(code, setl)
LEFT JOIN receipts r ON r.fixmedins_code = u.code AND r.setl_id = u.setl
GROUP BY u.code, u.setl
"""
_INSERT = """
INSERT INTO receipts (receipt_id, fixmedins_code, setl_id, revision, content_sha256, status,
                      mdtrtarea_admvs, insuplc_admdvs, received_at)
SELECT id, code, setl, rev, h, 'pending', area, insured, $8
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::bytea[], $6::text[], $7::text[])
     AS u(id, code, setl, rev, h, area, insured)
RETURNING receipt_id, revision, status, received_at
"""
_ACCEPT = """
UPDATE receipts r
SET status = CASE WHEN r.status = 'pending' THEN 'accepted' ELSE r.status END,
    accepted_at = now(), kafka_topic = $4, kafka_partition = u.p, kafka_offset = u.o
FROM unnest($1::uuid[], $2::int[], $3::bigint[]) AS u(id, p, o)
WHERE r.receipt_id = u.id
"""


class Ingestor:
    """Reserve → produce → accept, for a batch of uploads."""

    def __init__(
        self, pool: asyncpg.Pool, producer: Producer, topic: str, *, ack_timeout_s: float = 10.0
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._topic = topic
        self._ack_timeout_s = ack_timeout_s

    async def submit(self, upload: Upload, received_at: datetime) -> Receipt:
        (result,) = await self.submit_many([upload], received_at)
        if isinstance(result, Unavailable):
            raise result
        return result

    async def submit_many(
        self, uploads: list[Upload], received_at: datetime
    ) -> list[Receipt | Unavailable]:
        """One result per upload, in order: its receipt, or why it must be retried."""
        slots = [_Slot(upload) for upload in uploads]
        todo = slots
        for _ in range(100):
            await self._reserve(todo, received_at)
            await self._produce([s for s in todo if s.produce])
            todo = [s for s in todo if s.wait]
            if not todo:
                break
            # The same content is being written by a concurrent request: wait for its outcome.
            await asyncio.sleep(0.05)
            for slot in todo:
                slot.wait = False
        for slot in todo:
            slot.result = Unavailable("an identical upload of this case is still in progress")
        return [slot.result for slot in slots]  # type: ignore[misc]

    async def _reserve(self, slots: list[_Slot], received_at: datetime) -> None:
        """Find each upload's receipt row: existing (duplicate) or newly reserved."""
        uploads = [s.upload for s in slots]
        async with self._pool.acquire() as conn, conn.transaction():
            # Serialise writers of one case so revisions are dense and duplicates collapse;
            # sorted, so two batches never wait on each other in a cycle.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest($1::text[]) k ORDER BY k",
                sorted({u.case_key for u in uploads}),
            )
            codes = [u.fixmedins_code for u in uploads]
            setls = [u.setl_id for u in uploads]
            existing = {
                row["i"] - 1: row
                for row in await conn.fetch(
                    _RESERVE_EXISTING,
                    codes,
                    setls,
                    [u.content_sha256 for u in uploads],
                    STALE_PENDING,
                )
            }
            revisions = {
                (row["code"], row["setl"]): row["revision"]
                for row in await conn.fetch(_MAX_REVISION, codes, setls)
            }
            new: list[_Slot] = []
            first_of: dict[tuple[str, bytes], _Slot] = {}
            for index, slot in enumerate(slots):
                row = existing.get(index)
                if row is not None:
                    slot.row = row
                    if row["status"] == "pending":
                        # A dead request's reservation is taken over; a live one is waited for.
                        slot.produce, slot.wait = (True, False) if row["stale"] else (False, True)
                    else:
                        slot.result = Receipt(
                            row["receipt_id"], row["revision"], row["status"], True
                        )
                    continue
                twin = first_of.get((slot.upload.case_key, slot.upload.content_sha256))
                if twin is not None:  # the same content twice in one batch
                    slot.wait = True
                    continue
                first_of[(slot.upload.case_key, slot.upload.content_sha256)] = slot
                key = (slot.upload.fixmedins_code, slot.upload.setl_id)
                revisions[key] += 1
                slot.row = {"revision": revisions[key], "receipt_id": uuid.uuid4()}
                new.append(slot)
            if new:
                rows = await conn.fetch(
                    _INSERT,
                    [s.row["receipt_id"] for s in new],
                    [s.upload.fixmedins_code for s in new],
                    [s.upload.setl_id for s in new],
                    [s.row["revision"] for s in new],
                    [s.upload.content_sha256 for s in new],
                    [s.upload.mdtrtarea_admvs for s in new],
                    [s.upload.insuplc_admdvs for s in new],
                    received_at,
                )
                inserted = {row["receipt_id"]: row for row in rows}
                for slot in new:
                    slot.row = inserted[slot.row["receipt_id"]]
                    slot.produce = True

    async def _produce(self, slots: list[_Slot]) -> None:
        if not slots:
            return
        futures = []
        for slot in slots:
            message = AcceptedSettlement(
                receipt_id=str(slot.row["receipt_id"]),
                case_key=slot.upload.case_key,
                fixmedins_code=slot.upload.fixmedins_code,
                setl_id=slot.upload.setl_id,
                revision=slot.row["revision"],
                received_at=slot.row["received_at"],
                mdtrtarea_admvs=slot.upload.mdtrtarea_admvs,
                insuplc_admdvs=slot.upload.insuplc_admdvs,
                warnings=[msgspec.structs.asdict(w) for w in slot.upload.warnings],
                document=msgspec.Raw(slot.upload.document),
            )
            try:
                futures.append(
                    await self._producer.send(
                        self._topic,
                        value=ENCODER.encode(message),
                        key=slot.upload.case_key.encode(),
                    )
                )
            except Exception as exc:
                failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                failed.set_exception(exc)
                futures.append(failed)
        await asyncio.wait(futures, timeout=self._ack_timeout_s)
        done, failed_ids = [], []
        for slot, future in zip(slots, futures, strict=True):
            if not future.done():
                # Outcome unknown: the producer may still deliver it. The reservation stays
                # pending; a retry waits for the sink to store it, or takes it over when stale.
                future.add_done_callback(_consume_outcome)
                slot.result = Unavailable("Kafka did not acknowledge in time")
            elif future.exception() is not None:
                error = future.exception()
                slot.result = Unavailable(f"Kafka write failed: {type(error).__name__}")
                failed_ids.append(slot.row["receipt_id"])
            else:
                slot.meta = future.result()
                done.append(slot)
        if failed_ids:
            await self._release(failed_ids)
        if done:
            # The sink may already have stored some; a receipt never moves backwards.
            await self._pool.execute(
                _ACCEPT,
                [s.row["receipt_id"] for s in done],
                [s.meta.partition for s in done],
                [s.meta.offset for s in done],
                self._topic,
            )
            for slot in done:
                slot.result = Receipt(
                    slot.row["receipt_id"], slot.row["revision"], "accepted", False
                )

    async def _release(self, receipt_ids: list[uuid.UUID]) -> None:
        with contextlib.suppress(Exception):
            await self._pool.execute(
                "DELETE FROM receipts WHERE receipt_id = ANY($1::uuid[]) AND status = 'pending'",
                receipt_ids,
            )


def _consume_outcome(future: asyncio.Future[Any]) -> None:
    """Retrieve a late outcome so asyncio does not report it as never retrieved."""
    if not future.cancelled():
        future.exception()


async def receipt_status(pool: asyncpg.Pool, receipt_id: uuid.UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        """SELECT receipt_id, fixmedins_code, setl_id, revision, status, mdtrtarea_admvs,
                  insuplc_admdvs, received_at, accepted_at, stored_at,
                  kafka_topic, kafka_partition, kafka_offset
           FROM receipts WHERE receipt_id = $1""",
        receipt_id,
    )
    return None if row is None else dict(row)
