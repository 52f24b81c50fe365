"""Taking settlement lists from a hospital to durable, acknowledged Kafka records.

The order is what makes a 202 honest: reserve the receipts (PostgreSQL) → produce with
acks=all (Kafka) → mark the receipts accepted → answer. A failure before the end answers 503
and the hospital retries (signed anew: a nonce is single-use). The reservation is never
removed, because a send that failed or timed out may still have reached the log: its lease
ends at once (or, if the process died, when it runs out) and the retry takes it over,
re-sending the same receipt id and revision, which every consumer treats as one record.

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

from adapters.runtime import stages
from adapters.runtime.errors import DipgwError, describe_error
from adapters.runtime.logs import Throttle, get_logger
from contracts import ValidationError, in_display_zone
from contracts.messages import ENCODER, AcceptedSettlement, case_key
from gateway.errors import NonceReused

log = get_logger("dipgw.ingest")

# A reservation's lease: left 'pending' longer, it belongs to a process that died mid-request.
STALE_PENDING = timedelta(seconds=60)

# Why uploads are answered 503, logged once per cause every few seconds, not per request.
_UNAVAILABLE_LOG = Throttle(10.0)


def _unavailable(reason: str) -> Unavailable:
    held = _UNAVAILABLE_LOG.admit(reason)
    if held is not None:
        log.warning("ingest.unavailable", reason=reason, also_since_last=held)
    return Unavailable(reason)


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


class Unavailable(DipgwError):
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


# One round trip: see migrations/0005_reserve_function.sql for the rules it applies.
_RESERVE = "SELECT * FROM dipgw_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
# The mark comes a few milliseconds after the acknowledgement (batched), so the sink may have
# stored the record first and set `accepted_at` itself (no later than its `stored_at`): that
# one is kept, never overwritten by this later moment. `received_at` is the gateway's clock,
# the others the database's; GREATEST keeps a receipt in causal order (received ≤ accepted ≤
# stored) however far the two clocks disagree.
_ACCEPT = """
UPDATE receipts r
SET status = CASE WHEN r.status = 'pending' THEN 'accepted' ELSE r.status END,
    accepted_at = COALESCE(r.accepted_at, GREATEST(clock_timestamp(), r.received_at)),
    kafka_topic = $4, kafka_partition = u.p, kafka_offset = u.o
