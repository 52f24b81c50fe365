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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from adapters import FORMATS
from adapters.runtime.logs import Throttle, get_logger
from adapters.runtime.metrics import (
    PRODUCE_SECONDS,
    RECORDS,
    REJECTIONS,
    UPLOAD_LAG,
)
from contracts import city_of
from contracts.messages import ENCODER, RejectedSettlement
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
from gateway.ingest import Receipt, Unavailable
from gateway.offload import FileWorkersUnavailable
from gateway.services import SERVICES, Services

log = get_logger("dipgw.http")


def _limit(request: web.Request, principal: Principal) -> web.Response | None:
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


def _charge_records(request: web.Request, principal: Principal, count: int) -> None:
    """Every record parsed costs its hospital, accepted or not: the checking is the work."""
    budgets = request.app[SERVICES].budgets
    budgets.records.charge(principal.fixmedins_code or "", time.monotonic(), count)


def _foreign(principal: Principal, checked: list[Checked | Rejected]) -> list[str]:
    """Positions of records the hospital may not submit: another institution or region.

    Checked before the contract's verdict: a list of another hospital is refused as such,
    valid or not.
    """
    bad = []
    for item in checked:
        if isinstance(item, Checked):
            code, area = item.upload.fixmedins_code, item.upload.mdtrtarea_admvs
        else:
            code, area = item.fixmedins_code, item.mdtrtarea_admvs
        if (code and code != principal.fixmedins_code) or (
            # an unknown area is the contract's to refuse (ADMDVS_UNKNOWN), not foreign
            area and (city := city_of(area)) is not None and city != city_of(principal.admdvs)
        ):
            bad.append(item.position)
    return bad


_STATUS = {entry.rule: entry.status for entry in refusals.CATALOGUE}


def _refused(whole: Rejected) -> web.Response:
    """A refusal of the whole request (nested too deeply, past a limit, unreadable, …): the
    catalogue's status of its findings (413, 422, 503 with Retry-After)."""
    status = max(_STATUS.get(error.rule, 422) for error in whole.errors)
    headers = {"X-Dipgw-Reason": whole.errors[0].rule}
    if status == 503:
        headers["Retry-After"] = "5"
    return problems_response(status, whole.errors, headers)


def _forbidden_foreign(positions: list[str]) -> web.Response:
    return http_error(refusals.FORBIDDEN_INSTITUTION, positions=", ".join(positions[:10]))


@dataclass
class _Outcome:
    position: str
    case_key: str | None
    receipt: Receipt | None = None
    errors: list[Any] | None = None
    warnings: list[Any] | None = None
    unavailable: bool = False

    @property
    def status(self) -> str:
        if self.unavailable:
            return "unavailable"
        if self.receipt is None:
            return "rejected"
        return "duplicate" if self.receipt.duplicate else "accepted"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"position": self.position, "status": self.status}
        if self.case_key:
            out["case_key"] = self.case_key
        if self.receipt is not None:
            out.update(receipt_id=str(self.receipt.receipt_id), revision=self.receipt.revision)
        if self.errors:
            out["errors"] = self.errors
        if self.warnings:
            out["warnings"] = self.warnings
        return out


