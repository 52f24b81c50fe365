"""Taking one settlement list from a hospital to a durable, acknowledged Kafka record.

The order is what makes the 202 honest: reserve the receipt (PostgreSQL) → produce with
acks=all (Kafka) → mark the receipt accepted → answer. A failure before the end answers an
error the hospital can retry with the same request; the reservation is then either removed
or, if the process died, taken over by the retry, which re-sends the same receipt and
revision (the sink's upsert makes a second copy harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg
import msgspec

from gateway.messages import ENCODER, AcceptedSettlement, case_key

# A reservation left 'pending' longer than this belongs to a process that died mid-request.
STALE_PENDING = timedelta(seconds=60)


class Problem(msgspec.Struct, kw_only=True):
    """The one error shape (architecture: rule, field, dimension, severity, message)."""

    rule: str
    field: str
    dimension: str
    severity: str
    message: str
    message_en: str


class UploadRejected(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.rule} {p.field}: {p.message_en}" for p in problems))


@dataclass(frozen=True, slots=True)
class Upload:
    fixmedins_code: str
    setl_id: str
    mdtrtarea_admvs: str
    insuplc_admdvs: str | None
    content_sha256: bytes
    document: bytes

    @property
    def case_key(self) -> str:
        return case_key(self.fixmedins_code, self.setl_id)


_REQUIRED = (
    ("fixmedins_code", "定点医药机构编号"),
    ("mdtrtarea_admvs", "就医地医保区划"),
    ("input.setlinfo.setl_id", "结算ID"),
)
_CANONICAL = msgspec.json.Encoder(order="sorted")


def _problem(rule: str, field: str, message: str, message_en: str) -> Problem:
    return Problem(
        rule=rule,
        field=field,
        dimension="完整性" if rule.startswith("REQ") else "规范性",
        severity="reject",
        message=message,
        message_en=message_en,
    )


def _lookup(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def parse_upload(body: bytes) -> Upload:
    """Minimal door checks: well-formed JSON object with the keys that route the record."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise UploadRejected(
            [_problem("FMT001", "$", f"JSON 格式错误：{exc}", f"malformed JSON: {exc}")]
        ) from None
    if not isinstance(doc, dict):
        raise UploadRejected(
            [_problem("FMT002", "$", "报文必须是 JSON 对象", "the document must be a JSON object")]
        )
    problems = []
    for path, name in _REQUIRED:
        value = _lookup(doc, path)
        if not isinstance(value, str) or not value.strip():
            problems.append(
                _problem(
                    "REQ001", path, f"【{name}】未填写", f"{path} is required (non-empty text)"
                )
            )
    if problems:
        raise UploadRejected(problems)
    insuplc = doc.get("insuplc_admdvs")
    identity = {
        "fixmedins_code": doc["fixmedins_code"],
        "mdtrtarea_admvs": doc["mdtrtarea_admvs"],
        "insuplc_admdvs": insuplc,
        "input": doc.get("input"),
    }
    return Upload(
        fixmedins_code=doc["fixmedins_code"].strip(),
        setl_id=doc["input"]["setlinfo"]["setl_id"].strip(),
        mdtrtarea_admvs=doc["mdtrtarea_admvs"].strip(),
        insuplc_admdvs=insuplc if isinstance(insuplc, str) and insuplc else None,
        # Envelope meta (msgid, inf_time, signature) changes on every resend of the same list,
        # so identity is the content that matters, in a key-order-independent encoding.
        content_sha256=hashlib.sha256(_CANONICAL.encode(identity)).digest(),
        document=body,
    )


class Producer(Protocol):
    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> Any: ...


class Unavailable(Exception):
    """Kafka or PostgreSQL could not take the record now; the client should retry."""


@dataclass(frozen=True, slots=True)
class Receipt:
    receipt_id: uuid.UUID
    revision: int
    status: str
    duplicate: bool


