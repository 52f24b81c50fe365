"""The national transactions: 4101/4101A (upload), 4102 (status change), 4103 (query), on
`POST /fsi/api/{infno}` and on the one service address `POST /fsi/api` that dispatches on
the body's `infno`; answered in the national shape (docs/national.md).

Business outcomes answer HTTP 200 with `infcode` 0 or -1, as the national platform does, so
a HIS built for it needs no change; only 'retry later' is 503. Refusals of the request
itself (authentication, limits, content type, a body too deep to read) keep the gateway's
error shape, as on every route.

`?dry_run=1` checks without storing or sending (the query is part of the signed string, so
no one on the way can turn a check into an upload); the national envelope has no field for it.

4102 maps the national status onto revisions: a change is a new revision of the list, its
stored document with `setlinfo.stas_type` set, sent through the ingest path like an upload.
The sink stores it as the case's latest revision, so every reader of the case (4103, city
bureaus, grouping and scoring) sees one list with its current status, never two.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
from aiohttp import web

from contracts import Problem
from contracts.messages import ENCODER, status_revision_sha256
from gateway import national, openapi, params, refusals
from gateway.accounts import Principal
from gateway.authn import DEFERRED_NONCE, consume_deferred_nonce, require_hospital
from gateway.checks import Checked, Rejected, too_deep
from gateway.errors import http_error, json_response
from gateway.ingest import Receipt, Unavailable, Upload
from gateway.routes_ingest import (
    charge_records,
    forbidden_foreign,
    foreign_records,
    ingest_request,
    limit_request,
    refused_response,
)
from gateway.services import SERVICES

DRY_RUN_HEADER = "X-Dipgw-Dry-Run"


@dataclass
class _Call:
    """One national request, authenticated and read."""

    request: web.Request
    principal: Principal
    infno: str
    body: bytes
    dry_run: bool
    received_at: datetime

    def answer(self, status: int = 200, **kw: Any) -> web.Response:
        services = self.request.app[SERVICES]
        headers = {DRY_RUN_HEADER: "1"} if self.dry_run else {}
        if status == 503:
            headers["Retry-After"] = "5"
            kw.setdefault("errors", ["暂时无法受理，请稍后重试"])
        body = national.national_response(
            self.received_at, admdvs=self.principal.admdvs, responded_at=services.clock(), **kw
        )
        return json_response(status, body, headers)


async def post_national(request: web.Request) -> web.StreamResponse:
    """`POST /fsi/api/{infno}`: the transaction the path names."""
    return await _serve(request, request.match_info["infno"])


async def post_service(request: web.Request) -> web.StreamResponse:
    """`POST /fsi/api`: the one service address, dispatching on the body's `infno`."""
    return await _serve(request, None)


async def _serve(request: web.Request, infno: str | None) -> web.StreamResponse:
    received_at = request.app[SERVICES].clock()
    principal = require_hospital(request)
    if isinstance(principal, web.Response):
        return principal
    if request.content_type not in ("application/json", "text/plain"):
        return http_error(refusals.HTTP415, allowed="application/json")
    dry_run = params.choice(request.query.get("dry_run"), "dry_run", ("0", "1"), default="0")
    if (limited := limit_request(request, principal)) is not None:
        return limited
    body = await request.read()
    call = _Call(request, principal, infno or "", body, dry_run == "1", received_at)
    if infno is None:
        try:
            given = national.infno_of(call.body)
        except RecursionError:
            return refused_response(too_deep())
        except msgspec.ValidationError as exc:
            return await _refuse(call, [national.NAT_INPUT.problem("$", detail=exc)])
        except msgspec.DecodeError as exc:
            return await _refuse(call, [refusals.DEC_JSON.problem(detail=exc)])
        if given not in national.TRANSACTIONS:
            shown = "(none)" if given is None else repr(given[:16])  # the caller's text, cut
            supported = ", ".join(national.TRANSACTIONS)
            problem = national.NAT_INFNO.problem(given=shown, supported=supported)
            return await _refuse(call, [problem])
        call.infno = given
    try:
        if call.infno in national.UPLOADS:
            return await _upload(call)
        if call.infno == "4102":
            return await _status(call)
        return await _query(call)
    except Rejected as whole:  # a body nested too deeply to read: the request is refused
        return refused_response(whole)


async def _refuse(call: _Call, problems: list[Problem]) -> web.Response:
    """A business refusal: nothing changes; the request's nonce is spent all the same."""
    await consume_deferred_nonce(call.request)
    return call.answer(errors=problems)


# -- 4101 / 4101A --------------------------------------------------------------------------


