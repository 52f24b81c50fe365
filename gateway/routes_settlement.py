"""The settlement API (issue 16, point 5) and special review's (point 3).

Read by SQL from what `dipgw settle` (settlement_runs, settlement_lines) and `dipgw rules
simulate` (simulation_runs, simulation_lines) stored — routes never import the workers.

Who sees what: ops every city; a city bureau its own city (the run's or the case's); a
hospital the runs of its own city with its own lines only (never another hospital's line nor
the city's totals), and no simulations (a draft is the bureau's). Money is text with two
decimals (numeric(16,2) as stored), moments +08:00.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from aiohttp import web

from contracts import city_of, shown
from gateway import params, refusals
from gateway.accounts import Principal
from gateway.authn import principal_of
from gateway.errors import BadQuery, http_error, json_response
from gateway.ops.messages import actor as token_label
from gateway.ops.scope import Refused, forbidden_region
from gateway.ops.session import same_origin
from gateway.services import SERVICES
from gateway.special_review import (
    STATUSES,
    Actor,
    ReviewRefused,
    bureau,
    decide,
    get_review,
    list_reviews,
    open_review,
)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SETL_ID_CHARS = 64
_BODY_BYTES = 64 * 1024
_ANYONE, _ANYONE_EN = "运维、医保局与医疗机构", "ops, city bureaus and hospitals"
_REVIEWERS, _REVIEWERS_EN = "医保局与运维", "city bureaus and ops"


def _answers(handler: _Handler) -> _Handler:
    """A refused caller gets its answer, a bad parameter its 400, a refused review its
    catalogued problem."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as refused:
            return refused.response
        except BadQuery as exc:
            return exc.response()
        except ReviewRefused as exc:
            return http_error(exc.refusal, field=exc.field, **exc.values)

    return guarded


def _pool(request: web.Request) -> asyncpg.Pool:
    return request.app[SERVICES].pool


def _forbidden(allowed: str, allowed_en: str, action: str, action_en: str) -> Refused:
    return Refused(
        http_error(
            refusals.FORBIDDEN_ROLE,
            allowed=allowed,
            action=action,
            allowed_en=allowed_en,
            action_en=action_en,
        )
    )


def _value(value: Any) -> Any:
    """A stored value as the API sends it: numeric as text (money keeps its two decimals as
    stored), moments +08:00, jsonb decoded."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return shown(value)
    return value


def _row(record: asyncpg.Record, jsonb: tuple[str, ...] = ()) -> dict[str, Any]:
    """A row as sent; the `jsonb` columns decoded (asyncpg hands them over as text)."""
    return {
        key: json.loads(value) if key in jsonb and isinstance(value, str) else _value(value)
        for key, value in record.items()
    }


def _paging(request: web.Request, default: int = 50) -> tuple[int, int]:
    return params.paging(request.query, limit_max=500, page_max=1_000_000, default=default)


def _city_scope(request: web.Request, principal: Principal) -> str | None:
    """The city asked for, within the caller's: a bureau or hospital its own, ops any."""
    asked = params.city(request.query.get("city"), "city")
    if principal.role == "ops":
        return asked
    own = city_of(principal.admdvs)
    if asked is not None and asked != own:
        raise Refused(forbidden_region())
    return own


def _readers(principal: Principal, *, hospitals: bool) -> None:
    roles = ("ops", "city", "hospital") if hospitals else ("ops", "city")
    if principal.role not in roles:
        if hospitals:
            raise _forbidden(_ANYONE, _ANYONE_EN, "查看结算", "read settlements")
        raise _forbidden("运维与医保局", "ops and city bureaus", "查看测算", "read simulations")


# -- settlement runs ---------------------------------------------------------------------------

_RUN_COLUMNS = """run_id, city, period, kind, seq, clearing_year, policy_id, inputs,
    point_values, totals, created_at"""
