"""Ingestion-quality reports, alerts and the `/ops` dashboard, over the quality worker's rollups.

Ops tokens read every city; a city bureau's token reads its own city only; hospitals read
nothing here. Nothing personal is stored in the rollups, so nothing personal can be shown:
hospitals by code and registered name, rules by ID, examples by receipt id or Kafka position.

The browser logs in once with its bearer token (`POST /ops/login`, a form, so the token is never
in a URL or an access log); it is kept in an HttpOnly, SameSite=Strict cookie that a small
middleware turns back into the `Authorization` header before authentication runs.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Any

import asyncpg
from aiohttp import web

from adapters.runtime.metrics import TOPIC_END_OFFSET, consumer_lags
from contracts import CST, LAG_BUCKETS, lag_percentile
from gateway.authn import REGISTRY, Handler, principal_of
from gateway.errors import http_error, json_response
from gateway.services import SERVICES

COOKIE = "dipgw_ops"
DIMENSIONS = ("及时性", "完整性", "规范性", "合理性")
SEVERITIES = ("reject", "warn")
GROUPINGS = ("hospital", "city", "day", "rule")
_STATIC = resources.files("gateway") / "ops_static"
_CODE = re.compile(r"H[0-9]{11}")
_CITY = re.compile(r"[0-9]{6}")


class BadQuery(ValueError):
    """A query parameter the report cannot use (answered 400, or exit 2 in the CLI)."""


def period(start: str | None, end: str | None, today: date | None = None) -> tuple[date, date]:
    """The report period, both days included; by default the last 7 days (CST)."""
    today = today or datetime.now(CST).date()
    try:
        last = date.fromisoformat(end) if end else today
        first = date.fromisoformat(start) if start else last - timedelta(days=6)
    except ValueError:
        raise BadQuery("from/to must be dates YYYY-MM-DD") from None
    if first > last or (last - first).days > 366:
        raise BadQuery("from must not be after to, and the period at most 366 days")
    return first, last


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _with_rates(row: dict[str, Any], hist: list[int], timely_days: int) -> dict[str, Any]:
    received, accepted, warned = row["received"], row["accepted"], row["warned"]
    known = sum(hist)
    row.update(
        pass_rate=_rate(accepted, received),  # 结算清单填写规范率: passed every reject rule
        clean_rate=_rate(accepted - warned, received),  # not even a warning
        reject_rate=_rate(row["rejected"], received),
        timely_rate=_rate(sum(hist[:timely_days]), known),  # 上传及时率
        lag_known=known,
        lag_p50_h=_round(lag_percentile(hist, 0.5)),
        lag_p90_h=_round(lag_percentile(hist, 0.9)),
        lag_p99_h=_round(lag_percentile(hist, 0.99)),
    )
    return row


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


_KEYS = {"hospital": "fixmedins_code", "city": "city", "day": "day"}
_WHERE = """day BETWEEN $1 AND $2 AND ($3::text IS NULL OR city = $3)
            AND ($4::text IS NULL OR fixmedins_code = $4)"""


async def report(
    pool: asyncpg.Pool,
    *,
    by: str,
    start: date,
    end: date,
    city: str | None = None,
    hospital: str | None = None,
    timely_days: int = 7,
) -> dict[str, Any]:
    """The quality report for a period, one row per hospital, city, day or rule."""
    if by not in GROUPINGS:
        raise BadQuery(f"by must be one of {', '.join(GROUPINGS)}")
    args = (start, end, city, hospital)
    head = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "by": by,
        "city": city,
        "hospital": hospital,
        "timely_days": timely_days,
    }
    if by == "rule":
        return {**head, "rows": await _rules(pool, args)}
    key = _KEYS[by]
    rows = await pool.fetch(
        f"""SELECT {key} AS key, min(city) AS city, count(DISTINCT fixmedins_code) AS hospitals,
                   sum(received)::int AS received, sum(accepted)::int AS accepted,
                   sum(rejected)::int AS rejected, sum(warned)::int AS warned,
                   sum(revisions)::int AS revisions, sum(resubmissions)::int AS resubmissions,
                   max(last_seen) AS last_seen
            FROM quality_daily WHERE {_WHERE} GROUP BY {key} ORDER BY {key}""",
        *args,
    )
    hists: dict[Any, list[int]] = defaultdict(lambda: [0] * LAG_BUCKETS)
    for r in await pool.fetch(
        f"""SELECT {key} AS key, i, sum(x)::int AS n
            FROM quality_daily, unnest(lag_hist) WITH ORDINALITY AS u(x, i)
            WHERE {_WHERE} GROUP BY {key}, i""",
        *args,
    ):
        hists[r["key"]][r["i"] - 1] = r["n"]
    dims: dict[Any, dict[str, dict[str, int]]] = defaultdict(
        lambda: {d: dict.fromkeys(SEVERITIES, 0) for d in DIMENSIONS}
    )
    for r in await pool.fetch(
        f"""SELECT {key} AS key, dimension, severity, sum(records)::int AS n
            FROM quality_dimension_daily WHERE {_WHERE} GROUP BY {key}, dimension, severity""",
        *args,
    ):
        dims[r["key"]].setdefault(r["dimension"], dict.fromkeys(SEVERITIES, 0))[r["severity"]] = r[
            "n"
        ]
    names: dict[str, str] = {}
    if by == "hospital" and rows:
        names = {
            r["fixmedins_code"]: r["name"]
            for r in await pool.fetch(
                "SELECT fixmedins_code, name FROM hospitals WHERE fixmedins_code = ANY($1)",
                [r["key"] for r in rows],
            )
        }
    out = []
    for r in rows:
        row = dict(r)
        k = row.pop("key")
        row = {key: k.isoformat() if isinstance(k, date) else k, **row}
        if by == "hospital":
            row["name"] = names.get(k, "")
            row.pop("hospitals")
        if by == "city":
            row.pop("city")
            row["city"] = k
        row["last_seen"] = row["last_seen"].isoformat() if row["last_seen"] else None
        row["dimensions"] = dims[k]
        out.append(_with_rates(row, hists[k], timely_days))
    return {**head, "rows": out}


async def _rules(pool: asyncpg.Pool, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    received = await pool.fetchval(
        f"SELECT coalesce(sum(received), 0)::int FROM quality_daily WHERE {_WHERE}", *args
    )
    rows = await pool.fetch(
        f"""SELECT rule, severity, min(dimension) AS dimension, sum(findings)::int AS findings,
                   sum(records)::int AS records, count(DISTINCT fixmedins_code) AS hospitals,
                   (array_agg(ex ORDER BY day DESC))[1:5] AS examples
            FROM quality_rule_daily
            LEFT JOIN LATERAL unnest(examples) AS ex ON true
            WHERE {_WHERE} GROUP BY rule, severity ORDER BY 5 DESC, rule""",
        *args,
    )
    # The lateral join repeats a row per example: count findings from the plain table.
    plain = {
        (r["rule"], r["severity"]): r
        for r in await pool.fetch(
            f"""SELECT rule, severity, sum(findings)::int AS findings,
                       sum(records)::int AS records FROM quality_rule_daily
                WHERE {_WHERE} GROUP BY rule, severity""",
            *args,
        )
    }
    out = []
    for r in rows:
        counts = plain[(r["rule"], r["severity"])]
        out.append(
            {
                "rule": r["rule"],
                "severity": r["severity"],
                "dimension": r["dimension"],
                "findings": counts["findings"],
                "records": counts["records"],
                "hospitals": r["hospitals"],
                "share": _rate(counts["records"], received),
                "examples": [e for e in r["examples"] if e],
            }
        )
    out.sort(key=lambda row: (-row["records"], row["rule"]))
    return out


async def alerts(
    pool: asyncpg.Pool, *, city: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """SELECT alert_key, kind, city, fixmedins_code, value, threshold, message, message_en,
                  raised_at FROM quality_alerts WHERE ($1::text IS NULL OR city = $1)
           ORDER BY raised_at DESC LIMIT $2""",
        city,
        limit,
    )
    return [{**dict(r), "raised_at": r["raised_at"].isoformat()} for r in rows]


async def pipeline(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Consumer lag per worker and topic: this process's own consumers as measured now, the
    other processes' as their quality evaluator last stored it."""
    now = datetime.now(CST).isoformat()
    here: dict[tuple[str, str], int] = defaultdict(int)
    for worker, topic, _, lag in consumer_lags():
        here[(worker, topic)] += lag
    rows = {
        (r["worker"], r["topic"]): {**dict(r), "at": r["at"].isoformat()}
        for r in await pool.fetch(
            """SELECT worker, topic, sum(lag)::bigint AS lag, max(at) AS at
               FROM quality_consumer_lag WHERE at > now() - interval '10 minutes'
               GROUP BY worker, topic"""
        )
    }
    for (worker, topic), lag in here.items():
        rows[(worker, topic)] = {"worker": worker, "topic": topic, "lag": lag, "at": now}
    return [rows[k] for k in sorted(rows)]