async def _upload(call: _Call) -> web.StreamResponse:
    request, principal = call.request, call.principal
    services = request.app[SERVICES]
    charge_records(request, principal, 1)
    try:
        checked = services.checker.check_one(call.body, call.received_at, infno=call.infno)
    except Rejected as whole:  # a refusal of the request, in the gateway's shape (like 413)
        return refused_response(whole)
    if foreign := foreign_records(principal, [checked]):
        return forbidden_foreign(foreign)
    if call.dry_run:
        # Checked only: no receipt, no Kafka record, no rejection for quality to count.
        await consume_deferred_nonce(request)
        if isinstance(checked, Rejected):
            return call.answer(errors=checked.errors)
        assert isinstance(checked, Checked)
        output = {"data": {"dry_run": True, "case_key": checked.upload.case_key}}
        return call.answer(output=output, warnings=list(checked.upload.warnings))
    (outcome,) = await ingest_request(request, principal, [checked], call.received_at)
    if outcome.unavailable:
        return call.answer(503)
    if outcome.receipt is None:
        return call.answer(errors=outcome.errors or [])
    return call.answer(receipt=outcome.receipt, warnings=outcome.warnings or [])


# -- 4102 and 4103: the hospital's own stored lists ----------------------------------------


def _decode(call: _Call, kind: type[Any]) -> tuple[Any, list[Problem]]:
    """The body as `kind`, and the envelope's problems (wrong infno, another hospital)."""
    try:
        decoded = msgspec.json.decode(call.body, type=kind)
    except RecursionError:
        raise too_deep() from None
    except msgspec.ValidationError as exc:  # (a subclass of DecodeError: test it first)
        return None, [national.NAT_INPUT.problem("$", detail=exc)]
    except msgspec.DecodeError as exc:
        return None, [refusals.DEC_JSON.problem(detail=exc)]
    problems = []
    if decoded.infno not in (None, call.infno):
        problems.append(refusals.ENV_INFNO.problem(given=repr(decoded.infno), infno=call.infno))
    return decoded, problems


@dataclass
class _Stored:
    """A hospital's stored list: the case row, and whether a newer revision is on its way."""

    revision: int
    receipt_id: uuid.UUID
    mdtrtarea_admvs: str
    insuplc_admdvs: str | None
    record: dict[str, Any]


async def _stored(
    pool: asyncpg.Pool, code: str, setl_ids: list[str]
) -> tuple[dict[str, _Stored], set[str]]:
    """The stored lists of `setl_ids`, and those with a newer revision accepted (or being
    sent) than the one stored: the sink has not stored it yet, so a change must wait."""
    rows = await pool.fetch(
        """SELECT setl_id, revision, receipt_id, mdtrtarea_admvs, insuplc_admdvs,
                  record::text AS record
           FROM cases WHERE fixmedins_code = $1 AND setl_id = ANY($2::text[])""",
        code,
        setl_ids,
    )
    newest = await pool.fetch(
        """SELECT setl_id, max(revision) AS revision FROM receipts
           WHERE fixmedins_code = $1 AND setl_id = ANY($2::text[])
             AND (status <> 'pending' OR lease_until > now())
           GROUP BY setl_id""",
        code,
        setl_ids,
    )
    stored = {
        r["setl_id"]: _Stored(
            r["revision"],
            r["receipt_id"],
            r["mdtrtarea_admvs"],
            r["insuplc_admdvs"],
            msgspec.json.decode(r["record"]),
        )
        for r in rows
    }
    behind = {
        r["setl_id"]
        for r in newest
        if r["setl_id"] not in stored or r["revision"] > stored[r["setl_id"]].revision
    }
    return stored, behind


def _not_found(setl_id: str, field: str) -> Problem:
    # The same answer for "absent" and "another hospital's": nothing leaks about others.
    return refusals.NOT_FOUND.problem(
        field, what=f"settlement list {setl_id}", what_cn=f"结算清单 {setl_id}"
    )


def _psn_matches(row: national.StatusChange, record: dict[str, Any]) -> bool:
    stored = ((record.get("input") or {}).get("setlinfo") or {}).get("psn_no")
    return not stored or str(stored) == row.psn_no


def _envelope_problems(call: _Call, decoded: Any) -> web.Response | None:
    if decoded is not None and decoded.fixmedins_code not in (
        None,
        "",
        call.principal.fixmedins_code,
    ):
        return forbidden_foreign(["fixmedins_code"])
    return None