class Ingestor:
    """Reserve → produce → accept, for one record at a time."""

    def __init__(self, pool: asyncpg.Pool, producer: Producer, topic: str) -> None:
        self._pool = pool
        self._producer = producer
        self._topic = topic

    async def submit(self, upload: Upload, received_at: datetime) -> Receipt:
        for _ in range(50):
            row, duplicate = await self._reserve(upload, received_at)
            if row["status"] != "pending" or not duplicate:
                break
            # The same content is being written by a concurrent request: wait for its outcome.
            await asyncio.sleep(0.05)
        else:
            raise Unavailable("an identical upload of this case is still in progress")
        if row["status"] != "pending":
            return Receipt(row["receipt_id"], row["revision"], row["status"], duplicate=True)
        message = AcceptedSettlement(
            receipt_id=str(row["receipt_id"]),
            case_key=upload.case_key,
            fixmedins_code=upload.fixmedins_code,
            setl_id=upload.setl_id,
            revision=row["revision"],
            received_at=row["received_at"],
            mdtrtarea_admvs=upload.mdtrtarea_admvs,
            insuplc_admdvs=upload.insuplc_admdvs,
            document=msgspec.Raw(upload.document),
        )
        try:
            meta = await self._producer.send_and_wait(
                self._topic, value=ENCODER.encode(message), key=upload.case_key.encode()
            )
        except Exception as exc:
            await self._release(row["receipt_id"])
            raise Unavailable(f"Kafka write failed: {type(exc).__name__}") from exc
        await self._pool.execute(
            # The sink may already have stored it; never move a receipt backwards.
            """UPDATE receipts
               SET status = CASE WHEN status = 'pending' THEN 'accepted' ELSE status END,
                   accepted_at = now(), kafka_topic = $2, kafka_partition = $3, kafka_offset = $4
               WHERE receipt_id = $1""",
            row["receipt_id"],
            meta.topic,
            meta.partition,
            meta.offset,
        )
        return Receipt(row["receipt_id"], row["revision"], "accepted", duplicate=False)

    async def _reserve(self, upload: Upload, received_at: datetime) -> tuple[Any, bool]:
        """The receipt row for this content: existing (duplicate) or newly reserved."""
        async with self._pool.acquire() as conn, conn.transaction():
            # Serialise writers of one case so revisions are dense and duplicates collapse.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", upload.case_key)
            existing = await conn.fetchrow(
                """SELECT receipt_id, revision, status, received_at,
                          now() - received_at > $4 AS stale
                   FROM receipts
                   WHERE fixmedins_code = $1 AND setl_id = $2 AND content_sha256 = $3""",
                upload.fixmedins_code,
                upload.setl_id,
                upload.content_sha256,
                STALE_PENDING,
            )
            if existing is not None:
                if existing["status"] == "pending" and existing["stale"]:
                    return existing, False  # take over a dead request's reservation
                return existing, True
            row = await conn.fetchrow(
                """INSERT INTO receipts (receipt_id, fixmedins_code, setl_id, revision,
                                         content_sha256, status, mdtrtarea_admvs,
                                         insuplc_admdvs, received_at)
                   SELECT $1, $2, $3, COALESCE(MAX(revision), 0) + 1, $4, 'pending', $5, $6, $7
                   FROM receipts WHERE fixmedins_code = $2 AND setl_id = $3
                   RETURNING receipt_id, revision, status, received_at""",
                uuid.uuid4(),
                upload.fixmedins_code,
                upload.setl_id,
                upload.content_sha256,
                upload.mdtrtarea_admvs,
                upload.insuplc_admdvs,
                received_at,
            )
            return row, False

    async def _release(self, receipt_id: uuid.UUID) -> None:
        with contextlib.suppress(Exception):
            await self._pool.execute(
                "DELETE FROM receipts WHERE receipt_id = $1 AND status = 'pending'", receipt_id
            )


async def receipt_status(pool: asyncpg.Pool, receipt_id: uuid.UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        """SELECT receipt_id, fixmedins_code, setl_id, revision, status, mdtrtarea_admvs,
                  insuplc_admdvs, received_at, accepted_at, stored_at,
                  kafka_topic, kafka_partition, kafka_offset
           FROM receipts WHERE receipt_id = $1""",
        receipt_id,
    )
    return None if row is None else dict(row)
