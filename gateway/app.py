"""The HTTP service: middleware, the route table and the application factory.

Handlers stay thin and live by concern — uploads in `gateway.routes_ingest`, queries in
`gateway.routes_query`, subscriptions and ops in their own modules; decoding and checking
in `gateway.checks` (over the pure contracts), durability in `gateway.ingest`, identity in
`gateway.authn`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from adapters.runtime import stages
from adapters.runtime.clock import Clock, system_clock
from adapters.runtime.errors import describe_error, is_dependency_failure
from adapters.runtime.logs import Throttle, get_logger
from adapters.runtime.metrics import HTTP_REQUESTS, HTTP_SECONDS
from adapters.runtime.metrics_http import dependency_probes, metrics_response, readyz_response
from adapters.runtime.settings import LimitSettings, TopicSettings
from gateway import (
    asyncapi,
    openapi,
    ops,
    params,
    refusals,
    routes_national,
    routes_settlement,
    routes_validate,
    subscriptions,
)
from gateway.accounts import Registry
from gateway.authn import PUBLIC, REGISTRY, WINDOW, authenticate, nonce_reused, principal_of
from gateway.checks import Checker
from gateway.errors import BadQuery, NonceReused, http_error, json_response, rate_limited
from gateway.ingest import Ingestor
from gateway.offload import FileWorkers
from gateway.ratelimit import budgets
from gateway.routes_ingest import post_batch, post_file, post_settlement
from gateway.routes_query import get_case, get_receipt
from gateway.services import SERVICES, Services

log = get_logger("dipgw.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- middleware ---------------------------------------------------------------------------


@web.middleware
async def _context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, access log, metrics, timeout, and JSON errors for aiohttp's own refusals
    and for a bad query parameter or header value (`BadQuery`) raised wherever it is read."""
    request_id = uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    started = time.perf_counter()
    services = request.app[SERVICES]
    response: web.StreamResponse
    try:
        given = params.header(request.headers.get("X-Request-Id"), "X-Request-Id", max_chars=128)
        if given:  # echoed in the answer and the log: bounded printable ASCII only
            request_id = given
            structlog.contextvars.bind_contextvars(request_id=request_id)
        if request.method == "POST":
            stages.start()
        async with asyncio.timeout(services.request_timeout_s):
            response = await handler(request)
        if stages.ingested():
            stages.stage_done("response")
    except BadQuery as exc:
        response = exc.response()
    except NonceReused:
        response = nonce_reused()
    except web.HTTPRequestEntityTooLarge:
        response = http_error(refusals.HTTP413)
    except web.HTTPException as exc:
        response = http_error(refusals.for_http_status(exc.status), reason=exc.reason)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
    except TimeoutError:
        response = http_error(refusals.SYS_TIMEOUT, headers={"Retry-After": "5"})
    except Exception as exc:
        if not is_dependency_failure(exc):
            log.exception("http.unhandled", route=route)
            return _finish(
                request,
                route,
                request_id,
                started,
                http_error(refusals.SYS500),
            )
        held = _UNAVAILABLE_LOG.admit((route, type(exc).__name__))
        if held is not None:  # once per route and cause every few seconds, not per request
            log.warning(
                "http.dependency_unavailable",
                route=route,
                error=describe_error(exc),
                also_since_last=held,
            )
        response = http_error(refusals.SYS_UNAVAILABLE, headers={"Retry-After": "5"})
    return _finish(request, route, request_id, started, response)


