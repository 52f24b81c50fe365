"""The ingest peer: the gateway a competent team writes first, for `dipgw bench ingest --peer`.

aiohttp; the same signature headers as dipgw (verified with `gateway.signing`, so one client
serves both); each list validated with the pydantic models (gateway.bench.peer.model); each
valid list sent with aiokafka `send_and_wait` (acks=all, idempotent) and then one asyncpg
INSERT of its receipt into `peer_receipts` (created at start), then answered. The answers have
dipgw's shapes (202 / 422 for one list; 200 with a result per record for a batch, 503 when
Kafka or PostgreSQL failed) so that the bench counts both sides with the same code.

    python -m gateway.bench.peer.ingest_app --port 8001 --dsn postgresql://… \\
        --bootstrap 127.0.0.1:9092 --topic peer.accepted --hospital H44010000001

The hospital's secret is read from the environment (PEER_HOSPITAL_SECRET), never argv.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from pydantic import ValidationError

from gateway import signing
from gateway.bench.peer.model import Envelope

SECRET_ENV = "PEER_HOSPITAL_SECRET"
WINDOW_S = 300  # as dipgw: a signature timestamp within ±5 minutes

_TABLE = """
CREATE TABLE IF NOT EXISTS peer_receipts (
    receipt_id uuid PRIMARY KEY,
    fixmedins_code text NOT NULL,
    setl_id text NOT NULL,
    received_at timestamptz NOT NULL,
    kafka_partition int NOT NULL,
    kafka_offset bigint NOT NULL
)"""
_INSERT = """INSERT INTO peer_receipts
    (receipt_id, fixmedins_code, setl_id, received_at, kafka_partition, kafka_offset)
    VALUES ($1, $2, $3, $4, $5, $6)"""

STATE: web.AppKey[dict[str, Any]] = web.AppKey("state", dict)


def _refused(status: int, title: str) -> web.Response:
    return web.json_response({"title": title}, status=status)


def _verify(request: web.Request, body: bytes) -> web.Response | None:
    """The signature headers, as dipgw checks them; None when the request may go on."""
    state = request.app[STATE]
    headers = request.headers
    if signing.check_headers(headers) is not None:
        return _refused(401, "signature headers missing")
    timestamp, nonce = headers[signing.TIMESTAMP], headers[signing.NONCE]
    if signing.check_fresh(timestamp, nonce, now=time.time(), window_s=WINDOW_S) is not None:
        return _refused(401, "stale timestamp or bad nonce")
    secret = state["secrets"].get(headers[signing.HOSPITAL])
    given = headers[signing.SIGNATURE]
    if secret is None or not signing.matches(
        [secret], "HMAC-SHA256", given, request.method, request.path_qs, timestamp, nonce, body
    ):
        return _refused(401, "signature mismatch")
    nonces: dict[str, float] = state["nonces"]  # single use, within the window
    if nonce in nonces:
        return _refused(401, "nonce reused")
    nonces[nonce] = time.time()
    if len(nonces) > 100_000:
        cutoff = time.time() - 2 * WINDOW_S
        for old in [n for n, at in nonces.items() if at < cutoff]:
            del nonces[old]
    return None


async def _take(state: dict[str, Any], record: Any, raw: bytes, received: datetime) -> str:
    """Kafka (acks=all, waited for), then the receipt row; its id."""
    receipt_id = uuid.uuid4()
    hospital, setl_id = record.fixmedins_code, record.input.setlinfo.setl_id
    meta = await state["producer"].send_and_wait(
        state["topic"], raw, key=f"{hospital}:{setl_id}".encode()
    )
    await state["pool"].execute(
        _INSERT, receipt_id, hospital, setl_id, received, meta.partition, meta.offset
    )
    return str(receipt_id)


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Where and what, never the value sent (it may be personal data)."""
    return [
        {"path": ".".join(map(str, e["loc"])), "type": e["type"], "message": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


async def single(request: web.Request) -> web.Response:
    body = await request.read()
    refused = _verify(request, body)
    if refused is not None:
        return refused
    received = datetime.now(UTC)
    try:
        record = Envelope.model_validate_json(body)
    except ValidationError as exc:
        return web.json_response(_errors(exc), status=422)
    try:
        receipt = await _take(request.app[STATE], record, body, received)
    except Exception:
        return _refused(503, "Kafka or PostgreSQL unavailable")
    return web.json_response({"status": "accepted", "receipt_id": receipt}, status=202)


async def batch(request: web.Request) -> web.Response:
    body = await request.read()
    refused = _verify(request, body)
    if refused is not None:
        return refused
    received = datetime.now(UTC)
    try:
        records = json.loads(body)["records"]
        assert isinstance(records, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        return _refused(400, "a JSON object with a records list is expected")
    state = request.app[STATE]

    async def one(position: int, item: Any) -> dict[str, Any]:
        try:
            record = Envelope.model_validate(item)
        except ValidationError as exc:
            return {"position": str(position), "status": "rejected", "errors": _errors(exc)}
        raw = json.dumps(item, ensure_ascii=False).encode()
        try:
            receipt = await _take(state, record, raw, received)
        except Exception:
            return {"position": str(position), "status": "unavailable"}
        return {"position": str(position), "status": "accepted", "receipt_id": receipt}

    results = await asyncio.gather(*(one(i, item) for i, item in enumerate(records)))
    summary = {k: sum(r["status"] == k for r in results) for k in ("accepted", "rejected")}
    unavailable = sum(r["status"] == "unavailable" for r in results)
    answer = {**summary, "unavailable": unavailable, "results": results}
    return web.json_response(answer, status=503 if unavailable else 200)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _ensure_topic(bootstrap: str, topic: str, partitions: int, replicas: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="dipgw-peer")
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(topic, partitions, replicas)])
    finally:
        await admin.close()


def make_app(args: argparse.Namespace, secret: bytes) -> web.Application:
    app = web.Application(client_max_size=64 * 2**20)
    state: dict[str, Any] = {
        "topic": args.topic,
        "secrets": {args.hospital: secret},
        "nonces": {},
    }
    app[STATE] = state

    async def lifecycle(app: web.Application) -> Any:
        await _ensure_topic(args.bootstrap, args.topic, args.partitions, args.replication_factor)
        state["pool"] = await asyncpg.create_pool(args.dsn, min_size=1, max_size=args.pool_max)
        await state["pool"].execute(_TABLE)
        state["producer"] = AIOKafkaProducer(
            bootstrap_servers=args.bootstrap, acks="all", enable_idempotence=True
        )
        await state["producer"].start()
        yield
        await state["producer"].stop()
        await state["pool"].close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/v1/settlements", single)
    app.router.add_post("/v1/settlements/batch", batch)
    app.router.add_get("/healthz", healthz)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.bench.peer.ingest_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--hospital", required=True)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--replication-factor", type=int, default=1)
    parser.add_argument("--pool-max", type=int, default=20, help="as the bench's dipgw")
    args = parser.parse_args(argv)
    secret = os.environ.get(SECRET_ENV, "").encode()
    if not secret:
        parser.error(f"the hospital's secret is read from {SECRET_ENV}")
    web.run_app(make_app(args, secret), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
