"""Checking without sending: `POST /v1/settlements/validate`, and the 1901 dictionaries.

A HIS integrator's first hour is spent getting lists accepted; FHIR has `$validate` for
this. The validate endpoint takes the bodies of `POST /v1/settlements` (one envelope) or of
`POST /v1/settlements/batch` (`{"records": [...]}`: a body whose top-level object has
`records` is a batch), with the same signature, budgets and checks — the upload handlers' own
(`gateway.routes_ingest`), so its verdict is the upload's — and stores, reserves, sends and
counts nothing: no receipt, no Kafka message (accepted or rejected topic), no
`dipgw_records_total`. It costs the hospital's request, byte and record budgets like an
upload, so validating is no way around them; its nonce is spent like any other.

The answer is 200 with `{"valid", "errors", "warnings"}` (the one error shape; per record for
a batch). What refuses the request as a whole answers as the upload would (401, 403 for
another hospital's list, 413, 415, 422 JSON_TOO_DEEP, 429).

`GET /v1/dictionaries` and `GET /v1/dictionaries/{name}` serve the 1901 code sets a
DICT_VALUE error points to, for any authenticated caller (hospital, city, ops: the codes are
public national data, but the gateway serves nobody anonymous beyond health and its
descriptions).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from aiohttp import web

from contracts import Dictionaries, Problem
from gateway import openapi, refusals
from gateway.authn import consume_deferred_nonce, require_hospital
from gateway.checks import Checked, Rejected
from gateway.errors import http_error, json_response
from gateway.routes_ingest import (
    charge_records,
    check_sliced,
    forbidden_foreign,
    foreign_records,
    limit_request,
    refused_response,
)
from gateway.services import SERVICES

PATH = "/v1/settlements/validate"
DICTIONARIES = "/v1/dictionaries"


# -- the answers ---------------------------------------------------------------------------


class Validated(msgspec.Struct, kw_only=True):
    """One list's verdict, as the upload would give it, nothing stored or sent."""

    valid: bool
    case_key: str | None = None
    errors: list[Problem]
    warnings: list[Problem]


class ValidatedRecord(Validated, kw_only=True):
    position: str


class ValidatedBatch(msgspec.Struct, kw_only=True):
    """A batch's verdicts: `valid` when every record is."""

    valid: bool
    records: int
    invalid: int
    results: list[ValidatedRecord]


def _verdict(item: Checked | Rejected) -> dict[str, Any]:
    if isinstance(item, Checked):
        return {
            "position": item.position,
            "valid": True,
            "case_key": item.upload.case_key,
            "errors": [],
            "warnings": list(item.upload.warnings),
        }
    out: dict[str, Any] = {"position": item.position, "valid": False}
    if item.case_key:
        out["case_key"] = item.case_key
    return {**out, "errors": item.errors, "warnings": []}


class _Shape(msgspec.Struct):
    """Only whether the body's top-level object has `records` (its value is not read)."""

    records: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


_SHAPE = msgspec.json.Decoder(_Shape)


def _is_batch(body: bytes) -> bool:
    """A JSON object with `records`: a batch. Anything else (not JSON, not an object, too
    deep to read) goes the single list's way, which refuses it as the upload does."""
    try:
        return _SHAPE.decode(body).records is not msgspec.UNSET
    except (msgspec.DecodeError, RecursionError):
        return False


# -- handlers ------------------------------------------------------------------------------