async def _status(call: _Call) -> web.StreamResponse:
    """4102: withdraw (0) or re-submit (1) lists, all or none."""
    request, principal = call.request, call.principal
    services = request.app[SERVICES]
    decoded, problems = _decode(call, national.StatusRequest)
    if (forbidden := _envelope_problems(call, decoded)) is not None:
        return forbidden
    rows: list[national.StatusChange] = []
    if decoded is not None:
        rows, found = national.status_rows(decoded, services.batch_max_records)
        problems += found
    charge_records(request, principal, max(1, len(rows)))
    if problems:
        return await _refuse(call, problems)
    code = principal.fixmedins_code or ""
    stored, behind = await _stored(services.pool, code, [r.setl_id for r in rows])
    if behind & {r.setl_id for r in rows}:
        await consume_deferred_nonce(request)
        return call.answer(503)
    uploads = []
    for i, row in enumerate(rows):
        at = f"input.data.stastinfo[{i}]"
        case = stored.get(row.setl_id)
        if case is None:
            problems.append(_not_found(row.setl_id, f"{at}.setl_id"))
            continue
        if not _psn_matches(row, case.record):
            problems.append(national.NAT_PSN.problem(f"{at}.psn_no", setl_id=row.setl_id))
            continue
        current = national.status_of(case.record)
        refused = national.refused_change(row.setl_id, current, row.stas_type, f"{at}.stas_type")
        if refused is not None:
            problems.append(refused)
            continue
        uploads.append(
            Upload(
                fixmedins_code=code,
                setl_id=row.setl_id,
                mdtrtarea_admvs=case.mdtrtarea_admvs,
                insuplc_admdvs=case.insuplc_admdvs,
                content_sha256=status_revision_sha256(str(case.receipt_id), row.stas_type),
                document=ENCODER.encode(national.with_status(case.record, row.stas_type)),
            )
        )
    if problems:
        return await _refuse(call, problems)
    if call.dry_run:
        await consume_deferred_nonce(request)
        data = [{"setl_id": r.setl_id, "stas_type": r.stas_type, "dry_run": True} for r in rows]
        return call.answer(output={"data": data})
    results = await services.ingestor.submit_many(
        uploads, call.received_at, nonce=request.pop(DEFERRED_NONCE, None)
    )
    if any(isinstance(result, Unavailable) for result in results):
        return call.answer(503)
    data = []
    # A status change is not a list received: dipgw_records_total does not count it.
    for row, result in zip(rows, results, strict=True):
        assert isinstance(result, Receipt)
        data.append(
            {
                "setl_id": row.setl_id,
                "stas_type": row.stas_type,
                "setl_list_id": str(result.receipt_id),
                "revision": result.revision,
            }
        )
    return call.answer(output={"data": data})


async def _query(call: _Call) -> web.StreamResponse:
    """4103: the hospital's own list as stored (its latest revision), in 4103's shape."""
    request, principal = call.request, call.principal
    decoded, problems = _decode(call, national.QueryRequest)
    if (forbidden := _envelope_problems(call, decoded)) is not None:
        return forbidden
    row = None
    if decoded is not None:
        row, found = national.query_row(decoded)
        problems += found
    await consume_deferred_nonce(request)  # a query changes nothing: its nonce is spent now
    if problems or row is None:
        return call.answer(errors=problems)
    pool = request.app[SERVICES].pool
    stored, _ = await _stored(pool, principal.fixmedins_code or "", [row.setl_id])
    case = stored.get(row.setl_id)
    if case is None:
        return call.answer(errors=[_not_found(row.setl_id, "input.data.setl_id")])
    if not _psn_matches(row, case.record):
        return call.answer(
            errors=[national.NAT_PSN.problem("input.data.psn_no", setl_id=row.setl_id)]
        )
    return call.answer(output=national.query_output(case.record))


# -- routes and their description ----------------------------------------------------------

ROUTE = r"/fsi/api/{infno:4101A?|410[23]}"
SERVICE_ADDRESS = "/fsi/api"


def add_routes(app: web.Application) -> None:
    app.router.add_post(ROUTE, post_national)
    app.router.add_post(SERVICE_ADDRESS, post_service)
    openapi.register_paths(_openapi())


_EXAMPLE_ENVELOPE = {
    "msgid": "H44010000001202611240930001234",
    "mdtrtarea_admvs": "440100",
    "insuplc_admdvs": "440300",
    "recer_sys_code": "DIPGW",
    "infver": "V1.0",
    "opter_type": "1",
    "opter": "01",
    "opter_name": "收费员",
    "inf_time": "2026-11-24 09:30:00",
    "fixmedins_code": "H44010000001",
    "fixmedins_name": "广州市第一人民医院",
}
_EXAMPLE_4102 = {
    "infno": "4102",
    **_EXAMPLE_ENVELOPE,
    "input": {
        "data": {
            "stastinfo": [{"psn_no": "44030000000063472646", "setl_id": "S0001", "stas_type": "0"}]
        }
    },
}
_EXAMPLE_4103 = {
    "infno": "4103",
    **_EXAMPLE_ENVELOPE,
    "input": {"data": {"psn_no": "44030000000063472646", "setl_id": "S0001"}},
}
_ANSWER = {
    "infcode": 0,
    "inf_refmsgid": "440100202611240930000000000001",
    "refmsg_time": "20261124093000125",
    "respond_time": "20261124093000164",
    "err_msg": "",
    "warn_msg": "",
}
_ANSWER_4102 = {
    **_ANSWER,
    "output": {
        "data": [
            {
                "setl_id": "S0001",
                "stas_type": "0",
                "setl_list_id": "0d6f8b1e-7c1a-4c55-9a51-3f7f2b8e4a10",
                "revision": 2,
            }
        ]
    },
}
_ANSWER_4103 = {
    **_ANSWER,
    "output": {
        "setlinfo": {"setl_id": "S0001", "fixmedins_code": "H44010000001", "stas_type": "1"},
        **{node: [] for node in national.QUERY_NODES[1:]},
    },
}


