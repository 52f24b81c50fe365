"""Upload handlers: one list, a batch, a file, the national 4101/4101A call.

Each decodes and checks with `gateway.checks`, refuses another hospital's lists (403)
before any data verdict, then hands the good lists to the ingestor and answers per record.
JSON bodies are checked on the loop (the hot path: microseconds a record, and nesting too
deep to read is refused at the parser's first levels); file uploads are parsed and checked in
the file workers (`gateway.offload`), so that no spreadsheet, however hostile, holds up the
loop: the health check answers while one is refused.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from aiohttp import web

from adapters import FORMATS
from adapters.runtime import stages
from adapters.runtime.logs import get_logger
from gateway import refusals
from gateway.accounts import Principal
from gateway.authn import (
    DEFERRED_NONCE,
    consume_deferred_nonce,
    require_hospital,
)
from gateway.checks import Checked, Checker, Rejected
from gateway.errors import (
    http_error,
    json_response,
    problems_response,
    rate_limited,
)
from gateway.intake import Outcome, foreign_positions, take
from gateway.offload import FileWorkersUnavailable
from gateway.services import SERVICES

log = get_logger("dipgw.http")


def limit_request(request: web.Request, principal: Principal) -> web.Response | None:
    """The hospital's budgets, before its body is looked at: a request, its declared bytes,
    and being in credit for records (charged by `_charge_records` once they are counted)."""
    budgets = request.app[SERVICES].budgets
    code, now = principal.fixmedins_code or "", time.monotonic()
    if wait := budgets.records.admit(code, now):
        return rate_limited(wait, "记录数", "records")
    if wait := budgets.requests.take(code, now):
        return rate_limited(wait, "请求数", "requests")
    if wait := budgets.bytes.admit(code, now, request.content_length or 0):
        return rate_limited(wait, "上传字节数", "bytes")
    return None


def charge_records(request: web.Request, principal: Principal, count: int) -> None:
    """Every record parsed costs its hospital, accepted or not: the checking is the work."""
    budgets = request.app[SERVICES].budgets
    budgets.records.charge(principal.fixmedins_code or "", time.monotonic(), count)


def foreign_records(principal: Principal, checked: list[Checked | Rejected]) -> list[str]:
    """Positions of records this hospital may not submit (`gateway.intake.foreign_positions`)."""
    return foreign_positions({principal.fixmedins_code or "": principal.admdvs}, checked)


_STATUS = {entry.rule: entry.status for entry in refusals.CATALOGUE}


def refused_response(whole: Rejected) -> web.Response:
    """A refusal of the whole request (nested too deeply, past a limit, unreadable, …): the
    catalogue's status of its findings (413, 422, 503 with Retry-After)."""
    status = max(_STATUS.get(error.rule, 422) for error in whole.errors)
    headers = {"X-Dipgw-Reason": whole.errors[0].rule}
    if status == 503:
        headers["Retry-After"] = "5"
    return problems_response(status, whole.errors, headers)


def forbidden_foreign(positions: list[str]) -> web.Response:
    return http_error(refusals.FORBIDDEN_INSTITUTION, positions=", ".join(positions[:10]))


async def ingest_request(
    request: web.Request,
    principal: Principal,
    checked: list[Checked | Rejected],
    received_at: datetime,
) -> list[Outcome]:
    """`gateway.intake.take` for a signed or token request: its nonce is recorded with the
    reservation (or on its own when nothing is reserved)."""
    stages.stage_done("validation")  # the body read and every record checked
    if not any(isinstance(item, Checked) for item in checked):
        await consume_deferred_nonce(request)
    return await take(
        request.app[SERVICES],
        principal.fixmedins_code or "",
        checked,
        received_at,
        nonce=request.pop(DEFERRED_NONCE, None),
    )


