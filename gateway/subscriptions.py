"""City subscriptions over HTTP, for bureaus without Kafka access: scored cases by page or stream.

- `GET /v1/scored` — a page of scored cases in change order: `after` (a position from the
  previous page's `next_after`), `since`/`until` (ISO-8601 times, 2000..2100, the row was
  stored; without an offset +08:00), `city`, `role` (`treating`/`insured`), `status`
  (`scored`/`unscored`), `limit` (≤ 1000); each bounded by `gateway.params`, a bad one
  answered 400 `BAD_QUERY`. `has_more` is exact: one more row than the page is read.
- `GET /v1/scored/stream` — the same filters as server-sent events (`id:` = position, so a
  reconnecting EventSource resumes with `Last-Event-ID`); a stream ends before the gateway's
  request timeout (`max_seconds`) or after `max_events`, and clients reconnect. Every
  parameter and `Last-Event-ID` is checked before the stream answers 200.

Who sees what: a city token its own city's cases — as treating city, and cross-city cases where
it is the insured city (role `insured`); ops everything; a hospital its own cases. Positions
are committed in order (see workers.scored_sink), so paging by position never skips a row.
Rows carry the case key, never identity (no name, ID number, address or phone). Items are
the messages the cities received (`contracts.messages.ScoredCase`, decoded again, so moments
in +08:00 and money with two decimals even in rows stored before that rule), plus `pos` and
`stored_at` (+08:00).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from contracts import city_of, in_display_zone
from contracts.messages import ENCODER, SCORED_DECODER
from gateway import params, refusals
from gateway.accounts import Principal
from gateway.authn import principal_of
from gateway.errors import BadQuery, http_error, json_response
from gateway.services import SERVICES

_MAX_LIMIT = 1000
_POLL_S = 0.5
_HEARTBEAT_S = 10.0


class Query(msgspec.Struct, kw_only=True):
    city: str | None
    role: str | None
    status: str | None
    since: datetime | None
    until: datetime | None
    after: int
    limit: int


def parse_query(request: web.Request, principal: Principal, after: int | None = None) -> Query:
    """The filters asked for, each bounded (`gateway.params`); `BadQuery` or `PermissionError`."""
    q = request.query
    city = params.city(q.get("city"), "city")
    if principal.role == "city":
        city = city or city_of(principal.admdvs)
        if not principal.may_read_region(city):
            raise PermissionError(city)
    if after is None:
        after = params.integer(q.get("after"), "after", low=0, high=params.BIGINT_MAX, default=0)
    return Query(
        city=city,
        role=params.choice(q.get("role"), "role", ("treating", "insured")),
        status=params.choice(q.get("status"), "status", ("scored", "unscored")),
        since=params.moment(q.get("since"), "since"),
        until=params.moment(q.get("until"), "until"),
        after=after,
        limit=params.integer(q.get("limit"), "limit", low=1, high=_MAX_LIMIT, default=100),
    )


async def fetch_page(
    pool: Any, principal: Principal, query: Query
) -> tuple[list[dict[str, Any]], bool]:
    """Rows after `query.after` that `principal` may see, as the messages they received, and
    whether there are more (one row beyond the page is read to know it)."""
    conds = ["pos > $1"]
    args: list[Any] = [query.after]

    def where(template: str, value: Any) -> None:
        args.append(value)
        conds.append(template.replace("$?", f"${len(args)}"))

    if principal.role == "hospital":
        where("fixmedins_code = $?", principal.fixmedins_code)
    if query.city is not None:
        if query.role == "treating":
            where("treating_city = $?", query.city)
        elif query.role == "insured":
            where("insured_city = $? AND treating_city <> insured_city", query.city)
        else:
            where("(treating_city = $? OR insured_city = $?)", query.city)
    elif query.role == "insured":
        conds.append("treating_city <> insured_city")
    if query.status is not None:
        where("status = $?", query.status)
    if query.since is not None:
        where("stored_at >= $?", query.since)
    if query.until is not None:
        where("stored_at < $?", query.until)
    args.append(query.limit + 1)
    rows = await pool.fetch(
        f"""SELECT pos, stored_at, treating_city, insured_city, message::text AS message
            FROM scored_cases WHERE {" AND ".join(conds)} ORDER BY pos LIMIT ${len(args)}""",
        *args,
    )
    out = []
    for row in rows[: query.limit]:
        case = SCORED_DECODER.decode(row["message"])
        if query.city is not None and row["treating_city"] != query.city:
            case = msgspec.structs.replace(case, role="insured")
        item: dict[str, Any] = msgspec.structs.asdict(case)
        item["pos"] = row["pos"]
        item["stored_at"] = in_display_zone(row["stored_at"])
        out.append(item)
    return out, len(rows) > query.limit


def _pool(request: web.Request) -> Any:
    return request.app[SERVICES].pool


def _forbidden(city: str) -> web.Response:
    return http_error(refusals.FORBIDDEN_CITY, city=city)


_SUBSCRIBERS = ("ops", "city", "hospital")


def _not_a_subscriber() -> web.Response:
    # Named, not implied: a role added later (a metrics scraper) reads no cases by default.
    return http_error(
        refusals.FORBIDDEN_ROLE,
        allowed="运维、医保局与定点医疗机构",
        action="查看病例",
        allowed_en="ops, city bureaus and hospitals",
        action_en="read cases",
    )


async def get_scored(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    if principal.role not in _SUBSCRIBERS:
        return _not_a_subscriber()
    try:
        query = parse_query(request, principal)
    except BadQuery as exc:
        return exc.response()
    except PermissionError as exc:
        return _forbidden(str(exc))
    items, more = await fetch_page(_pool(request), principal, query)
    return json_response(
        200,
        {
            "items": items,
            "next_after": items[-1]["pos"] if items else query.after,
            "has_more": more,
        },
    )


async def stream_scored(request: web.Request) -> web.StreamResponse:
    """Server-sent events: every visible change after the position, as it is stored."""
    principal = principal_of(request)
    if principal.role not in _SUBSCRIBERS:
        return _not_a_subscriber()
    services = request.app[SERVICES]
    # Every parameter is checked before the 200: a stream that started cannot answer 400.
    try:
        after = params.integer(
            request.headers.get("Last-Event-ID"), "Last-Event-ID", low=0, high=params.BIGINT_MAX
        )
        query = parse_query(request, principal, after)
        ceiling = max(1, int(services.request_timeout_s) - 1)
        max_seconds = params.integer(
            request.query.get("max_seconds"), "max_seconds", low=1, high=ceiling, default=ceiling
        )
        max_events = params.integer(
            request.query.get("max_events"), "max_events", low=0, high=10**9, default=0
        )
    except BadQuery as exc:
        return exc.response()
    except PermissionError as exc:
        return _forbidden(str(exc))
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    # The subscriber going away ends its stream; it is not a failure of ours (no 503 logged).
    with contextlib.suppress(aiohttp.ClientConnectionResetError):
        await _stream(response, services.pool, principal, query, max_seconds, max_events)
    return response


async def _stream(
    response: web.StreamResponse,
    pool: Any,
    principal: Principal,
    query: Query,
    max_seconds: int,
    max_events: int,
) -> None:
    await response.write(b"retry: 1000\n\n")
    deadline = time.monotonic() + max_seconds
    beat = time.monotonic() + _HEARTBEAT_S
    sent = 0
    while time.monotonic() < deadline:
        items, _ = await fetch_page(pool, principal, query)
        for item in items:
            query.after = item["pos"]
            await response.write(
                b"id: %d\nevent: case\ndata: %s\n\n" % (item["pos"], ENCODER.encode(item))
            )
            sent += 1
            if max_events and sent >= max_events:
                return
        if items:
            continue
        if time.monotonic() >= beat:
            await response.write(b": keep-alive\n\n")
            beat = time.monotonic() + _HEARTBEAT_S
        await asyncio.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))


def _parameters(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    def param(name: str, schema: dict[str, Any], text: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema,
                "description": text}  # fmt: skip

    return [
        param("city", {"type": "string", "pattern": "^[0-9]{6}$"},
              "city region code; a city token: its own (default)"),
        param("role", {"enum": ["treating", "insured"]},
              "only cases the city treats, or only cross-city cases it insures"),
        param("status", {"enum": ["scored", "unscored"]}, "scored or unscored cases only"),
        param("after", {"type": "integer", "minimum": 0, "maximum": params.BIGINT_MAX},
              "position: cases changed after it (the previous page's next_after)"),
        param("since", {"type": "string", "format": "date-time"},
              "stored at or after (ISO 8601; without an offset +08:00; 2000..2100)"),
        param("until", {"type": "string", "format": "date-time"},
              "stored before (ISO 8601; without an offset +08:00; 2000..2100)"),
        param("limit", {"type": "integer", "minimum": 1, "maximum": _MAX_LIMIT},
              "page size (100)"),
        *extra,
    ]  # fmt: skip


def _openapi() -> dict[str, Any]:
    # the app imports this module: at call time
    from gateway.openapi import error_responses, example_scored_event, example_scored_page

    reader = [{"hmac": []}, {"mtls": []}, {"bearer": []}]
    page = {"$ref": "#/components/schemas/ScoredPage"}
    return {
        "/v1/scored": {
            "get": {
                "operationId": "getScored",
                "tags": ["subscriptions"],
                "summary": "Scored cases in change order: a city's own (as treating or "
                "insured city), ops all, a hospital its own",
                "security": reader,
                "parameters": _parameters(),
                "responses": {
                    "200": {
                        "description": "One page; items are dip.case.scored messages",
                        "content": {
                            "application/json": {"schema": page, "example": example_scored_page()}
                        },
                    },
                    **error_responses(400, 401, 403, 503),
                },
            }
        },
        "/v1/scored/stream": {
            "get": {
                "operationId": "streamScored",
                "tags": ["subscriptions"],
                "summary": "The same as server-sent events (id = position; resumes with "
                "Last-Event-ID)",
                "security": reader,
                "parameters": _parameters(
                    {
                        "name": "max_seconds",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1},
                    },
                    {
                        "name": "max_events",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "maximum": 10**9},
                    },
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "maximum": params.BIGINT_MAX},
                        "description": "resume after this position (instead of after)",
                    },
                ),
                "responses": {
                    "200": {
                        "description": "event: case, data: one item per changed case",
                        "content": {
                            "text/event-stream": {
                                "schema": {"type": "string"},
                                "example": example_scored_event(),
                            }
                        },
                    },
                    **error_responses(400, 401, 403, 503),
                },
            }
        },
    }


def add_routes(app: web.Application) -> None:
    from gateway.openapi import register_paths

    app.router.add_get("/v1/scored", get_scored)
    app.router.add_get("/v1/scored/stream", stream_scored)
    register_paths(_openapi())