async def post_validate(request: web.Request) -> web.StreamResponse:
    """One list or a batch, checked as an upload is; nothing stored, sent or counted."""
    services = request.app[SERVICES]
    received_at = services.clock()
    principal = require_hospital(request)
    if isinstance(principal, web.Response):
        return principal
    if request.content_type != "application/json":
        return http_error(refusals.HTTP415, allowed="application/json")
    if (limited := limit_request(request, principal)) is not None:
        return limited
    body = await request.read()
    batch = _is_batch(body)
    try:
        if batch:
            checked = await check_sliced(
                services.checker, body, received_at, services.batch_max_records
            )
            charge_records(request, principal, len(checked))
        else:
            charge_records(request, principal, 1)
            checked = [services.checker.check_one(body, received_at)]
    except Rejected as whole:
        return refused_response(whole)
    if foreign := foreign_records(principal, checked):
        return forbidden_foreign(foreign)
    await consume_deferred_nonce(request)  # nothing is reserved: the nonce is spent here
    verdicts = [_verdict(item) for item in checked]
    if not batch:
        (one,) = verdicts
        del one["position"]
        return json_response(200, one)
    invalid = sum(1 for v in verdicts if not v["valid"])
    return json_response(
        200,
        {"valid": invalid == 0, "records": len(verdicts), "invalid": invalid, "results": verdicts},
    )


@cache
def _listing(version: str) -> bytes:
    d = Dictionaries.load_bundled(version)
    entries = [
        {"name": code, "title": d.name(code), "values": len(d.values(code))} for code in d.codes()
    ]
    return msgspec.json.encode(
        {"version": d.version, "effective": d.effective.isoformat(), "dictionaries": entries}
    )


@cache
def _dictionary(version: str, name: str) -> bytes | None:
    d = Dictionaries.load_bundled(version)
    if not d.has(name):
        return None
    values = [{"value": value, "label": label} for value, label in d.entries(name)]
    return msgspec.json.encode(
        {"name": name, "title": d.name(name), "version": d.version, "values": values}
    )


def _in_force() -> Dictionaries:
    """The version the gateway's validator checks against (`contracts.Validator`'s default:
    the latest bundled one), so a DICT_VALUE error and this endpoint always agree."""
    return Dictionaries.load_bundled()


async def get_dictionaries(request: web.Request) -> web.StreamResponse:
    """The names of the 1901 code sets, with their titles and number of values."""
    body = _listing(_in_force().version)
    return web.Response(body=body, content_type="application/json")


async def get_dictionary(request: web.Request) -> web.StreamResponse:
    """One code set: every value with its label, in the order of the national appendix."""
    name = request.match_info["name"]
    body = _dictionary(_in_force().version, name) if len(name) <= 64 else None
    if body is None:  # the name is the caller's text: not echoed
        return http_error(refusals.NOT_FOUND, what="dictionary", what_cn="字典")
    return web.Response(body=body, content_type="application/json")


# -- routes and their description ----------------------------------------------------------


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, post_validate)
    app.router.add_get(DICTIONARIES, get_dictionaries)
    app.router.add_get(DICTIONARIES + "/{name}", get_dictionary)
    openapi.register_paths(_openapi())


_REF = "#/components/schemas/{name}"