async def post_settlement(request: web.Request) -> web.StreamResponse:
    """One settlement list (the national envelope document) → 202 with its receipt."""
    received_at = request.app[SERVICES].clock()
    principal = require_hospital(request)
    if isinstance(principal, web.Response):
        return principal
    if request.content_type != "application/json":
        return http_error(refusals.HTTP415, allowed="application/json")
    if (limited := limit_request(request, principal)) is not None:
        return limited
    charge_records(request, principal, 1)
    try:
        checked = request.app[SERVICES].checker.check_one(await request.read(), received_at)
    except Rejected as whole:
        return refused_response(whole)
    if foreign := foreign_records(principal, [checked]):
        return forbidden_foreign(foreign)
    (outcome,) = await ingest_request(request, principal, [checked], received_at)
    if outcome.status == "rejected":
        return problems_response(422, outcome.errors or [])
    if outcome.unavailable:
        return http_error(refusals.SYS_UNAVAILABLE, headers={"Retry-After": "5"})
    return json_response(202, outcome.as_json())


def _batch_response(outcomes: list[Outcome]) -> web.Response:
    counts = {k: 0 for k in ("accepted", "duplicate", "rejected", "unavailable")}
    for outcome in outcomes:
        counts[outcome.status] += 1
    body = {**counts, "results": [o.as_json() for o in outcomes]}
    if counts["unavailable"]:
        # Safe to resend the whole batch: accepted lists come back as duplicates.
        return json_response(503, body, {"Retry-After": "5"})
    return json_response(200, body)


async def _post_many(request: web.Request, decode: str) -> web.StreamResponse:
    received_at = request.app[SERVICES].clock()
    principal = require_hospital(request)
    if isinstance(principal, web.Response):
        return principal
    services = request.app[SERVICES]
    if (limited := limit_request(request, principal)) is not None:
        return limited
    body = await request.read()
    try:
        if decode == "batch":
            checked = await check_sliced(
                services.checker, body, received_at, services.batch_max_records
            )
        else:  # a file: parsed and checked in a worker process, off the loop
            checked = await services.files.check(
                body, decode, received_at, max_records=services.batch_max_records
            )
    except Rejected as whole:
        return refused_response(whole)
    except FileWorkersUnavailable:
        return http_error(refusals.SYS_UNAVAILABLE, headers={"Retry-After": "5"})
    charge_records(request, principal, len(checked))
    if foreign := foreign_records(principal, checked):
        return forbidden_foreign(foreign)
    return _batch_response(await ingest_request(request, principal, checked, received_at))


_SLICE_RECORDS = 32
"""Records checked between two turns of the event loop (about 1–3 ms of validation): a
1,000-record batch never holds up another request, a health check included."""


async def check_sliced(
    checker: Checker, body: bytes, received_at: datetime, max_records: int
) -> list[Checked | Rejected]:
    """`Checker.check_many` of a JSON batch, giving the loop a turn between slices."""
    parts = checker.split(body, "batch", max_records)
    checked: list[Checked | Rejected] = []
    for start in range(0, len(parts), _SLICE_RECORDS):
        if start:
            await asyncio.sleep(0)
        checked.extend(
            checker.check_raw(raw, position, received_at)
            for position, raw in parts[start : start + _SLICE_RECORDS]
        )
    return checked


# The file endpoint's content types: every registered feed format's (adapters.FORMATS).
_FILE_TYPES = FORMATS


async def post_batch(request: web.Request) -> web.StreamResponse:
    """`{"records": [document, …]}` → 200 with a result per record."""
    if request.content_type != "application/json":
        return http_error(refusals.HTTP415, allowed="application/json")
    return await _post_many(request, "batch")


async def post_file(request: web.Request) -> web.StreamResponse:
    """An upload in any registered feed format (JSON, NDJSON, CSV, XLSX, …) → 200 with a
    result per record."""
    fmt = _FILE_TYPES.by_media_type(request.content_type)
    if fmt is None:
        return http_error(refusals.HTTP415, allowed=", ".join(_FILE_TYPES.media_types()))
    return await _post_many(request, fmt.name)