def topic_depth(topic: str) -> int | None:
    """Messages ever written to `topic` as this process's consumers last saw its end."""
    total, seen = 0, False
    for metric in TOPIC_END_OFFSET.collect():
        for sample in metric.samples:
            if sample.labels.get("topic") == topic:
                total, seen = total + int(sample.value), True
    return total if seen else None


def to_csv(result: dict[str, Any]) -> str:
    """One line per row; dimensions flattened to `<dimension>_<severity>` columns."""
    rows = result["rows"]
    buffer = io.StringIO()
    if not rows:
        return ""
    first = rows[0]
    columns = [c for c in first if c not in ("dimensions", "examples")]
    if "dimensions" in first:
        columns += [f"{d}_{s}" for d in DIMENSIONS for s in SEVERITIES]
    if "examples" in first:
        columns.append("examples")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        flat = dict(row)
        for d, by_sev in row.get("dimensions", {}).items():
            for s, n in by_sev.items():
                flat[f"{d}_{s}"] = n
        if "examples" in row:
            flat["examples"] = " ".join(row["examples"])
        writer.writerow(["" if flat.get(c) is None else flat.get(c) for c in columns])
    return buffer.getvalue()


# -- HTTP -----------------------------------------------------------------------------------


def _not_a_reader() -> web.Response:
    return http_error(403, "FORBIDDEN_ROLE", "仅运维与医保局可查看", "ops and city bureaus only")