def _schemas() -> dict[str, Any]:
    """The answers' JSON Schemas: this module's types inline, `Problem` the document's own
    component (the one error shape)."""
    (one, batch), defs = msgspec.json.schema_components(
        [Validated, ValidatedBatch], ref_template=_REF
    )
    shared = {_REF.format(name="Problem")}

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref not in shared:
                return inline(defs[ref.rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    return {"Validated": inline(one), "ValidatedBatch": inline(batch)}


def _examples() -> tuple[dict[str, Any], dict[str, Any]]:
    upload = openapi.example_upload()
    setl_id = upload["input"]["setlinfo"]["setl_id"]
    case_key = f"{upload['fixmedins_code']}:{setl_id}"
    dict_error = {
        "rule": "DICT_VALUE",
        "field": "setlinfo.gend",
        "dimension": "规范性",
        "severity": "reject",
        "message": "性别不在字典gend的值域范围内（允许值：0 未知的性别、1 男、2 女、9 未说明性别）",
        "message_en": "setlinfo.gend is not a value of dictionary gend (allowed: 0, 1, 2, 9)",
    }
    follow_on = {
        "rule": "DATE_OPRN_STAY",
        "field": "oprninfo[0].oprn_oprt_begntime",
        "dimension": "合理性",
        "severity": "reject",
        "message": "手术操作开始时间应在入院与出院时间之间且开始不晚于结束（很可能由出院时间"
        "有误引起：本记录共2项时间与出院时间矛盾，请先核对setlinfo.dscg_time）",
        "message_en": "oprninfo[0].oprn_oprt_begntime must lie between admission and discharge, "
        "start no later than end (probably follows from setlinfo.dscg_time: 2 times of this "
        "record conflict with it; check it first)",
        "caused_by": "setlinfo.dscg_time",
    }
    one = {"valid": False, "case_key": case_key, "errors": [dict_error], "warnings": []}
    batch = {
        "valid": False,
        "records": 2,
        "invalid": 1,
        "results": [
            {"position": "records[0]", "valid": True, "case_key": case_key, "errors": [],
             "warnings": []},
            {"position": "records[1]", "valid": False, "errors": [follow_on], "warnings": []},
        ],
    }  # fmt: skip
    return one, batch


def _openapi() -> dict[str, Any]:
    schemas = _schemas()
    one, batch = _examples()
    request_schema = {
        "oneOf": [
            {"$ref": _REF.format(name="Upload")},
            {"$ref": _REF.format(name="Batch")},
        ]
    }
    answer = {"oneOf": [schemas["Validated"], schemas["ValidatedBatch"]]}
    listing = {
        "type": "object",
        "required": ["version", "effective", "dictionaries"],
        "properties": {
            "version": {"type": "string"},
            "effective": {"type": "string", "format": "date"},
            "dictionaries": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "title", "values"],
                    "properties": {
                        "name": {"type": "string"},
                        "title": {"type": "string"},
                        "values": {"type": "integer", "minimum": 1},
                    },
                },
            },
        },
    }
    dictionary = {
        "type": "object",
        "required": ["name", "title", "version", "values"],
        "properties": {
            "name": {"type": "string"},
            "title": {"type": "string"},
            "version": {"type": "string"},
            "values": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["value", "label"],
                    "properties": {"value": {"type": "string"}, "label": {"type": "string"}},
                },
            },
        },
    }
    bundled = Dictionaries.load_bundled()
    reader = [{"hmac": []}, {"mtls": []}, {"bearer": []}]
    return {
        PATH: {
            "post": {
                "operationId": "validateSettlements",
                "tags": ["uploads"],
                "summary": 'Check one list, or a batch ({"records": [...]}), as an upload '
                "would; nothing is stored, sent or counted",
                "description": "The same signature, budgets and checks as POST /v1/settlements "
                "and /v1/settlements/batch. 200 with valid, errors and warnings in the one "
                "error shape (per record for a batch); a follow-on finding names the field to "
                "fix first in caused_by. docs/validation.md",
                "security": [{"hmac": []}, {"mtls": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": request_schema,
                            "example": openapi.example_upload(),
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "The verdict: one list's, or a batch's per record",
                        "content": {
                            "application/json": {
                                "schema": answer,
                                "examples": {
                                    "one": {"value": one},
                                    "batch": {"value": batch},
                                },
                            }
                        },
                    },
                    **openapi.error_responses(401, 403, 413, 415, 422, 429, 503),
                },
            }
        },
        DICTIONARIES: {
            "get": {
                "operationId": "listDictionaries",
                "tags": ["uploads"],
                "summary": "The 1901 code sets the contract checks coded fields against",
                "security": reader,
                "responses": {
                    "200": {
                        "description": "Their names, titles and number of values",
                        "content": {
                            "application/json": {
                                "schema": listing,
                                "example": msgspec.json.decode(_listing(bundled.version)),
                            }
                        },
                    },
                    **openapi.error_responses(401),
                },
            }
        },
        DICTIONARIES + "/{name}": {
            "get": {
                "operationId": "getDictionary",
                "tags": ["uploads"],
                "summary": "One code set: every value and its label (what DICT_VALUE allows)",
                "security": reader,
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "The code set",
                        "content": {
                            "application/json": {
                                "schema": dictionary,
                                "example": msgspec.json.decode(
                                    _dictionary(bundled.version, "gend") or b"{}"
                                ),
                            }
                        },
                    },
                    **openapi.error_responses(401, 404),
                },
            }
        },
    }