async def _ingest(
    request: web.Request,
    principal: Principal,
    checked: list[Checked | Rejected],
    received_at: datetime,
) -> list[_Outcome]:
    services = request.app[SERVICES]
    hospital = principal.fixmedins_code or ""
    outcomes: list[_Outcome] = []
    good: list[tuple[_Outcome, Checked]] = []
    for item in checked:
        if isinstance(item, Rejected):
            outcomes.append(_Outcome(item.position, item.case_key, errors=item.errors))
            RECORDS.labels("rejected", hospital).inc()
            for error in item.errors:
                REJECTIONS.labels(hospital, error.rule, error.dimension).inc()
        else:
            outcome = _Outcome(
                item.position, item.upload.case_key, warnings=list(item.upload.warnings) or None
            )
            outcomes.append(outcome)
            good.append((outcome, item))
    if not good:
        await consume_deferred_nonce(request)
    else:
        started = time.perf_counter()
        results = await services.ingestor.submit_many(
            [c.upload for _, c in good], received_at, nonce=request.pop(DEFERRED_NONCE, None)
        )
        PRODUCE_SECONDS.observe(time.perf_counter() - started)
        for (outcome, item), result in zip(good, results, strict=True):
            if isinstance(result, Unavailable):
                outcome.unavailable = True
                continue
            outcome.receipt = result
            RECORDS.labels("duplicate" if result.duplicate else "accepted", hospital).inc()
            if not result.duplicate and item.discharged_at is not None:
                UPLOAD_LAG.observe((received_at - item.discharged_at).total_seconds())
    rejected = [item for item in checked if isinstance(item, Rejected)]
    if rejected and not await _publish_rejections(services, hospital, rejected, received_at):
        # A rejection quality never counts would make the hospital's figures lie: the
        # verdict is withheld (503, retry) rather than given without its record.
        for outcome in outcomes:
            if outcome.receipt is None and not outcome.unavailable:
                outcome.unavailable = True
    return outcomes


# Why rejections could not be recorded, logged once per cause every few seconds.
_REJECTED_WRITE_LOG = Throttle(10.0)


async def _publish_rejections(
    services: Services, hospital: str, rejected: list[Rejected], received_at: datetime
) -> bool:
    """Rejections go to their topic (personal fields masked) for the quality worker and ops;
    False if Kafka did not take them all within the request's Kafka timeout."""

    async def write() -> None:
        futures = [
            await services.producer.send(
                services.rejected_topic,
                key=(item.case_key or hospital).encode(),
                value=ENCODER.encode(
                    RejectedSettlement(
                        fixmedins_code=hospital,
                        case_key=item.case_key,
                        position=item.position,
                        received_at=received_at,
                        errors=item.errors,
                        document=msgspec.Raw(ENCODER.encode(item.masked_document)),
                    )
                ),
            )
            for item in rejected
        ]
        await asyncio.gather(*futures)

    try:
        await asyncio.wait_for(write(), services.kafka_timeout_s)
    except Exception as exc:
        cause = type(exc).__name__
        held = _REJECTED_WRITE_LOG.admit(cause)
        if held is not None:
            log.warning("rejected_topic.write_failed", error=cause, count=len(rejected), also=held)
        return False
    return True


async def post_settlement(request: web.Request) -> web.StreamResponse:
    """One settlement list (the national envelope document) → 202 with its receipt."""
    received_at = request.app[SERVICES].clock()
    principal = require_hospital(request)
    if isinstance(principal, web.Response):
        return principal
    if request.content_type != "application/json":
        return http_error(refusals.HTTP415, allowed="application/json")
    if (limited := _limit(request, principal)) is not None:
        return limited
    _charge_records(request, principal, 1)
    try:
        checked = request.app[SERVICES].checker.check_one(await request.read(), received_at)
    except Rejected as whole:
        return _refused(whole)
    if foreign := _foreign(principal, [checked]):
        return _forbidden_foreign(foreign)
    (outcome,) = await _ingest(request, principal, [checked], received_at)
    if outcome.status == "rejected":
        return problems_response(422, outcome.errors or [])
    if outcome.unavailable:
        return http_error(refusals.SYS_UNAVAILABLE, headers={"Retry-After": "5"})
    return json_response(202, outcome.as_json())


def _batch_response(outcomes: list[_Outcome]) -> web.Response:
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
    if (limited := _limit(request, principal)) is not None:
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
        return _refused(whole)
    except FileWorkersUnavailable:
        return http_error(refusals.SYS_UNAVAILABLE, headers={"Retry-After": "5"})
    _charge_records(request, principal, len(checked))
    if foreign := _foreign(principal, checked):
        return _forbidden_foreign(foreign)
    return _batch_response(await _ingest(request, principal, checked, received_at))


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
