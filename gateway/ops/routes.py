"""The quality API's handlers (`/v1/quality/…`), the message browser's (`/v1/ops/…`) and
`add_routes(app)`, which wires them, the `/ops` page and its session into the app."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import asyncpg
from aiohttp import web

from contracts import CST, shown
from gateway import params, refusals
from gateway.authn import principal_of
from gateway.errors import BadQuery, http_error, json_response
from gateway.feeds import FeedStore, feed_status
from gateway.ops import messages
from gateway.ops.page import get_page, get_static
from gateway.ops.pipeline import pipeline, topic_depth
from gateway.ops.reports import GROUPINGS, SEVERITIES, alerts, period, report, to_csv
from gateway.ops.scope import Refused, check_hospital, scope
from gateway.ops.session import post_logout, same_origin, session_cookie
from gateway.ops.spec import message_paths, openapi_paths
from gateway.services import SERVICES

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answers_refusals(handler: _Handler) -> _Handler:
    """A refused caller gets its 403, a bad query parameter a 400."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as refused:
            return refused.response
        except BadQuery as exc:
            return exc.response()

    return guarded


def _pool(request: web.Request) -> asyncpg.Pool:
    return request.app[SERVICES].pool


def _period(request: web.Request) -> tuple[date, date]:
    """The asked period; by default it ends today on the gateway's clock."""
    today = request.app[SERVICES].clock().astimezone(CST).date()
    return period(request.query.get("from"), request.query.get("to"), today)


def _timely_days(request: web.Request) -> int:
    text = request.query.get("timely_days")
    return params.integer(text, "timely_days", low=1, high=15, default=7)


def _limit(request: web.Request, default: int, high: int) -> int:
    return params.integer(request.query.get("limit"), "limit", low=1, high=high, default=default)


@_answers_refusals
async def get_report(request: web.Request) -> web.StreamResponse:
    city, hospital = scope(request)
    await check_hospital(request, _pool(request), hospital)
    start, end = _period(request)
    by = params.choice(request.query.get("by"), "by", GROUPINGS, default="hospital")
    timely_days = _timely_days(request)
    form = params.choice(request.query.get("format"), "format", ("json", "csv"))
    accept = params.header(request.headers.get("Accept"), "Accept", max_chars=1024) or ""
    result = await report(
        _pool(request),
        by=by,
        start=start,
        end=end,
        city=city,
        hospital=hospital,
        timely_days=timely_days,
    )
    wants_csv = form == "csv" or (form is None and "text/csv" in accept)
    if wants_csv:
        name = f"dipgw-quality-{result['by']}-{result['from']}-{result['to']}.csv"
        return web.Response(
            body=("\ufeff" + to_csv(result)).encode(),  # BOM: Excel opens it as UTF-8
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{name}"',
            },
        )
    return json_response(200, result)


@_answers_refusals
async def get_top_rules(request: web.Request) -> web.StreamResponse:
    city, hospital = scope(request)
    await check_hospital(request, _pool(request), hospital)
    start, end = _period(request)
    limit = _limit(request, default=10, high=100)
    severity = params.choice(
        request.query.get("severity"), "severity", (*SEVERITIES, "all"), default="reject"
    )
    result = await report(
        _pool(request), by="rule", start=start, end=end, city=city, hospital=hospital
    )
    rows = [r for r in result["rows"] if severity == "all" or r["severity"] == severity]
    return json_response(200, {**result, "rows": rows[:limit]})


@_answers_refusals
async def get_alerts(request: web.Request) -> web.StreamResponse:
    city, _ = scope(request)
    limit = _limit(request, default=100, high=1000)
    return json_response(200, {"alerts": await alerts(_pool(request), city=city, limit=limit)})


@_answers_refusals
async def get_dashboard(request: web.Request) -> web.StreamResponse:
    """Everything the `/ops` page draws, in one answer."""
    city, hospital = scope(request)
    start, end = _period(request)
    pool = _pool(request)
    common: dict[str, Any] = {"start": start, "end": end, "city": city, "hospital": hospital}
    by_day = await report(pool, by="day", **common)
    by_hospital = await report(pool, by="hospital", **common)
    by_rule = await report(pool, by="rule", **common)
    role = principal_of(request).role
    return json_response(
        200,
        {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "scope": {"role": role, "city": city},
            "days": by_day["rows"],
            "hospitals": by_hospital["rows"],
            "rules": by_rule["rows"][:10],
            "pipeline": await pipeline(pool) if role == "ops" else [],
            "feeds": (
                [feed_status(row) for row in await FeedStore(pool).rows()] if role == "ops" else []
            ),
            "rejected_depth": (
                topic_depth(request.app[SERVICES].rejected_topic) if role == "ops" else None
            ),
            "alerts": await alerts(pool, city=city, limit=20),
            "generated_at": shown(request.app[SERVICES].clock()),
        },
    )