FROM unnest($1::uuid[], $2::int[], $3::bigint[]) AS u(id, p, o)
WHERE r.receipt_id = u.id
"""


class Ingestor:
    """Reserve → produce → accept, for a batch of uploads."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: Producer,
        topic: str,
        *,
        ack_timeout_s: float = 10.0,
        accept_delay_s: float = 0.005,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._topic = topic
        self._ack_timeout_s = ack_timeout_s
        self._accepts = AcceptWriter(pool, topic, delay_s=accept_delay_s)
        self._running: set[asyncio.Future[list[Receipt | Unavailable]]] = set()

    async def close(self) -> None:
        """Let submissions whose requests went away finish, then write the last 'accepted'
        marks (call before the pool closes)."""
        if self._running:
            await asyncio.wait(list(self._running), timeout=self._ack_timeout_s + 5)
        await self._accepts.close()

    async def submit(self, upload: Upload, received_at: datetime) -> Receipt:
        (result,) = await self.submit_many([upload], received_at)
        if isinstance(result, Unavailable):
            raise result
        return result

    async def submit_many(
        self,
        uploads: list[Upload],
        received_at: datetime,
        nonce: tuple[str, str] | None = None,
    ) -> list[Receipt | Unavailable]:
        """One result per upload, in order: its receipt, or why it must be retried.

        `nonce` (hospital, nonce) is the request's signature nonce, recorded in the same
        statement as the reservation; raises `NonceReused` for a replay.

        Once started, a submission runs to its end even if its request is cancelled (the
        HTTP time limit, a client gone): its reservations then end accepted or with their
        lease ended, never held by a request that is no longer there. Its own waits are
        bounded by the Kafka timeout.
        """
        work = asyncio.ensure_future(self._submit_many(uploads, received_at, nonce))
        work.add_done_callback(consume_outcome)
        self._running.add(work)
        work.add_done_callback(self._running.discard)
        return await asyncio.shield(work)

    async def _submit_many(
        self,
        uploads: list[Upload],
        received_at: datetime,
        nonce: tuple[str, str] | None,
    ) -> list[Receipt | Unavailable]:
        slots = [_Slot(upload) for upload in uploads]
        todo = slots
        for _ in range(100):
            await self._reserve(todo, received_at, nonce)
            nonce = None
            await self._produce([s for s in todo if s.produce])
            todo = [s for s in todo if s.wait]
            if not todo:
                break
            # The same content is being written by a concurrent request: wait for its outcome.
            await asyncio.sleep(0.05)
            for slot in todo:
                slot.wait = False
        for slot in todo:
            slot.result = _unavailable("an identical upload of this case is still in progress")
        return [slot.result for slot in slots]  # type: ignore[misc]

    async def _reserve(
        self, slots: list[_Slot], received_at: datetime, nonce: tuple[str, str] | None
    ) -> None:
        """Find each upload's receipt row: existing (duplicate) or newly reserved."""
        uploads = [s.upload for s in slots]
        try:
            rows = await self._fetch_reserve(uploads, received_at, nonce)
        except asyncpg.exceptions.RaiseError as exc:
            if "nonce reused" in str(exc):
                raise NonceReused from None
            raise
        self._apply(slots, rows)
        stages.stage_done("reservation")

    async def _fetch_reserve(
        self, uploads: list[Upload], received_at: datetime, nonce: tuple[str, str] | None
    ) -> list[Any]:
        rows: list[Any] = await self._pool.fetch(
            _RESERVE,
            [u.fixmedins_code for u in uploads],
            [u.setl_id for u in uploads],
            [u.content_sha256 for u in uploads],
            [u.mdtrtarea_admvs for u in uploads],
            [u.insuplc_admdvs for u in uploads],
            [uuid.uuid4() for _ in uploads],
            received_at,
            STALE_PENDING,
            nonce[0] if nonce else None,
            nonce[1] if nonce else None,
        )
        return rows

    @staticmethod
    def _apply(slots: list[_Slot], rows: list[Any]) -> None:
        for row in rows:
            slot = slots[row["i"] - 1]
            slot.row = row
            outcome = row["outcome"]
            if outcome == "duplicate":
                slot.result = Receipt(row["receipt_id"], row["revision"], row["status"], True)
            elif outcome == "wait":  # a live request (or an earlier record here) holds it
                slot.wait = True
            else:  # "new", or "takeover" of a dead request's reservation
                slot.produce = True

    async def _produce(self, slots: list[_Slot]) -> None:
        if not slots:
            return
        futures = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ack_timeout_s
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
                warnings=[msgspec.to_builtins(w) for w in slot.upload.warnings],  # no caused_by ""
                document=msgspec.Raw(slot.upload.document),
            )
            try:
                # Queueing waits only for metadata or buffer space: bounded like the ack.
                futures.append(
                    await asyncio.wait_for(
                        self._producer.send(
                            self._topic,
                            value=ENCODER.encode(message),
                            key=slot.upload.case_key.encode(),
                        ),
                        max(0.001, deadline - loop.time()),
                    )
                )
            except Exception as exc:
                failed: asyncio.Future[Any] = loop.create_future()
                failed.set_exception(exc)
                futures.append(failed)
        stages.stage_done("produce")
        await asyncio.wait(futures, timeout=max(0.001, deadline - loop.time()))
        stages.stage_done("ack")
        done, unsure = [], []
        for slot, future in zip(slots, futures, strict=True):
            if not future.done():
                # Outcome unknown: the producer may still deliver it.
                future.add_done_callback(consume_outcome)
                slot.result = _unavailable("Kafka did not acknowledge in time")
                unsure.append(slot.row["receipt_id"])
            elif future.exception() is not None:
                # Even a failure may follow an append (a stalled broker), so never assume not.
                error = future.exception()
                slot.result = _unavailable(f"Kafka write failed: {type(error).__name__}")
                unsure.append(slot.row["receipt_id"])
            else:
                slot.meta = future.result()
                done.append(slot)
        if unsure:
            await self._end_leases(unsure)
        if done:
            self._accepts.add(
                [(s.row["receipt_id"], s.meta.partition, s.meta.offset) for s in done]
            )
            for slot in done:
                slot.result = Receipt(
                    slot.row["receipt_id"], slot.row["revision"], "accepted", False
                )

    async def _end_leases(self, receipt_ids: list[uuid.UUID]) -> None:
        """Let the retry take these reservations over now rather than after the lease.

        Best effort: if PostgreSQL is away too, the lease runs out by itself.
        """
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self._pool.execute(
                    """UPDATE receipts SET lease_until = clock_timestamp()
                       WHERE receipt_id = ANY($1::uuid[]) AND status = 'pending'""",
                    receipt_ids,
                ),
                5,
            )