_JSONB_RUN = ("inputs", "point_values", "totals")


@_answers
async def get_settlement_runs(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    _readers(principal, hospitals=True)
    city = _city_scope(request, principal)
    kind = params.choice(request.query.get("kind"), "kind", ("month", "year"))
    period = params.code(request.query.get("period"), "period", _PERIOD, "YYYY or YYYY-MM")
    limit, offset = _paging(request)
    where = """($1::text IS NULL OR city = $1) AND ($2::text IS NULL OR kind = $2)
               AND ($3::text IS NULL OR period = $3)"""
    pool = _pool(request)
    total = await pool.fetchval(
        f"SELECT count(*) FROM settlement_runs WHERE {where}", city, kind, period
    )
    rows = await pool.fetch(
        f"""SELECT {_RUN_COLUMNS} FROM settlement_runs WHERE {where}
            ORDER BY run_id DESC LIMIT $4 OFFSET $5""",
        city,
        kind,
        period,
        limit,
        offset,
    )
    runs = [_run(r, principal) for r in rows]
    return json_response(200, {"total": total, "runs": runs})


def _run(record: asyncpg.Record, principal: Principal) -> dict[str, Any]:
    run = _row(record, _JSONB_RUN)
    run["lines_url"] = f"/v1/settlement/runs/{run['run_id']}"
    if principal.role == "hospital":
        del run["totals"]  # the city's figures are the bureau's
    return run


@_answers
async def get_settlement_run(request: web.Request) -> web.StreamResponse:
    """One run with its lines: per hospital and fund (a hospital: its own lines only)."""
    principal = principal_of(request)
    _readers(principal, hospitals=True)
    run_id = _id(request, "run_id", "settlement run", "结算批次")
    hospital = params.code(
        request.query.get("hospital"), "hospital", params.HOSPITAL, "H + 11 digits"
    )
    if principal.role == "hospital":
        if hospital is not None and hospital != principal.fixmedins_code:
            raise Refused(forbidden_region())
        hospital = principal.fixmedins_code
    pool = _pool(request)
    record = await pool.fetchrow(
        f"SELECT {_RUN_COLUMNS} FROM settlement_runs WHERE run_id = $1", run_id
    )
    if record is None or not _may_read_city(principal, record["city"]):
        raise _not_found("settlement run", "结算批次")  # absent, or another city's
    lines = await pool.fetch(
        """SELECT l.fixmedins_code, h.name, l.fund, l.cases, l.points, l.dip_amount,
                  l.other_payments, l.deductions, l.deposit, l.settled, l.payable,
                  l.adjustment, l.figures
           FROM settlement_lines l LEFT JOIN hospitals h USING (fixmedins_code)
           WHERE l.run_id = $1 AND ($2::text IS NULL OR l.fixmedins_code = $2)
           ORDER BY l.fixmedins_code, l.fund""",
        run_id,
        hospital,
    )
    return json_response(
        200, {**_run(record, principal), "lines": [_row(r, ("figures",)) for r in lines]}
    )


def _may_read_city(principal: Principal, city: str) -> bool:
    return principal.role == "ops" or city_of(principal.admdvs) == city


_PERIOD = re.compile(r"[0-9]{4}(?:-(?:0[1-9]|1[0-2]))?")


def _id(request: web.Request, name: str, what: str, what_cn: str) -> int:
    """A path id; one no row can have answers 404, as an absent one does."""
    text = request.match_info[name]
    try:
        return int(params.integer(text, name, low=1, high=params.BIGINT_MAX, default=0))
    except BadQuery:
        raise _not_found(what, what_cn) from None


def _not_found(what: str, what_cn: str) -> Refused:
    return Refused(http_error(refusals.NOT_FOUND, what=what, what_cn=what_cn))


# -- simulations -------------------------------------------------------------------------------

_SIM_COLUMNS = """sim_id, city, clearing_year, seq, current_version, draft_version, draft_sha256,
    draft_sources, point_values, cases, skipped, points_current, points_draft, payment_current,
    payment_draft, delta, delta_pct, kinds_current, kinds_draft, seconds, created_by,
    created_at"""
_JSONB_SIM = ("draft_sources", "point_values", "kinds_current", "kinds_draft")


@_answers
async def get_simulations(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    _readers(principal, hospitals=False)
    city = _city_scope(request, principal)
    year = params.integer(request.query.get("year"), "year", low=2000, high=2100)
    limit, offset = _paging(request)
    where = "($1::text IS NULL OR city = $1) AND ($2::int IS NULL OR clearing_year = $2)"
    pool = _pool(request)
    total = await pool.fetchval(f"SELECT count(*) FROM simulation_runs WHERE {where}", city, year)
    rows = await pool.fetch(
        f"""SELECT {_SIM_COLUMNS} FROM simulation_runs WHERE {where}
            ORDER BY sim_id DESC LIMIT $3 OFFSET $4""",
        city,
        year,
        limit,
        offset,
    )
    simulations = []
    for r in rows:
        sim = _row(r, _JSONB_SIM)
        sim["lines_url"] = f"/v1/simulations/{sim['sim_id']}"
        simulations.append(sim)
    return json_response(200, {"total": total, "simulations": simulations})


@_answers
async def get_simulation(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    _readers(principal, hospitals=False)
    sim_id = _id(request, "sim_id", "simulation", "测算")
    pool = _pool(request)
    record = await pool.fetchrow(
        f"SELECT {_SIM_COLUMNS} FROM simulation_runs WHERE sim_id = $1", sim_id
    )
    if record is None or not _may_read_city(principal, record["city"]):
        raise _not_found("simulation", "测算")
    lines = await pool.fetch(
        """SELECT l.fixmedins_code, h.name, l.cases, l.points_current, l.points_draft,
                  l.payment_current, l.payment_draft, l.delta, l.delta_pct, l.kinds_current,
                  l.kinds_draft
           FROM simulation_lines l LEFT JOIN hospitals h USING (fixmedins_code)
           WHERE l.sim_id = $1 ORDER BY l.delta, l.fixmedins_code""",
        sim_id,
    )
    return json_response(
        200,
        {
            **_row(record, _JSONB_SIM),
            "lines": [_row(r, ("kinds_current", "kinds_draft")) for r in lines],
        },
    )


# -- special review ----------------------------------------------------------------------------


async def _actor(request: web.Request) -> Actor:
    principal = principal_of(request)
    if principal.role == "hospital":
        code = principal.fixmedins_code or ""
        return Actor(role="hospital", name=code, fixmedins_code=code)
    if principal.role == "city":
        return bureau(principal.admdvs, await token_label(_pool(request), request))
    if principal.role == "ops":
        return Actor(role="ops", name=f"ops: {await token_label(_pool(request), request)}")
    raise _forbidden(_ANYONE, _ANYONE_EN, "办理特病单议", "handle special reviews")


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > _BODY_BYTES:
        raise ReviewRefused(refusals.REVIEW_BODY, detail=f"larger than {_BODY_BYTES} bytes")
    raw = await request.read()
    if len(raw) > _BODY_BYTES:
        raise ReviewRefused(refusals.REVIEW_BODY, detail=f"larger than {_BODY_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReviewRefused(refusals.REVIEW_BODY, detail=str(exc)[:200]) from None
    if not isinstance(doc, dict):
        raise ReviewRefused(refusals.REVIEW_BODY, detail=f"got {type(doc).__name__}")
    return doc


def _text_field(doc: dict[str, Any], name: str, shape: str, check: Callable[[str], bool]) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not check(value):
        raise ReviewRefused(refusals.REVIEW_FIELD, name, name=name, shape=shape, shape_en=shape)
    return value


def _csrf(request: web.Request) -> None:
    if not same_origin(request):
        raise Refused(http_error(refusals.FORBIDDEN_CSRF))


def _now(request: web.Request) -> datetime:
    return request.app[SERVICES].clock()


@_answers
async def post_special_review(request: web.Request) -> web.StreamResponse:
    """Open a request for one scored case (a hospital: its own; a bureau: its city's)."""
    _csrf(request)
    actor = await _actor(request)
    doc = await _body(request)
    code = _text_field(
        doc, "fixmedins_code", "H + 11 digits", lambda v: bool(params.HOSPITAL.fullmatch(v))
    )
    setl_id = _text_field(
        doc,
        "setl_id",
        f"1–{_SETL_ID_CHARS} characters",
        lambda v: 0 < len(v) <= _SETL_ID_CHARS and v.isprintable(),
    )
    opened = await open_review(
        _pool(request), actor, code, setl_id, doc.get("reason"), now=_now(request)
    )
    return json_response(201, opened, {"Location": f"/v1/special-reviews/{opened['review_id']}"})


@_answers
async def get_special_reviews(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    _readers(principal, hospitals=True)
    city = _city_scope(request, principal)
    hospital = params.code(
        request.query.get("hospital"), "hospital", params.HOSPITAL, "H + 11 digits"
    )
    if principal.role == "hospital":
        if hospital is not None and hospital != principal.fixmedins_code:
            raise Refused(forbidden_region())
        hospital, city = principal.fixmedins_code, None  # its cases, treated wherever
    status = params.choice(request.query.get("status"), "status", STATUSES)
    year = params.integer(request.query.get("year"), "year", low=2000, high=2100)
    limit, offset = _paging(request)
    found = await list_reviews(
        _pool(request),
        city=city,
        hospital=hospital,
        status=status,
        year=year,
        limit=limit,
        offset=offset,
    )
    return json_response(200, found)


@_answers
async def get_special_review(request: web.Request) -> web.StreamResponse:
    actor = await _actor(request)
    review_id = _review_id(request)
    return json_response(200, await get_review(_pool(request), actor, review_id))


def _review_id(request: web.Request) -> int:
    text = request.match_info["review_id"]
    try:
        return int(params.integer(text, "review_id", low=1, high=params.BIGINT_MAX, default=0))
    except BadQuery:
        raise ReviewRefused(refusals.REVIEW_UNKNOWN, review_id=text[:40]) from None


@_answers
async def post_decision(request: web.Request) -> web.StreamResponse:
    """Approve points or reject, with a reason: the case's city bureau, or ops."""
    _csrf(request)
    if principal_of(request).role not in ("city", "ops"):
        raise _forbidden(_REVIEWERS, _REVIEWERS_EN, "审核特病单议", "decide special reviews")
    actor = await _actor(request)
    review_id = _review_id(request)
    doc = await _body(request)
    decided = await decide(
        _pool(request),
        actor,
        review_id,
        _text_field(doc, "decision", "approve | reject", lambda v: True),
        doc.get("reason"),
        points=doc.get("approved_points"),
        now=_now(request),
    )
    return json_response(200, decided)


def add_routes(app: web.Application) -> None:
    from gateway.openapi import register_paths
    from gateway.settlement_spec import openapi_paths

    register_paths(openapi_paths())
    app.router.add_get("/v1/settlement/runs", get_settlement_runs)
    app.router.add_get("/v1/settlement/runs/{run_id}", get_settlement_run)
    app.router.add_get("/v1/simulations", get_simulations)
    app.router.add_get("/v1/simulations/{sim_id}", get_simulation)
    app.router.add_post("/v1/special-reviews", post_special_review)
    app.router.add_get("/v1/special-reviews", get_special_reviews)
    app.router.add_get("/v1/special-reviews/{review_id}", get_special_review)
    app.router.add_post("/v1/special-reviews/{review_id}/decision", post_decision)