def _text(max_length: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length}


def _request_schema(infno: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"The national request envelope of {infno} (docs/national.md)",
        "required": ["input"],
        "properties": {
            "infno": {"type": "string", "enum": [infno]},
            "fixmedins_code": {"type": "string", "pattern": "^H[0-9]{11}$"},
            "input": {"type": "object", "required": ["data"], "properties": {"data": data}},
        },
    }


_ROW = {
    "type": "object",
    "required": list(national.QUERY_INPUT),
    "properties": {"psn_no": _text(30), "setl_id": _text(30)},
}
_STATUS_ROW = {
    "type": "object",
    "required": list(national.STATUS_INPUT),
    "properties": {**_ROW["properties"], "stas_type": {"type": "string", "enum": ["0", "1"]}},
}
_SCHEMA_4102 = _request_schema(
    "4102",
    {
        "type": "object",
        "required": ["stastinfo"],
        "properties": {
            "stastinfo": {"oneOf": [{"type": "array", "items": _STATUS_ROW}, _STATUS_ROW]}
        },
    },
)
_SCHEMA_4103 = _request_schema("4103", _ROW)
_NATIONAL_ANSWER = {
    "type": "object",
    "description": "The national response envelope: infcode 0 done, -1 refused (err_msg, "
    "output.errors); times yyyyMMddHHmmssSSS in China Standard Time (+08:00)",
    "required": ["infcode", "inf_refmsgid", "refmsg_time", "respond_time", "err_msg", "output"],
    "properties": {
        "infcode": {"type": "integer", "enum": [0, -1]},
        "inf_refmsgid": _text(30),
        "refmsg_time": {"type": "string", "pattern": "^[0-9]{17}$"},
        "respond_time": {"type": "string", "pattern": "^[0-9]{17}$"},
        "err_msg": {"type": "string"},
        "warn_msg": {"type": "string"},
        "output": {"type": ["object", "null"]},
    },
}
_DRY_RUN = {
    "name": "dry_run",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["0", "1"]},
    "description": "1: check only; nothing is stored or sent (the answer carries "
    f"{DRY_RUN_HEADER}: 1)",
}


def _operation(
    operation_id: str, summary: str, schema: dict[str, Any], example: Any, answer: Any
) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation_id,
            "tags": ["national"],
            "summary": summary,
            "security": [{"hmac": []}, {"mtls": []}],
            "parameters": [_DRY_RUN],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": schema, "example": example}},
            },
            "responses": {
                "200": {
                    "description": "infcode 0 done, -1 refused (the errors in err_msg and "
                    "output.errors)",
                    "content": {
                        "application/json": {"schema": _NATIONAL_ANSWER, "example": answer}
                    },
                },
                "503": {
                    "description": "Retry later (Retry-After): infcode -1 in the national "
                    "shape, or the gateway's error list",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **openapi.error_responses(400, 401, 403, 413, 415, 422, 429),
            },
        }
    }


def _openapi() -> dict[str, Any]:
    envelope = {
        "type": "object",
        "description": "Any national request envelope this address serves (4101, 4101A, "
        "4102, 4103): dispatched on `infno`; an unknown one answers infcode -1 (NAT_INFNO)",
        "required": ["infno", "input"],
        "properties": {
            "infno": {"type": "string", "enum": list(national.TRANSACTIONS)},
            "input": {"type": "object"},
        },
    }
    return {
        SERVICE_ADDRESS: _operation(
            "callNationalService",
            "The one national service address: 4101, 4101A, 4102 or 4103 by the body's infno",
            envelope,
            _EXAMPLE_4103,
            _ANSWER_4103,
        ),
        "/fsi/api/4102": _operation(
            "changeListStatus",
            "4102: withdraw (stas_type 0) or re-submit (1) settlement lists, all or none",
            _SCHEMA_4102,
            _EXAMPLE_4102,
            _ANSWER_4102,
        ),
        "/fsi/api/4103": _operation(
            "queryList",
            "4103: the hospital's own settlement list as stored, in 4103's output shape",
            _SCHEMA_4103,
            _EXAMPLE_4103,
            _ANSWER_4103,
        ),
    }
