"""The `/ops` message browser: rejected lists and dead letters, opened with their findings and
their document masked, and the replay of a dead letter after a fix (audited).

Ops only: a city bureau reads rollups, never a message. Nothing personal is shown unmasked:
a rejected list is kept by the quality worker (`rejected_messages`) as the rejected topic
carries it (`contracts.redact_document` at the gateway), and a dead letter's message is read
back from Kafka at its position and shown through `redact_document` (its settlement document)
and `mask_personal` (everything else) — the same two again on a rejected list, as a second
line. Every time is `contracts.shown` (+08:00, labelled by its offset).

Replay writes the dead letter's original bytes again to its topic, with its key and headers
and a `dipgw-replay` header naming the worker and the original position
(`workers._deadletter`, which only that worker lets through and which counts the copy as the
original). A dead letter is replayed once: a second request answers what the first did.

Reading a worker's topic and writing it again take Kafka rights the gateway's user lacks
under the least-privilege ACLs (`dipgw kafka acls plan`): there the message is shown as not
readable and the replay answers `refused by Kafka: …`, both naming the right to grant.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from aiohttp import web
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import ClusterAuthorizationFailedError, TopicAuthorizationFailedError

from contracts import mask_personal, redact_document, shown, shown_or_none
from gateway import params, refusals
from gateway.authn import principal_of
from gateway.errors import http_error
from gateway.ops.scope import Refused

# Read by workers/_deadletter.py (`REPLAY_HEADER`; the gateway may not import workers).
REPLAY_HEADER = "dipgw-replay"
PAGE_MAX = 200
WORKER = re.compile(r"[a-z_]{1,32}")
TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
RULE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_READ_TIMEOUT_S = 10.0
_KAFKA_REFUSED = (TopicAuthorizationFailedError, ClusterAuthorizationFailedError)


def _refused_by_kafka(right: str, topic: str) -> str:
    return (
        f"refused by Kafka: the gateway's Kafka user may not {right} {topic}; grant it"
        f" {right.upper()} on that topic to browse and replay its dead letters"
    )


def ops_only(request: web.Request) -> None:
    """`Refused` unless the caller is ops: messages are for the ones who run the pipeline."""
    if principal_of(request).role != "ops":
        raise Refused(
            http_error(
                refusals.FORBIDDEN_ROLE,
                allowed="运维",
                action="查看或重放消息",
                allowed_en="ops",
                action_en="browse or replay messages",
            )
        )


def not_found(what: str, what_cn: str) -> Refused:
    return Refused(http_error(refusals.NOT_FOUND, what=what, what_cn=what_cn))


def page_of(request: web.Request) -> tuple[int, int]:
    """(limit, offset) of the asked page (`page` from 1, `limit` up to `PAGE_MAX`)."""
    return params.paging(request.query, limit_max=PAGE_MAX, page_max=100_000)


def window(request: web.Request) -> tuple[datetime | None, datetime | None]:
    """`since` / `until`: ISO 8601 times with their offset (`+08:00`), both included. Times
    are shown to the second, so an `until` to the second reaches to that second's end: a
    time copied from an answer finds its message."""
    until = params.moment(request.query.get("until"), "until")
    if until is not None and until.microsecond == 0:
        until += timedelta(microseconds=999_999)
    return params.moment(request.query.get("since"), "since"), until


def _paged(rows: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    """One page; `has_more` exact (one row past the page was asked for)."""
    return {
        "page": offset // limit + 1,
        "limit": limit,
        "has_more": len(rows) > limit,
        "rows": rows[:limit],
    }


# -- rejected lists ----------------------------------------------------------------------


def _rejected_row(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": f"{r['partition']}/{r['offset']}",
        "topic": r["topic"],
        "partition": r["partition"],
        "offset": r["offset"],
        "fixmedins_code": r["fixmedins_code"],
        "city": r["city"],
        "case_key": r["case_key"],
        "received_at": shown(r["received_at"]),
        "rules": list(r["rules"]),
    }


async def list_rejected(
    pool: asyncpg.Pool,
    *,
    topic: str,
    hospital: str | None,
    rule: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Rejected lists kept by the quality worker, newest first."""
    rows = await pool.fetch(
        """SELECT topic, "partition", "offset", fixmedins_code, city, case_key, received_at,
                  rules FROM rejected_messages
           WHERE topic = $1 AND ($2::text IS NULL OR fixmedins_code = $2)
             AND ($3::text IS NULL OR rules @> ARRAY[$3::text])
             AND ($4::timestamptz IS NULL OR received_at >= $4)
             AND ($5::timestamptz IS NULL OR received_at <= $5)
           ORDER BY received_at DESC, "partition", "offset" LIMIT $6 OFFSET $7""",
        topic,
        hospital,
        rule,
        since,
        until,
        limit + 1,
        offset,
    )
    return _paged([_rejected_row(r) for r in rows], limit, offset)


