"""The HTTP service: hospitals push settlement lists, anyone authorised asks where they are."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.ingest import (
    Ingestor,
    Problem,
    Unavailable,
    UploadRejected,
    parse_upload,
    receipt_status,
)
from gateway.logs import get_logger
from gateway.metrics import HTTP_REQUESTS, PRODUCE_SECONDS, RECORDS, REGISTRY

CST = ZoneInfo("Asia/Shanghai")
log = get_logger("dipgw.http")

POOL = web.AppKey("pool", asyncpg.Pool)
INGESTOR = web.AppKey("ingestor", Ingestor)

_ENC = msgspec.json.Encoder()


def _json(status: int, payload: object, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=_ENC.encode(payload), content_type="application/json", headers=headers
    )


def error_response(
    status: int, problems: list[Problem], headers: dict[str, str] | None = None
) -> web.Response:
    return _json(status, {"errors": problems}, headers)


def _http_problem(rule: str, message: str, message_en: str) -> list[Problem]:
    return [
        Problem(
            rule=rule,
            field="$",
            dimension="规范性",
            severity="reject",
            message=message,
            message_en=message_en,
        )
    ]


@web.middleware
async def _context(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    route = (
        request.match_info.route.resource.canonical
        if request.match_info.route.resource
        else "unmatched"
    )
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    except Exception:
        log.exception("http.unhandled", route=route)
        response = error_response(500, _http_problem("SYS500", "服务内部错误", "internal error"))
    HTTP_REQUESTS.labels(route, str(response.status)).inc()
    response.headers["X-Request-Id"] = request_id
    log.info(
        "http.request",
        method=request.method,
        route=route,
        status=response.status,
        ms=round((time.perf_counter() - started) * 1000, 2),
    )
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def post_settlement(request: web.Request) -> web.StreamResponse:
    received_at = datetime.now(CST)
    if request.content_type not in ("application/json", ""):
        return error_response(
            415,
            _http_problem(
                "HTTP415", f"不支持的内容类型 {request.content_type}", "use application/json"
            ),
        )
    body = await request.read()
    try:
        upload = parse_upload(body)
    except UploadRejected as rejected:
        RECORDS.labels("rejected").inc()
        return error_response(422, rejected.problems)
    structlog.contextvars.bind_contextvars(case_key=upload.case_key)
    started = time.perf_counter()
    try:
        receipt = await request.app[INGESTOR].submit(upload, received_at)
    except (Unavailable, OSError, asyncpg.PostgresConnectionError) as exc:
        log.warning("ingest.unavailable", error=str(exc))
        return error_response(
            503,
            _http_problem("SYS503", "暂时无法受理，请稍后重试", "temporarily unavailable; retry"),
            headers={"Retry-After": "5"},
        )
    PRODUCE_SECONDS.observe(time.perf_counter() - started)
    RECORDS.labels("duplicate" if receipt.duplicate else "accepted").inc()
    return _json(
        202,
        {
            "receipt_id": str(receipt.receipt_id),
            "case_key": upload.case_key,
            "revision": receipt.revision,
            "status": receipt.status,
            "duplicate": receipt.duplicate,
        },
    )


async def get_receipt(request: web.Request) -> web.StreamResponse:
    try:
        receipt_id = uuid.UUID(request.match_info["receipt_id"])
    except ValueError:
        return error_response(404, _http_problem("RCP404", "回执不存在", "no such receipt"))
    row = await receipt_status(request.app[POOL], receipt_id)
    if row is None:
        return error_response(404, _http_problem("RCP404", "回执不存在", "no such receipt"))
    row["receipt_id"] = str(row["receipt_id"])
    return _json(200, row)


async def healthz(request: web.Request) -> web.StreamResponse:
    return _json(200, {"status": "ok"})


async def metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


def create_app(pool: asyncpg.Pool, ingestor: Ingestor, *, max_body_bytes: int) -> web.Application:
    app = web.Application(middlewares=[_context], client_max_size=max_body_bytes)
    app[POOL] = pool
    app[INGESTOR] = ingestor
    app.router.add_post("/v1/settlements", post_settlement)
    app.router.add_get("/v1/receipts/{receipt_id}", get_receipt)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app