class AcceptWriter:
    """Marks receipts 'accepted' (with their Kafka position) for many requests at once.

    The mark is information, not the promise: a 202 needs the reservation committed and the
    Kafka write acknowledged, both already true when a record gets here. Writing the marks
    of all requests of the last few milliseconds in one statement takes a round trip and a
    commit off every request. Were the process to die first, the receipt would read
    'pending' until the sink stores the record and marks it 'stored'.
    """

    def __init__(self, pool: asyncpg.Pool, topic: str, *, delay_s: float = 0.005) -> None:
        self._pool = pool
        self._topic = topic
        self._delay_s = delay_s
        self._pending: list[tuple[uuid.UUID, int, int]] = []
        self._task: asyncio.Task[None] | None = None
        self._waiting = False

    def add(self, marks: list[tuple[uuid.UUID, int, int]]) -> None:
        self._pending.extend(marks)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._later())

    async def _later(self) -> None:
        # Until nothing is left: marks added while a flush runs find this task not done, so
        # `add` schedules nothing, and would otherwise wait for the next upload or shutdown.
        while self._pending:
            self._waiting = True
            try:
                await asyncio.sleep(self._delay_s)
            finally:
                self._waiting = False
            await self.flush()

    async def close(self) -> None:
        """Write the marks gathered so far now, not after the delay (a write under way is
        let finish)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            if self._waiting:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

    async def flush(self) -> None:
        marks, self._pending = self._pending, []
        if not marks:
            return
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                # The mark is information, not the promise (see the class): its commit need
                # not wait for the WAL to reach the disk. Only the reservation's does, so a
                # push costs one synchronous commit, not two.
                await conn.execute("SET LOCAL synchronous_commit = off")
                # The sink may already have stored some; a receipt never moves backwards.
                await conn.execute(
                    _ACCEPT,
                    [m[0] for m in marks],
                    [m[1] for m in marks],
                    [m[2] for m in marks],
                    self._topic,
                )
        except Exception as exc:
            log.warning("ingest.accept_marks_failed", count=len(marks), error=describe_error(exc))


def consume_outcome(future: asyncio.Future[Any]) -> None:
    """Retrieve a late outcome so asyncio does not report it as never retrieved."""
    if not future.cancelled():
        future.exception()


async def receipt_status(pool: asyncpg.Pool, receipt_id: uuid.UUID) -> dict[str, Any] | None:
    """A receipt's row, its moments in China Standard Time (PostgreSQL answers in UTC)."""
    row = await pool.fetchrow(
        """SELECT receipt_id, fixmedins_code, setl_id, revision, status, mdtrtarea_admvs,
                  insuplc_admdvs, received_at, accepted_at, stored_at,
                  kafka_topic, kafka_partition, kafka_offset
           FROM receipts WHERE receipt_id = $1""",
        receipt_id,
    )
    return None if row is None else in_display_zone_row(row)


def in_display_zone_row(row: Any) -> dict[str, Any]:
    """A database row as a dict, every moment in it in China Standard Time."""
    return {k: in_display_zone(v) if isinstance(v, datetime) else v for k, v in dict(row).items()}