def _scope(request: web.Request) -> tuple[str | None, str | None]:
    """(city, hospital) the caller may and asked to see; raises a ready HTTP error."""
    principal = principal_of(request)
    if principal.role not in ("ops", "city"):
        raise _Refused(_not_a_reader())
    city = request.query.get("city") or None
    hospital = request.query.get("hospital") or None
    if city is not None and not _CITY.fullmatch(city):
        raise BadQuery("city must be 6 digits")
    if hospital is not None and not _CODE.fullmatch(hospital):
        raise BadQuery("hospital must be H + 11 digits")
    if city is not None:
        city = f"{city[:4]}00"
    if principal.role == "city":
        own = f"{(principal.admdvs or '')[:4]}00"
        if city is not None and city != own:
            raise _Refused(_forbidden_region())
        city = own
    return city, hospital


def _forbidden_region() -> web.Response:
    return http_error(403, "FORBIDDEN_REGION", "无权查看其他地市", "not your city")


class _Refused(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


async def _hospital_city_ok(request: web.Request, hospital: str | None) -> bool:
    principal = principal_of(request)
    if hospital is None or principal.role == "ops":
        return True
    admdvs = await _pool(request).fetchval(
        "SELECT admdvs FROM hospitals WHERE fixmedins_code = $1", hospital
    )
    return principal.may_read_region(admdvs)


def _timely_days(request: web.Request) -> int:
    text = request.query.get("timely_days", "7")
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 15:
        raise BadQuery("timely_days must be 1..15")
    return int(text)


def _int(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise BadQuery("limit must be a whole number")
    return int(text)


def _today(request: web.Request) -> date:
    """Today on the gateway's clock (a report's default last day)."""
    return request.app[SERVICES].clock().astimezone(CST).date()


def _bad(exc: BadQuery) -> web.Response:
    return http_error(400, "BAD_QUERY", f"查询参数错误：{exc}", str(exc))


async def get_report(request: web.Request) -> web.StreamResponse:
    try:
        city, hospital = _scope(request)
        if not await _hospital_city_ok(request, hospital):
            return _forbidden_region()
        start, end = period(request.query.get("from"), request.query.get("to"), _today(request))
        result = await report(
            _pool(request),
            by=request.query.get("by", "hospital"),
            start=start,
            end=end,
            city=city,
            hospital=hospital,
            timely_days=_timely_days(request),
        )
    except _Refused as refused:
        return refused.response
    except BadQuery as exc:
        return _bad(exc)
    wants_csv = request.query.get("format") == "csv" or (
        "format" not in request.query and "text/csv" in request.headers.get("Accept", "")
    )
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


async def get_top_rules(request: web.Request) -> web.StreamResponse:
    try:
        city, hospital = _scope(request)
        if not await _hospital_city_ok(request, hospital):
            return _forbidden_region()
        start, end = period(request.query.get("from"), request.query.get("to"), _today(request))
        limit = _int(request.query.get("limit", "10"))
        severity = request.query.get("severity", "reject")
        if severity not in (*SEVERITIES, "all") or not 1 <= limit <= 100:
            raise BadQuery("severity is reject, warn or all; limit 1..100")
        result = await report(
            _pool(request), by="rule", start=start, end=end, city=city, hospital=hospital
        )
    except _Refused as refused:
        return refused.response
    except BadQuery as exc:
        return _bad(exc)
    rows = [r for r in result["rows"] if severity == "all" or r["severity"] == severity]
    return json_response(200, {**result, "rows": rows[:limit]})


async def get_alerts(request: web.Request) -> web.StreamResponse:
    try:
        city, _ = _scope(request)
        limit = _int(request.query.get("limit", "100"))
        if not 1 <= limit <= 1000:
            raise BadQuery("limit 1..1000")
    except _Refused as refused:
        return refused.response
    except BadQuery as exc:
        return _bad(exc)
    return json_response(200, {"alerts": await alerts(_pool(request), city=city, limit=limit)})


async def get_dashboard(request: web.Request) -> web.StreamResponse:
    """Everything the `/ops` page draws, in one answer."""
    try:
        city, hospital = _scope(request)
        start, end = period(request.query.get("from"), request.query.get("to"), _today(request))
    except _Refused as refused:
        return refused.response
    except BadQuery as exc:
        return _bad(exc)
    pool = _pool(request)
    common: dict[str, Any] = {"start": start, "end": end, "city": city, "hospital": hospital}
    by_day = await report(pool, by="day", **common)
    by_hospital = await report(pool, by="hospital", **common)
    by_rule = await report(pool, by="rule", **common)
    principal = principal_of(request)
    return json_response(
        200,
        {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "scope": {"role": principal.role, "city": city},
            "days": by_day["rows"],
            "hospitals": by_hospital["rows"],
            "rules": by_rule["rows"][:10],
            "pipeline": await pipeline(pool) if principal.role == "ops" else [],
            "rejected_depth": (
                topic_depth(request.app[SERVICES].rejected_topic)
                if principal.role == "ops"
                else None
            ),
            "alerts": await alerts(pool, city=city, limit=20),
        },
    )


async def get_page(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    if principal.role not in ("ops", "city"):
        return _not_a_reader()
    return web.Response(
        body=(_STATIC / "index.html").read_bytes(),
        content_type="text/html",
        charset="utf-8",
        headers=_PAGE_HEADERS,
    )


_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


async def get_static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    suffix = name[name.rfind(".") :]
    if suffix not in _TYPES or "/" in name or name.startswith("."):
        return http_error(404, "HTTP404", "未找到", "not found")
    asset = _STATIC / name
    if not asset.is_file():
        return http_error(404, "HTTP404", "未找到", "not found")
    return web.Response(
        body=asset.read_bytes(),
        content_type=_TYPES[suffix],
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )


_LOGIN_FORM = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>dipgw 运维登录</title><link rel="stylesheet" href="/ops/static/ops.css"></head>
<body class="login"><form method="post" action="/ops/login">
<h1>dipgw 数据质量监控</h1><p>{message}</p>
<label>运维令牌 / ops token<input type="password" name="token" autocomplete="off" required></label>
<button type="submit">登录</button></form></body></html>"""


async def _login(request: web.Request, secure: bool) -> web.StreamResponse:
    """GET: the form. POST: check the token; a good one becomes the session cookie."""
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if request.method in ("GET", "HEAD"):
        return web.Response(
            text=_LOGIN_FORM.format(message="请输入令牌（dipgw tokens issue --role ops）"),
            content_type="text/html",
            headers=headers,
        )
    if request.method != "POST":
        return http_error(405, "HTTP405", "方法不允许", "method not allowed")
    try:
        form = await request.post()
    except ValueError:
        return http_error(400, "BAD_FORM", "表单无法解析", "form cannot be parsed")
    token = str(form.get("token", "")).strip()
    principal = await request.app[REGISTRY].token(token) if token else None
    if principal is None or principal.role not in ("ops", "city"):
        return web.Response(
            status=401,
            text=_LOGIN_FORM.format(message="令牌无效 / token invalid or revoked"),
            content_type="text/html",
            headers=headers,
        )
    response = web.Response(status=303, headers={**headers, "Location": "/ops"})
    response.set_cookie(
        COOKIE,
        token,
        max_age=12 * 3600,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )
    return response


async def post_logout(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=303, headers={"Location": "/ops/login"})
    response.del_cookie(COOKIE, path="/")
    return response


@web.middleware
async def session_cookie(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The `/ops` session: login form, and the cookie presented as a bearer token."""
    path = request.path
    if not (path == "/ops" or path.startswith(("/ops/", "/v1/quality/"))):
        return await handler(request)
    if path.startswith("/ops/static/"):
        return await handler(request)
    if path == "/ops/login":
        return await _login(request, secure=request.secure)
    token = request.cookies.get(COOKIE)
    if "Authorization" not in request.headers and token:
        request = request.clone(headers={**request.headers, "Authorization": f"Bearer {token}"})
    elif "Authorization" not in request.headers and path == "/ops":
        return web.Response(status=303, headers={"Location": "/ops/login"})
    response = await handler(request)
    if path == "/ops" and response.status == 401:  # a revoked token: log in again
        response = web.Response(status=303, headers={"Location": "/ops/login"})
        response.del_cookie(COOKIE, path="/")
    return response


def _pool(request: web.Request) -> asyncpg.Pool:
    return request.app[SERVICES].pool


def _openapi() -> dict[str, Any]:
    from gateway.openapi import error_responses  # the app imports this module: at call time

    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "schema": schema,
            "description": description,
        }

    scope = [
        query("from", {"type": "string", "format": "date"}, "first day (CST); default to − 6"),
        query("to", {"type": "string", "format": "date"}, "last day (CST); default today"),
        query("city", {"type": "string", "pattern": "^[0-9]{6}$"}, "one city"),
        query("hospital", {"type": "string", "pattern": "^H[0-9]{11}$"}, "one hospital"),
    ]
    reader = [{"bearer": []}]
    rows = {
        "type": "object",
        "properties": {"rows": {"type": "array", "items": {"type": "object"}}},
    }

    def get(summary: str, parameters: list[dict[str, Any]], content: dict[str, Any]) -> Any:
        return {
            "get": {
                "summary": summary,
                "security": reader,
                "parameters": parameters,
                "responses": {
                    "200": {"description": "the report", "content": content},
                    **error_responses(400, 401, 403, 503),
                },
            }
        }

    json_rows = {"application/json": {"schema": rows}}
    return {
        "/v1/quality/report": get(
            "Ingestion quality for a period by hospital, city, day or rule (ops: all; a city "
            "bureau: its own city)",
            [
                *scope,
                query("by", {"enum": list(GROUPINGS)}, "one row per …; default hospital"),
                query("format", {"enum": ["json", "csv"]}, "or Accept: text/csv"),
                query("timely_days", {"type": "integer", "minimum": 1, "maximum": 15}, "及时"),
            ],
            {**json_rows, "text/csv": {"schema": {"type": "string"}}},
        ),
        "/v1/quality/top-rules": get(
            "The rules failing most lists, with example receipt ids",
            [
                *scope,
                query("severity", {"enum": ["reject", "warn", "all"]}, "default reject"),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "default 10"),
            ],
            json_rows,
        ),
        "/v1/quality/alerts": get(
            "Quality alerts raised, newest first",
            [
                query("city", {"type": "string", "pattern": "^[0-9]{6}$"}, "one city"),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 100"),
            ],
            {"application/json": {"schema": {"type": "object"}}},
        ),
        "/v1/quality/dashboard": get(
            "Everything the /ops page draws", scope[:3], {"application/json": {"schema": {}}}
        ),
    }


def add_routes(app: web.Application) -> None:
    from gateway.openapi import register_paths

    register_paths(_openapi())
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