async def open_rejected(
    pool: asyncpg.Pool, topic: str, partition: int, offset: int
) -> dict[str, Any] | None:
    """One rejected list: its findings and its document (masked), or None."""
    r = await pool.fetchrow(
        """SELECT * FROM rejected_messages
           WHERE topic = $1 AND "partition" = $2 AND "offset" = $3""",
        topic,
        partition,
        offset,
    )
    if r is None:
        return None
    document = None if r["document"] is None else msgspec.json.decode(r["document"])
    return {
        **_rejected_row(r),
        "errors": msgspec.json.decode(r["errors"]),
        "document": mask_personal(document),
    }


# -- dead letters ------------------------------------------------------------------------

_DEAD_COLUMNS = """worker, topic, "partition", "offset", key, error, at, replayed_at,
                   replayed_to"""


def _dead_row(r: asyncpg.Record) -> dict[str, Any]:
    key = r["key"] or ""
    hospital, _, _ = key.partition(":")
    return {
        "id": f"{r['worker']}/{r['topic']}/{r['partition']}/{r['offset']}",
        "worker": r["worker"],
        "topic": r["topic"],
        "partition": r["partition"],
        "offset": r["offset"],
        "key": key,
        "fixmedins_code": hospital if params.HOSPITAL.fullmatch(hospital) else None,
        "error": r["error"],
        "at": shown(r["at"]),
        "replayed_at": shown_or_none(r["replayed_at"]),
        "replayed_to": r["replayed_to"],
    }


async def list_dead_letters(
    pool: asyncpg.Pool,
    *,
    worker: str | None,
    hospital: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """Dead letters, newest first; a hospital's by their key (`code:setl_id`, or `code`)."""
    rows = await pool.fetch(
        f"""SELECT {_DEAD_COLUMNS} FROM dead_letters
            WHERE ($1::text IS NULL OR worker = $1)
              AND ($2::text IS NULL OR key = $2 OR key LIKE $2 || ':%')
              AND ($3::timestamptz IS NULL OR at >= $3)
              AND ($4::timestamptz IS NULL OR at <= $4)
            ORDER BY at DESC, worker, topic, "partition", "offset" LIMIT $5 OFFSET $6""",
        worker,
        hospital,
        since,
        until,
        limit + 1,
        offset,
    )
    return _paged([_dead_row(r) for r in rows], limit, offset)


async def dead_letter(
    pool: asyncpg.Pool | asyncpg.Connection,
    worker: str,
    topic: str,
    partition: int,
    offset: int,
    *,
    lock: bool = False,
) -> asyncpg.Record | None:
    return await pool.fetchrow(
        f"""SELECT {_DEAD_COLUMNS} FROM dead_letters
            WHERE worker = $1 AND topic = $2 AND "partition" = $3 AND "offset" = $4
            {"FOR UPDATE" if lock else ""}""",
        worker,
        topic,
        partition,
        offset,
    )


def _client_options(producer: Any) -> dict[str, Any]:
    """Where the gateway's producer connects, and how (security): the reader connects so.
    (The app is given its producer, not the settings it was made from.)"""
    client = getattr(producer, "producer", producer).client
    options: dict[str, Any] = {
        "bootstrap_servers": client._bootstrap_servers,
        "security_protocol": client._security_protocol,
        "request_timeout_ms": client._request_timeout_ms,
    }
    if client._ssl_context is not None:
        options["ssl_context"] = client._ssl_context
    if client._security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = client._sasl_mechanism
        options["sasl_plain_username"] = client._sasl_plain_username
        options["sasl_plain_password"] = client._sasl_plain_password
    return options


async def read_at(
    producer: Any, topic: str, partition: int, offset: int
) -> ConsumerRecord[bytes, bytes] | None:
    """The message at a Kafka position, or None when it is no longer there (retention)."""
    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        client_id="dipgw-ops-browser",
        isolation_level="read_committed",
        **_client_options(producer),
    )
    await consumer.start()
    try:
        where = TopicPartition(topic, partition)
        consumer.assign([where])  # no group: nothing is committed, no one else is moved
        first = (await consumer.beginning_offsets([where]))[where]
        end = (await consumer.end_offsets([where]))[where]
        if not first <= offset < end:
            return None
        consumer.seek(where, offset)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _READ_TIMEOUT_S
        while loop.time() < deadline:
            batches = await consumer.getmany(where, timeout_ms=500, max_records=1)
            for record in batches.get(where, []):
                return record if record.offset == offset else None  # compacted away
        raise TimeoutError(f"{topic}/{partition}/{offset} not read within {_READ_TIMEOUT_S} s")
    finally:
        await consumer.stop()


def masked_message(value: bytes | None) -> Any:
    """A message as ops may see it: its settlement document through `redact_document` (only
    the contract's fields, personal ones masked), everything else through `mask_personal`."""
    try:
        decoded = msgspec.json.decode(value or b"null")
    except msgspec.DecodeError:
        return {"undecodable": f"{len(value or b'')} bytes that are not JSON"}
    if isinstance(decoded, dict) and "document" in decoded:
        decoded = {**decoded, "document": redact_document(decoded["document"])}
    return mask_personal(decoded)


