"""The quality API's handlers (`/v1/quality/…`) and `add_routes(app)`, which wires them, the
`/ops` page and its session into the app."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import asyncpg
from aiohttp import web

from contracts import CST
from gateway import params
from gateway.authn import principal_of
from gateway.errors import BadQuery, json_response
from gateway.ops.page import get_page, get_static
from gateway.ops.pipeline import pipeline, topic_depth
from gateway.ops.reports import GROUPINGS, SEVERITIES, alerts, period, report, to_csv
from gateway.ops.scope import Refused, check_hospital, scope
from gateway.ops.session import post_logout, session_cookie
from gateway.ops.spec import openapi_paths
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
            "rejected_depth": (
                topic_depth(request.app[SERVICES].rejected_topic) if role == "ops" else None
            ),
            "alerts": await alerts(pool, city=city, limit=20),
        },
    )


def add_routes(app: web.Application) -> None:
    from gateway.openapi import register_paths

    register_paths(openapi_paths())
    # Before authentication, after the request context (index 0: request id, access log).
    app.middlewares.insert(1, session_cookie)
    app.router.add_get("/v1/quality/report", get_report)
    app.router.add_get("/v1/quality/top-rules", get_top_rules)
    app.router.add_get("/v1/quality/alerts", get_alerts)
    app.router.add_get("/v1/quality/dashboard", get_dashboard)
    app.router.add_get("/ops", get_page)
    app.router.add_route("*", "/ops/login", get_page)  # answered by session_cookie
    app.router.add_post("/ops/logout", post_logout)
    app.router.add_get("/ops/static/{name}", get_static)