# -- the message browser (ops only) ------------------------------------------------------


def _position(request: web.Request) -> tuple[int, int]:
    info = request.match_info
    partition = params.integer(info["partition"], "partition", low=0, high=1_000_000, default=0)
    offset = params.integer(info["offset"], "offset", low=0, high=2**63 - 1, default=0)
    return partition, offset


def _dead_target(request: web.Request) -> tuple[str, str, int, int]:
    info = request.match_info
    worker = params.code(info["worker"], "worker", messages.WORKER, "a worker name")
    topic = params.code(info["topic"], "topic", messages.TOPIC, "a topic name")
    assert worker is not None and topic is not None  # path segments are never empty
    return (worker, topic, *_position(request))


@_answers_refusals
async def get_rejected(request: web.Request) -> web.StreamResponse:
    messages.ops_only(request)
    hospital = params.code(
        request.query.get("hospital"), "hospital", params.HOSPITAL, "H + 11 digits"
    )
    rule = params.code(request.query.get("rule"), "rule", messages.RULE, "a rule ID")
    since, until = messages.window(request)
    limit, offset = messages.page_of(request)
    result = await messages.list_rejected(
        _pool(request),
        topic=request.app[SERVICES].rejected_topic,
        hospital=hospital,
        rule=rule,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return json_response(200, result)


@_answers_refusals
async def get_rejected_one(request: web.Request) -> web.StreamResponse:
    messages.ops_only(request)
    partition, offset = _position(request)
    found = await messages.open_rejected(
        _pool(request), request.app[SERVICES].rejected_topic, partition, offset
    )
    if found is None:
        raise messages.not_found("rejected list at this position", "该位置的拒收清单")
    return json_response(200, found)


@_answers_refusals
async def get_dead_letters(request: web.Request) -> web.StreamResponse:
    messages.ops_only(request)
    worker = params.code(request.query.get("worker"), "worker", messages.WORKER, "a worker")
    hospital = params.code(
        request.query.get("hospital"), "hospital", params.HOSPITAL, "H + 11 digits"
    )
    since, until = messages.window(request)
    limit, offset = messages.page_of(request)
    result = await messages.list_dead_letters(
        _pool(request),
        worker=worker,
        hospital=hospital,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return json_response(200, result)


@_answers_refusals
async def get_dead_letter(request: web.Request) -> web.StreamResponse:
    messages.ops_only(request)
    found = await messages.open_dead_letter(
        _pool(request), request.app[SERVICES].producer, *_dead_target(request)
    )
    if found is None:
        raise messages.not_found("dead letter", "该死信")
    return json_response(200, found)


@_answers_refusals
async def post_replay(request: web.Request) -> web.StreamResponse:
    """Re-deliver a dead letter to its worker after a fix; once, audited."""
    if not same_origin(request):
        return http_error(refusals.FORBIDDEN_CSRF)
    messages.ops_only(request)
    target = _dead_target(request)
    pool, services = _pool(request), request.app[SERVICES]
    result = await messages.replay(
        pool,
        services.producer,
        await messages.actor(pool, request),
        *target,
        timeout_s=services.kafka_timeout_s,
    )
    if result is None:
        raise messages.not_found("dead letter", "该死信")
    return json_response(200, result)


@_answers_refusals
async def get_audit(request: web.Request) -> web.StreamResponse:
    messages.ops_only(request)
    limit, offset = messages.page_of(request)
    return json_response(200, await messages.audit(_pool(request), limit=limit, offset=offset))


def add_routes(app: web.Application) -> None:
    from gateway.openapi import register_paths

    register_paths(openapi_paths())
    register_paths(message_paths())
    # Before authentication, after the request context (index 0: request id, access log).
    app.middlewares.insert(1, session_cookie)
    app.router.add_get("/v1/quality/report", get_report)
    app.router.add_get("/v1/quality/top-rules", get_top_rules)
    app.router.add_get("/v1/quality/alerts", get_alerts)
    app.router.add_get("/v1/quality/dashboard", get_dashboard)
    app.router.add_get("/v1/ops/rejected", get_rejected)
    app.router.add_get("/v1/ops/rejected/{partition}/{offset}", get_rejected_one)
    app.router.add_get("/v1/ops/dead-letters", get_dead_letters)
    dead = "/v1/ops/dead-letters/{worker}/{topic}/{partition}/{offset}"
    app.router.add_get(dead, get_dead_letter)
    app.router.add_post(dead + "/replay", post_replay)
    app.router.add_get("/v1/ops/audit", get_audit)
    app.router.add_get("/ops", get_page)
    app.router.add_route("*", "/ops/login", get_page)  # answered by session_cookie
    app.router.add_post("/ops/logout", post_logout)
    app.router.add_get("/ops/static/{name}", get_static)