async def open_dead_letter(
    pool: asyncpg.Pool, producer: Any, worker: str, topic: str, partition: int, offset: int
) -> dict[str, Any] | None:
    """A dead letter, its message read back from Kafka and masked; None if no such one."""
    row = await dead_letter(pool, worker, topic, partition, offset)
    if row is None:
        return None
    unreadable = None
    try:
        record = await read_at(producer, topic, partition, offset)
    except _KAFKA_REFUSED:
        record, unreadable = None, _refused_by_kafka("read", topic)
    shown_row = _dead_row(row)
    return {
        **shown_row,
        "message": None if record is None else masked_message(record.value),
        "message_gone": record is None and unreadable is None,
        "message_unreadable": unreadable,
        "audit": await audit(pool, target=shown_row["id"], limit=20, offset=0),
    }


# -- replay and its audit ------------------------------------------------------------------


async def actor(pool: asyncpg.Pool, request: web.Request) -> str:
    """Who asks: the label of the caller's token (an /ops session's token), never a secret."""
    header = request.headers.get("Authorization", "")
    token = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
    digest = hashlib.sha256(token.encode()).digest()  # as gateway.accounts stores tokens
    label = await pool.fetchval(
        """SELECT coalesce(
               (SELECT label FROM api_tokens WHERE token_sha256 = $1),
               (SELECT t.label FROM ops_sessions s JOIN api_tokens t USING (token_sha256)
                WHERE s.session_sha256 = $1))""",
        digest,
    )
    return str(label or "ops")


async def replay(
    pool: asyncpg.Pool,
    producer: Any,
    who: str,
    worker: str,
    topic: str,
    partition: int,
    offset: int,
    *,
    timeout_s: float,
) -> dict[str, Any] | None:
    """Re-deliver a dead letter to its worker (once), mark it, and audit it; None if no such
    dead letter. The row is locked meanwhile: two requests at once replay it once."""
    target = f"{worker}/{topic}/{partition}/{offset}"
    async with pool.acquire() as conn, conn.transaction():
        row = await dead_letter(conn, worker, topic, partition, offset, lock=True)
        if row is None:
            return None
        replayed_to = row["replayed_to"]
        if row["replayed_at"] is not None:
            result = "already replayed"
        else:
            result, replayed_to = await _write_again(producer, target, timeout_s)
        if result == "replayed":
            await conn.execute(
                """UPDATE dead_letters SET replayed_at = now(), replayed_to = $5
                   WHERE worker = $1 AND topic = $2 AND "partition" = $3 AND "offset" = $4""",
                worker,
                topic,
                partition,
                offset,
                replayed_to,
            )
        at = await conn.fetchval(
            """INSERT INTO ops_audit (actor, action, target, result, detail)
               VALUES ($1, 'replay', $2, $3, $4) RETURNING at""",
            who,
            target,
            result,
            replayed_to or "",
        )
        replayed_at = await conn.fetchval(
            """SELECT replayed_at FROM dead_letters WHERE worker = $1 AND topic = $2
               AND "partition" = $3 AND "offset" = $4""",
            worker,
            topic,
            partition,
            offset,
        )
    return {
        "id": target,
        "replayed": result == "replayed",
        "result": result,
        "replayed_at": shown_or_none(replayed_at),
        "replayed_to": replayed_to,
        "audited_at": shown(at),
        "actor": who,
    }


async def _write_again(producer: Any, target: str, timeout_s: float) -> tuple[str, str | None]:
    """Write the message at `target` (worker/topic/partition/offset) again to its topic, with
    its key and headers and the replay header. (result, topic/partition/offset written)."""
    _, topic, partition, offset = target.split("/")
    try:
        record = await read_at(producer, topic, int(partition), int(offset))
    except _KAFKA_REFUSED:
        return _refused_by_kafka("read", topic), None
    if record is None:
        return "gone from Kafka", None
    # Its own headers kept; a copy of a copy still names the first original.
    headers = [(k, bytes(v)) for k, v in record.headers or () if k != REPLAY_HEADER]
    origin = [bytes(v) for k, v in record.headers or () if k == REPLAY_HEADER]
    headers.append((REPLAY_HEADER, origin[0] if origin else target.encode()))
    try:
        meta = await asyncio.wait_for(
            producer.send_and_wait(topic, record.value, key=record.key, headers=headers),
            timeout_s,
        )
    except _KAFKA_REFUSED:
        return _refused_by_kafka("write", topic), None
    return "replayed", f"{meta.topic}/{meta.partition}/{meta.offset}"


async def audit(
    pool: asyncpg.Pool, *, target: str | None = None, limit: int, offset: int
) -> dict[str, Any]:
    """The ops actions, newest first (one target's, when given)."""
    rows = await pool.fetch(
        """SELECT id, at, actor, action, target, result, detail FROM ops_audit
           WHERE ($1::text IS NULL OR target = $1) ORDER BY at DESC, id DESC
           LIMIT $2 OFFSET $3""",
        target,
        limit + 1,
        offset,
    )
    return _paged([{**dict(r), "at": shown(r["at"])} for r in rows], limit, offset)