@web.middleware
async def _admission(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What any caller may cost before anything is read or anyone authenticated: a body
    declared too large is refused from its Content-Length, and each client address has
    budgets of requests and bytes (unauthenticated and bearer traffic included)."""
    if request.path in PUBLIC:
        return await handler(request)
    services = request.app[SERVICES]
    length = request.content_length or 0
    if length > services.max_body_bytes:
        return http_error(refusals.HTTP413)
    source = _client_address(request, services.client_ip_header)
    now = time.monotonic()
    budgets = services.budgets
    wait = budgets.source_requests.take(source, now)
    if not wait:
        wait = budgets.source_bytes.admit(source, now, length)
    if wait > 0:
        return rate_limited(wait, "来自该地址的请求", "requests from this address")
    return await handler(request)


def _client_address(request: web.Request, header: str) -> str:
    if header:
        named = request.headers.get(header, "").rsplit(",", 1)[-1].strip()
        if named:
            return named[:64]
    return request.remote or ""


def _finish(
    request: web.Request,
    route: str,
    request_id: str,
    started: float,
    response: web.StreamResponse,
) -> web.StreamResponse:
    elapsed = time.perf_counter() - started
    HTTP_REQUESTS.labels(route, str(response.status)).inc()
    method = request.method if request.method in _METHODS else "other"  # the caller's text
    HTTP_SECONDS.labels(route, method).observe(elapsed)
    response.headers["X-Request-Id"] = request_id
    log.info(
        "http.request",
        method=request.method,
        route=route,
        status=response.status,
        ms=round(elapsed * 1000, 2),
    )
    return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


async def healthz(request: web.Request) -> web.StreamResponse:
    """Liveness: static, touches nothing (a dependency away must not get the process killed)."""
    return json_response(200, {"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    """Readiness: Kafka and PostgreSQL answer (each within 2 s), else 503 naming what is down
    — a load balancer then sends hospitals to a gateway that can accept their lists."""
    services = request.app[SERVICES]
    return await readyz_response(dependency_probes(services.pool, services.producer))


async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus, for an ops or metrics token: the series name hospitals, volumes and
    rejection rules, which are not for everyone."""
    if principal_of(request).role not in ("ops", "metrics"):
        return http_error(
            refusals.FORBIDDEN_ROLE,
            allowed="运维或监控令牌",
            action="读取指标",
            allowed_en="ops and metrics tokens",
            action_en="read metrics",
        )
    services = request.app[SERVICES]
    return await metrics_response(dependency_probes(services.pool, services.producer))


async def openapi_json(request: web.Request) -> web.StreamResponse:
    return web.Response(body=openapi.document_bytes(), content_type="application/json")


_UNAVAILABLE_LOG = Throttle(10.0)


def create_app(
    pool: asyncpg.Pool,
    ingestor: Ingestor,
    registry: Registry,
    checker: Checker,
    *,
    producer: Any,
    rejected_topic: str,
    max_body_bytes: int,
    batch_max_records: int,
    limits: LimitSettings,
    window_s: int,
    request_timeout_s: float,
    kafka_timeout_s: float = 15.0,
    clock: Clock = system_clock,
    file_workers: int = 2,
    file_worker_memory_mb: int = 1024,
    client_ip_header: str = "",
    topics: TopicSettings | None = None,
) -> web.Application:
    """`topics`: the configured topic names, as /asyncapi.json describes them (default names
    when None)."""
    app = web.Application(
        middlewares=[_context, _admission, authenticate], client_max_size=max_body_bytes
    )
    files = FileWorkers(  # file uploads are parsed off the loop, within the checker's limits
        workers=file_workers,
        memory_mb=file_worker_memory_mb,
        limits=checker.limits,
        time_limit_s=max(1.0, 0.9 * request_timeout_s),
    )
    app.on_startup.append(files.on_startup)
    app.on_cleanup.append(files.on_cleanup)
    app[SERVICES] = Services(
        pool=pool,
        ingestor=ingestor,
        checker=checker,
        budgets=budgets(limits),
        max_body_bytes=max_body_bytes,
        client_ip_header=client_ip_header,
        batch_max_records=batch_max_records,
        request_timeout_s=request_timeout_s,
        rejected_topic=rejected_topic,
        producer=producer,
        files=files,
        kafka_timeout_s=kafka_timeout_s,
        clock=clock,
    )
    app[REGISTRY] = registry
    app[WINDOW] = window_s
    app.router.add_post("/v1/settlements", post_settlement)
    app.router.add_post("/v1/settlements/batch", post_batch)
    app.router.add_post("/v1/settlements/file", post_file)
    routes_national.add_routes(app)
    routes_validate.add_routes(app)
    app.router.add_get("/v1/receipts/{receipt_id}", get_receipt)
    app.router.add_get("/v1/cases/{fixmedins_code}/{setl_id}", get_case)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi_json)
    subscriptions.add_routes(app)
    ops.add_routes(app)
    routes_settlement.add_routes(app)
    asyncapi.add_routes(app, topics)
    return app
