"""The OpenAPI 3.1 document served at /openapi.json.

Every schema is generated from the types that carry the data, so the document cannot drift
from the code: the upload body from `contracts.Envelope` (every national field, typed and
bounded by the contract's field table, `contracts.field_specs`), the national 4101/4101A
shapes from `contracts.Input4101A`/`Input4101`, the answers from the Structs below and
`contracts.messages.ScoredCase`. Every operation has an `operationId`, tags and an example:
for the routes declared here, one table (`_operations`); routes of other modules describe
themselves through `register_paths`, and the table fills in what a registration lacks.
"""

from __future__ import annotations

import copy
import random
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, NamedTuple

import msgspec

from adapters import FORMATS
from contracts import CST, Envelope, FieldSpec, Input4101, Input4101A, Problem, fields_by_node
from contracts.messages import ENCODER, QualityAlert, ScoredCase
from contracts.samples import make_settlement
from gateway import refusals

_REF = "#/components/schemas/{name}"

Moment = Annotated[datetime, msgspec.Meta(tz=True, description="ISO 8601 with its UTC offset")]


# -- the answers' types --------------------------------------------------------------------


class ErrorList(msgspec.Struct):
    """Every error of a request; `dimension` is empty for request-level errors (auth, limits)."""

    errors: list[Problem]


class ReceiptAnswer(msgspec.Struct, kw_only=True):
    """One record's outcome: its receipt when accepted (or a duplicate), its errors if not."""

    position: str
    status: str
    case_key: str | None = None
    receipt_id: str | None = None
    revision: int | None = None
    errors: list[Problem] | None = None
    warnings: list[Problem] | None = None


class BatchAnswer(msgspec.Struct, kw_only=True):
    """A batch or file's outcomes, counted and per record (503 when any was unavailable)."""

    accepted: int
    duplicate: int
    rejected: int
    unavailable: int
    results: list[ReceiptAnswer]


class ReceiptStatus(msgspec.Struct, kw_only=True):
    """Where a receipt's record is: pending → accepted (in Kafka) → stored."""

    receipt_id: str
    fixmedins_code: str
    setl_id: str
    revision: int
    status: str
    mdtrtarea_admvs: str
    insuplc_admdvs: str | None
    received_at: Moment
    accepted_at: Moment | None
    stored_at: Moment | None
    kafka_topic: str | None
    kafka_partition: int | None
    kafka_offset: int | None


class CaseReceipt(msgspec.Struct, kw_only=True):
    """One revision of a case, as its receipt records it."""

    receipt_id: str
    revision: int
    status: str
    received_at: Moment
    accepted_at: Moment | None
    stored_at: Moment | None
    fixmedins_code: str
    mdtrtarea_admvs: str
    insuplc_admdvs: str | None


class CaseAnswer(msgspec.Struct, kw_only=True):
    """A case (`fixmedins_code:setl_id`): every revision received and the one stored."""

    case_key: str
    latest_revision: int
    stored_revision: int | None
    stored_at: Moment | None
    receipts: list[CaseReceipt]


class NationalData(msgspec.Struct, kw_only=True):
    """What an accepted national call returns: the receipt, under the national name too."""

    setl_list_id: str
    receipt_id: str
    revision: int
    duplicate: bool


class NationalOutput(msgspec.Struct, kw_only=True):
    """`data` when accepted, `errors` (the one error shape) when rejected."""

    data: NationalData | None = None
    errors: list[Problem] | None = None


class NationalResponse(msgspec.Struct, kw_only=True):
    """The national response envelope: `infcode` 0 accepted, -1 rejected or retry later."""

    infcode: int
    inf_refmsgid: str
    refmsg_time: str
    respond_time: str
    err_msg: str
    warn_msg: str
    output: NationalOutput | None


class ScoredItem(ScoredCase, kw_only=True):
    """A `dip.case.scored` message as a subscriber reads it, with its change position."""

    pos: int
    stored_at: Moment


class ScoredPage(msgspec.Struct, kw_only=True):
    """One page of `GET /v1/scored`; the next page starts after `next_after`."""

    items: list[ScoredItem]
    next_after: int
    has_more: bool


class QualityReport(msgspec.Struct, kw_only=True, rename={"start": "from", "end": "to"}):
    """A quality report: the period and scope asked, one row per hospital, city, day or rule
    (the row's columns: docs/operations.md "Data quality")."""

    start: str
    end: str
    by: str
    city: str | None
    hospital: str | None
    timely_days: int
    rows: list[dict[str, Any]]


class QualityAlerts(msgspec.Struct):
    """The alerts raised, newest first: `dip.quality.alerts.v1` messages as stored."""

    alerts: list[QualityAlert]


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    """`down` names every dependency that did not answer; `checks` says how each did."""

    status: str
    down: list[str]
    checks: dict[str, str]


_ANSWERS: tuple[type[msgspec.Struct], ...] = (
    ErrorList,
    ReceiptAnswer,
    BatchAnswer,
    ReceiptStatus,
    CaseAnswer,
    NationalResponse,
    ScoredPage,
    QualityReport,
    QualityAlerts,
    Health,
    Readiness,
)


# -- the upload body: the contract's types, typed as the wire carries them ------------------


def _wire_type(spec: FieldSpec) -> dict[str, Any]:
    """One field as a sender writes it: the canonical types decode leniently (dates without
    an offset, amounts as text or numbers), so the JSON the gateway reads is this."""
    kind = spec.type
    if kind == "str":
        out: dict[str, Any] = {"type": ["string", "null"]}
        if spec.length:
            out["maxLength"] = spec.length
    elif kind == "int":
        out = {"type": ["integer", "null"]}
    elif kind == "decimal":
        out = {"type": ["string", "number", "null"], "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
    elif kind in ("date", "datetime"):  # the forms read are in _FORMS; each starts so
        out = {"type": ["string", "null"], "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"}
    else:  # duration: 天/小时/分钟
        out = {"type": ["string", "null"], "pattern": r"^[0-9]{1,4}/[0-9]{1,2}/[0-9]{1,2}$"}
    return out


_FORMS = {
    "date": "yyyy-MM-dd",
    "datetime": "yyyy-MM-dd HH:mm:ss in China Standard Time (or RFC 3339 with an offset)",
    "duration": "days/hours/minutes, e.g. 0/12/30",
    "decimal": 'decimal, as text ("12000.00") or a JSON number',
}
_REQUIRED = {"Y": "required", "C": "required when its rule says so", "N": "optional"}


def _describe(spec: FieldSpec) -> str:
    parts = [spec.name_cn]
    if spec.type in _FORMS:
        parts.append(_FORMS[spec.type])
    if spec.type == "decimal" and spec.scale is not None:
        parts.append(f"at most {spec.scale} decimals")
    if spec.dict:
        parts.append(f"dictionary {spec.dict}")
    if spec.node == "envelope" or spec.in4101A == "Y":
        parts.append(f"4101A: {_REQUIRED.get(spec.req_A, spec.req_A)}")
    if spec.node == "envelope" or spec.in4101 == "Y":
        parts.append(f"4101: {_REQUIRED.get(spec.req_L, spec.req_L)}")
    if spec.personal:
        parts.append("personal data (masked wherever dipgw shows it)")
    return "; ".join(parts)


_DECIMAL = {"type": "string", "format": "decimal"}


def _numbers_as_sent(node: Any) -> Any:
    """Decimal is text or a number on the way in (msgspec's schema says text only)."""
    if node == _DECIMAL:
        return {"type": ["string", "number"], "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
    if isinstance(node, dict):
        return {key: _numbers_as_sent(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_numbers_as_sent(value) for value in node]
    return node


def _upload_components() -> dict[str, Any]:
    """The canonical envelope and its nodes, each field typed from the contract's field
    table; the national 4101/4101A shapes beside them, as the national spec bounds them."""
    _, components = msgspec.json.schema_components(
        [Envelope, Input4101A, Input4101], ref_template=_REF
    )
    components = dict(_numbers_as_sent(components))
    nodes = fields_by_node()
    for node, specs in nodes.items():
        schema = components["Envelope" if node == "envelope" else node.capitalize()]
        for name, spec in specs.items():
            if name in schema["properties"]:
                schema["properties"][name] = {**_wire_type(spec), "description": _describe(spec)}
    components["Upload"] = {
        "description": "One settlement list in the national request envelope "
        "(docs/upload-format.md): 4101A carries the patient's identity and the settlement "
        "summary in `setlinfo` too; 4101 adds `payinfo` and `iteminfo`. Every field's rules "
        "(length, dictionary, when required) are checked, and every error is answered.",
        "allOf": [{"$ref": _REF.format(name="Envelope")}],
        "type": "object",
        "required": ["fixmedins_code", "mdtrtarea_admvs", "input"],
        "properties": {
            "fixmedins_code": {"type": "string"},
            "mdtrtarea_admvs": {"type": "string"},
            "input": {
                "type": "object",
                "required": ["setlinfo"],
                "properties": {
                    "setlinfo": {
                        "type": "object",
                        "required": ["setl_id"],
                        "properties": {"setl_id": {"type": "string"}},
                    }
                },
            },
        },
    }
    components["Batch"] = {
        "type": "object",
        "required": ["records"],
        "properties": {"records": {"type": "array", "items": {"$ref": _REF.format(name="Upload")}}},
    }
    return components


@cache
def _components() -> dict[str, Any]:
    """Generated once (msgspec's inspection of ~70 types takes a good tenth of a second)."""
    _, answers = msgspec.json.schema_components(_ANSWERS, ref_template=_REF)
    uploads = _upload_components()
    clash = {name for name in set(answers) & set(uploads) if answers[name] != uploads[name]}
    assert not clash, f"one name, two schemas: {sorted(clash)}"
    return {**uploads, **answers}


@cache
def _components_json() -> bytes:
    return msgspec.json.encode(_components())


# -- paths ---------------------------------------------------------------------------------


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(name=ref)}}}


def _any_json(*refs: str) -> dict[str, Any]:
    """One status, answered with one of several shapes (a 503 that still counts a batch)."""
    options = [{"$ref": _REF.format(name=ref)} for ref in refs]
    return {"application/json": {"schema": {"anyOf": options}}}


def error_responses(*codes: int) -> dict[str, Any]:
    text = {
        400: "Bad request",
        401: "Not authenticated (reason in `rule`)",
        403: "Authenticated but not allowed",
        404: "Absent, or not yours",
        413: "Body or batch too large",
        415: "Unsupported content type",
        422: "Rejected: every error with rule, field, dimension, severity, message",
        429: "Rate limited; see Retry-After",
        503: "Kafka or PostgreSQL unavailable; retry after Retry-After",
    }
    return {str(c): {"description": text[c], "content": _json("ErrorList")} for c in codes}


_HOSPITAL: list[dict[str, list[str]]] = [{"hmac": []}, {"mtls": []}]
_READER: list[dict[str, list[str]]] = [{"hmac": []}, {"mtls": []}, {"bearer": []}]


_EXTRA_PATHS: dict[str, Any] = {}

_RECEIPT = "#/paths/~1v1~1receipts~1{receipt_id}/get"
_CASE = "#/paths/~1v1~1cases~1{fixmedins_code}~1{setl_id}/get"


def _link(operation: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link: where an answer leads (the receipt, the case), for clients and fuzzers."""
    return {"operationRef": operation, "parameters": parameters}


def _file_content() -> dict[str, Any]:
    """The file endpoint's request bodies: every media type of every feed format."""
    out: dict[str, Any] = {}
    for fmt in FORMATS:
        schema: dict[str, Any] = {"type": "string", "description": f"{fmt.name}: {fmt.title}"}
        if fmt.binary:
            schema["format"] = "binary"
        for media_type in fmt.media_types:
            out[media_type] = {"schema": schema}
    return out


def register_paths(paths: dict[str, Any]) -> None:
    """Routes added by other modules (subscriptions, ops) describe themselves here."""
    _EXTRA_PATHS.update(paths)
    _SERVED.clear()
    # The app registers its routes while it is built, before it serves: the slow parts (the
    # types' schemas, the example list from contracts.samples) are made now, once per process,
    # not at the first request on the event loop.
    _components_json()
    _operations()


_SERVED: dict[str, bytes] = {}
"""The encoded document, built at the first request after the last registration: the
route is public, so it must not cost the event loop a document's build each time."""


def _path_parameter(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


_HTML = {"text/html": {"schema": {"type": "string"}}}


def _paths() -> dict[str, Any]:
    upload_errors = error_responses(401, 403, 413, 415, 429)
    return {
        "/v1/settlements": {
            "post": {
                "summary": "Push one settlement list",
                "security": _HOSPITAL,
                "requestBody": {"required": True, "content": _json("Upload")},
                "responses": {
                    "202": {
                        "description": "Durable in Kafka; receipt issued (the original one "
                        "for a resend of the same content)",
                        "content": _json("ReceiptAnswer"),
                        "links": {
                            "receipt": _link(_RECEIPT, receipt_id="$response.body#/receipt_id"),
                            "case": _link(
                                _CASE,
                                fixmedins_code="$request.body#/fixmedins_code",
                                setl_id="$request.body#/input/setlinfo/setl_id",
                            ),
                        },
                    },
                    **upload_errors,
                    **error_responses(422, 503),
                },
            }
        },
        "/v1/settlements/batch": {
            "post": {
                "summary": "Push a batch; a result per record",
                "security": _HOSPITAL,
                "requestBody": {"required": True, "content": _json("Batch")},
                "responses": {
                    "200": {
                        "description": "Per-record results",
                        "content": _json("BatchAnswer"),
                        "links": {
                            "receipt": _link(
                                _RECEIPT, receipt_id="$response.body#/results/0/receipt_id"
                            )
                        },
                    },
                    **upload_errors,
                    **error_responses(422),
                    "503": {
                        "description": "Some records could not be taken: resend the whole "
                        "batch (the accepted come back as duplicates); or the whole request "
                        "could not be handled",
                        "content": _any_json("BatchAnswer", "ErrorList"),
                    },
                },
            }
        },
        "/v1/settlements/file": {
            "post": {
                "summary": "Push an export in a registered feed format "
                f"({', '.join(f.name.upper() for f in FORMATS)}); a result per record",
                "security": _HOSPITAL,
                "requestBody": {"required": True, "content": _file_content()},
                "responses": {
                    "200": {"description": "Per-record results", "content": _json("BatchAnswer")},
                    **upload_errors,
                    **error_responses(422),
                    "503": {
                        "description": "Some records could not be taken (resend the file), "
                        "or the file could not be parsed now",
                        "content": _any_json("BatchAnswer", "ErrorList"),
                    },
                },
            }
        },
        "/fsi/api/{infno}": {
            "post": {
                "summary": "National 4101/4101A call, national response shape",
                "security": _HOSPITAL,
                "parameters": [
                    _path_parameter("infno", {"type": "string", "enum": ["4101", "4101A"]})
                ],
                "requestBody": {"required": True, "content": _json("Upload")},
                "responses": {
                    "200": {
                        "description": "infcode 0 accepted, -1 rejected",
                        "content": _json("NationalResponse"),
                    },
                    **upload_errors,
                    **error_responses(404, 422),
                    "503": {
                        "description": "Retry later: infcode -1 in the national shape, or the "
                        "gateway's error list when the request itself could not be handled",
                        "content": _any_json("NationalResponse", "ErrorList"),
                    },
                },
            }
        },
        "/v1/receipts/{receipt_id}": {
            "get": {
                "summary": "Where a receipt's record is: pending → accepted → stored",
                "security": _READER,
                "parameters": [_path_parameter("receipt_id")],
                "responses": {
                    "200": {"description": "The receipt", "content": _json("ReceiptStatus")},
                    **error_responses(401, 403, 404, 503),
                },
            }
        },
        "/v1/cases/{fixmedins_code}/{setl_id}": {
            "get": {
                "summary": "A case's revisions and storage state",
                "security": _READER,
                "parameters": [_path_parameter("fixmedins_code"), _path_parameter("setl_id")],
                "responses": {
                    "200": {"description": "The case", "content": _json("CaseAnswer")},
                    **error_responses(401, 403, 404, 503),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "security": [],
                "responses": {"200": {"description": "ok", "content": _json("Health")}},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: Kafka and PostgreSQL answer",
                "security": [],
                "responses": {
                    "200": {"description": "ready", "content": _json("Readiness")},
                    "503": {
                        "description": "a dependency is down (named under `down`)",
                        "content": _json("Readiness"),
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (an ops or metrics token)",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {
                        "description": "text exposition",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **error_responses(401, 403),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/ops": {
            "get": {
                "summary": "The ops page (a browser with an /ops session, or a reader token)",
                "security": [{"bearer": []}, {"session": []}],
                "responses": {
                    "200": {"description": "the page", "content": _HTML},
                    "303": {"description": "no session: to /ops/login"},
                    **error_responses(401, 403),
                },
            }
        },
        "/ops/login": {
            "get": {
                "summary": "The login form",
                "security": [],
                "responses": {"200": {"description": "the form", "content": _HTML}},
            },
            "post": {
                "summary": "Log in with an ops or city token: opens a session (a cookie)",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "required": ["csrf", "token"],
                                "properties": {
                                    "csrf": {"type": "string"},
                                    "token": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "303": {"description": "logged in: to /ops, with the session cookie"},
                    "401": {"description": "token invalid or revoked: the form", "content": _HTML},
                    **error_responses(400, 403),
                },
            },
        },
        "/ops/logout": {
            "post": {
                "summary": "End the session on the server",
                "security": [{"session": []}],
                "responses": {
                    "303": {"description": "logged out: to /ops/login"},
                    **error_responses(403),
                },
            }
        },
        "/ops/static/{name}": {
            "get": {
                "summary": "The ops page's scripts, styles and images",
                "security": [],
                "parameters": [_path_parameter("name")],
                "responses": {
                    "200": {
                        "description": "the asset",
                        "content": {
                            media: {"schema": {"type": "string"}}
                            for media in ("text/javascript", "text/css", "image/svg+xml")
                        },
                    },
                    **error_responses(404),
                },
            }
        },
    }


# -- operationIds, tags and examples: one table ---------------------------------------------


class Operation(NamedTuple):
    """What a route's operation is called, where it is listed, and its examples: by
    "request" (the body), or by answer status (the first media type of that answer)."""

    operation_id: str
    tags: tuple[str, ...]
    examples: dict[str, Any]


TAGS = {
    "uploads": "Hospitals push settlement lists (HMAC signature or client certificate)",
    "national": "The national transactions, in the national request and response shapes",
    "receipts": "Where an upload is, and a case's revisions",
    "subscriptions": "Scored cases for city bureaus, by page or as a stream",
    "quality": "Ingestion quality reports and alerts",
    "ops": "The ops page and its session",
    "service": "Health, readiness, metrics and this document",
}

_HOSPITAL_CODE = "H44010000001"
_RECEIPT_ID = "0d6f8b1e-7c1a-4c55-9a51-3f7f2b8e4a10"
_AT = "2026-11-24T09:30:00.125000+08:00"


def _problem(refusal: refusals.Refusal, **values: object) -> dict[str, Any]:
    problem: dict[str, Any] = msgspec.to_builtins(refusal.problem(None, **values))
    return problem


@cache
def example_upload() -> dict[str, Any]:
    """A complete 4101A list that passes every default rule (`contracts.samples`, fixed)."""
    return make_settlement(
        random.Random(14),
        fixmedins_code=_HOSPITAL_CODE,
        mdtrtarea_admvs="440100",
        insuplc_admdvs="440100",
        serial=1,
    )


def _case_key() -> str:
    return f"{_HOSPITAL_CODE}:{example_upload()['input']['setlinfo']['setl_id']}"


def _receipt_answer() -> dict[str, Any]:
    return {
        "position": "$",
        "status": "accepted",
        "case_key": _case_key(),
        "receipt_id": _RECEIPT_ID,
        "revision": 1,
    }


def _rejected() -> dict[str, Any]:
    routing = refusals.REQ_ROUTING
    problem = routing.problem("mdtrtarea_admvs", path="mdtrtarea_admvs", name="就医地医保区划")
    return {"errors": [msgspec.to_builtins(problem)]}


def _batch_answer() -> dict[str, Any]:
    rejected = {"position": "records[1]", "status": "rejected", **_rejected()}
    return {
        "accepted": 1,
        "duplicate": 0,
        "rejected": 1,
        "unavailable": 0,
        "results": [{**_receipt_answer(), "position": "records[0]"}, rejected],
    }


def _receipt_status() -> dict[str, Any]:
    setl_id = example_upload()["input"]["setlinfo"]["setl_id"]
    return {
        "receipt_id": _RECEIPT_ID,
        "fixmedins_code": _HOSPITAL_CODE,
        "setl_id": setl_id,
        "revision": 1,
        "status": "stored",
        "mdtrtarea_admvs": "440100",
        "insuplc_admdvs": "440100",
        "received_at": _AT,
        "accepted_at": "2026-11-24T09:30:00.180000+08:00",
        "stored_at": "2026-11-24T09:30:01.020000+08:00",
        "kafka_topic": "dip.settlement.accepted.v1",
        "kafka_partition": 3,
        "kafka_offset": 1842,
    }


def _case_answer() -> dict[str, Any]:
    receipt = {
        key: value
        for key, value in _receipt_status().items()
        if key not in ("setl_id", "kafka_topic", "kafka_partition", "kafka_offset")
    }
    return {
        "case_key": _case_key(),
        "latest_revision": 1,
        "stored_revision": 1,
        "stored_at": receipt["stored_at"],
        "receipts": [receipt],
    }


def _national_answer() -> dict[str, Any]:
    return {
        "infcode": 0,
        "inf_refmsgid": "440100202611240930000000000001",
        "refmsg_time": "20261124093000125",
        "respond_time": "20261124093000190",
        "err_msg": "",
        "warn_msg": "",
        "output": {
            "data": {
                "setl_list_id": _RECEIPT_ID,
                "receipt_id": _RECEIPT_ID,
                "revision": 1,
                "duplicate": False,
            }
        },
    }


def _csv_upload() -> str:
    setl_id = example_upload()["input"]["setlinfo"]["setl_id"]
    return (
        "fixmedins_code,mdtrtarea_admvs,setlinfo.setl_id,diseinfo[0].diag_code\n"
        f"{_HOSPITAL_CODE},440100,{setl_id},M17.900\n"
    )


@cache
def example_scored_item() -> dict[str, Any]:
    """One scored case as `/v1/scored` and its stream carry it (built as the type, encoded
    with the topics' one encoder)."""
    upload = example_upload()
    main = upload["input"]["diseinfo"][0]["diag_code"]
    received = datetime(2026, 11, 24, 9, 30, 0, 125000, tzinfo=CST)
    item = ScoredItem(
        receipt_id=_RECEIPT_ID,
        case_key=_case_key(),
        fixmedins_code=_HOSPITAL_CODE,
        setl_id=upload["input"]["setlinfo"]["setl_id"],
        revision=1,
        received_at=received,
        scored_at=received.replace(second=2),
        role="treating",
        scope="same_city",
        treating_admdvs="440100",
        insured_admdvs="440100",
        treating_city="440100",
        insured_city="440100",
        clearing_year=2026,
        status="scored",
        hospital_level="3",
        insutype="310",
        total_cost=Decimal(upload["input"]["setlinfo"]["medfee_sumamt"]),
        main_diag_code=main,
        operations=[op["oprn_oprt_code"] for op in upload["input"]["oprninfo"]],
        group_status="grouped",
        group_code=main[:5],
        deviation="normal",
        ratio=1.05,
        group_score=612.4,
        level_coefficient=1.0,
        adjustment=1.0,
        case_score=612.4,
        point_value=Decimal("98.50"),
        estimated_payment=Decimal("60321.40"),
        ruleset_id=3,
        ruleset_version="440100-2026.1",
        catalog_version="440100-2026",
        pos=42,
        stored_at=received.replace(second=3),
    )
    out: dict[str, Any] = msgspec.json.decode(ENCODER.encode(item))
    return out


def example_scored_page() -> dict[str, Any]:
    return {"items": [example_scored_item()], "next_after": 42, "has_more": False}


def example_scored_event() -> str:
    item = example_scored_item()
    return f"id: {item['pos']}\nevent: case\ndata: {msgspec.json.encode(item).decode()}\n\n"


def _quality_head(by: str) -> dict[str, Any]:
    return {
        "from": "2026-11-18",
        "to": "2026-11-24",
        "by": by,
        "city": "440100",
        "hospital": None,
        "timely_days": 7,
    }


def example_quality_report() -> dict[str, Any]:
    """`GET /v1/quality/report?by=hospital` for one city."""
    dimensions = {d: {"reject": 0, "warn": 0} for d in ("及时性", "完整性", "规范性", "合理性")}
    dimensions["完整性"]["reject"] = 6
    row = {
        "fixmedins_code": _HOSPITAL_CODE,
        "city": "440100",
        "received": 120,
        "accepted": 112,
        "rejected": 8,
        "warned": 30,
        "revisions": 5,
        "resubmissions": 3,
        "last_seen": _AT,
        "name": "广州市第一人民医院",
        "dimensions": dimensions,
        "pass_rate": 0.9333,
        "clean_rate": 0.6833,
        "reject_rate": 0.0667,
        "timely_rate": 0.975,
        "lag_known": 112,
        "lag_p50_h": 30.5,
        "lag_p90_h": 98.0,
        "lag_p99_h": 160.2,
    }
    return {**_quality_head("hospital"), "rows": [row]}


def example_top_rules() -> dict[str, Any]:
    """`GET /v1/quality/top-rules`: the rules failing most lists."""
    row = {
        "rule": refusals.REQ_ROUTING.rule,
        "severity": "reject",
        "dimension": "完整性",
        "findings": 6,
        "records": 6,
        "hospitals": 2,
        "share": 0.05,
        "examples": [_RECEIPT_ID],
    }
    return {**_quality_head("rule"), "rows": [row]}


def example_quality_alerts() -> dict[str, Any]:
    alert = QualityAlert(
        alert_key="reject_rate:440100:H44010000001:2026-11-24",
        kind="reject_rate",
        city="440100",
        fixmedins_code=_HOSPITAL_CODE,
        value=0.21,
        threshold=0.1,
        message="拒收率 21% 超过阈值 10%",
        message_en="reject rate 21% over the threshold of 10%",
        raised_at=datetime(2026, 11, 24, 9, 35, tzinfo=CST),
    )
    return {"alerts": [msgspec.json.decode(ENCODER.encode(alert))]}


def example_dashboard() -> dict[str, Any]:
    """`GET /v1/quality/dashboard` for a city token (the pipeline is for ops only)."""
    report = example_quality_report()
    return {
        "from": report["from"],
        "to": report["to"],
        "scope": {"role": "city", "city": "440100"},
        "days": [],
        "hospitals": report["rows"],
        "rules": example_top_rules()["rows"],
        "pipeline": [],
        "feeds": [],
        "rejected_depth": None,
        "alerts": example_quality_alerts()["alerts"],
    }


def _not_found(what: str, what_cn: str) -> dict[str, Any]:
    return {"errors": [_problem(refusals.NOT_FOUND, what=what, what_cn=what_cn)]}


@cache
def _operations() -> dict[tuple[str, str], Operation]:
    """(method, path) → its operationId, tags and examples."""
    forbidden_csrf = {"errors": [_problem(refusals.FORBIDDEN_CSRF)]}
    return {
        ("post", "/v1/settlements"): Operation(
            "pushSettlement",
            ("uploads",),
            {"request": example_upload(), "202": _receipt_answer(), "422": _rejected()},
        ),
        ("post", "/v1/settlements/batch"): Operation(
            "pushBatch",
            ("uploads",),
            {"request": {"records": [example_upload()]}, "200": _batch_answer()},
        ),
        ("post", "/v1/settlements/file"): Operation(
            "pushFile",
            ("uploads",),
            {"request": _csv_upload(), "200": _batch_answer()},
        ),
        ("post", "/fsi/api/{infno}"): Operation(
            "callNational",
            ("national",),
            {"request": example_upload(), "200": _national_answer()},
        ),
        ("get", "/v1/receipts/{receipt_id}"): Operation(
            "getReceipt",
            ("receipts",),
            {"200": _receipt_status(), "404": _not_found("receipt", "回执")},
        ),
        ("get", "/v1/cases/{fixmedins_code}/{setl_id}"): Operation(
            "getCase",
            ("receipts",),
            {"200": _case_answer(), "404": _not_found("case", "病例")},
        ),
        ("get", "/healthz"): Operation("getHealth", ("service",), {"200": {"status": "ok"}}),
        ("get", "/readyz"): Operation(
            "getReadiness",
            ("service",),
            {
                "200": {"status": "ready", "down": [], "checks": {"kafka": "ok", "postgres": "ok"}},
                "503": {
                    "status": "unavailable",
                    "down": ["kafka"],
                    "checks": {"kafka": "timeout", "postgres": "ok"},
                },
            },
        ),
        ("get", "/metrics"): Operation(
            "getMetrics",
            ("service",),
            {
                "200": "# HELP dipgw_dependency_up 1 when the dependency answers\n"
                "# TYPE dipgw_dependency_up gauge\n"
                'dipgw_dependency_up{dependency="kafka"} 1.0\n'
            },
        ),
        ("get", "/openapi.json"): Operation(
            "getOpenApi",
            ("service",),
            {"200": {"openapi": "3.1.0", "info": {"title": "dipgw", "version": "1"}}},
        ),
        ("get", "/ops"): Operation(
            "getOpsPage", ("ops",), {"200": '<!doctype html><html lang="zh-CN">…</html>'}
        ),
        ("get", "/ops/login"): Operation(
            "getOpsLogin", ("ops",), {"200": '<!doctype html><html lang="zh-CN">…</html>'}
        ),
        ("post", "/ops/login"): Operation(
            "postOpsLogin",
            ("ops",),
            {
                "request": {"csrf": "q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6", "token": "dipgw_ops_…"},
                "403": forbidden_csrf,
            },
        ),
        ("post", "/ops/logout"): Operation("postOpsLogout", ("ops",), {"403": forbidden_csrf}),
        ("get", "/ops/static/{name}"): Operation(
            "getOpsAsset", ("ops",), {"200": "body { font-family: sans-serif; }"}
        ),
    }


def _place(operation: dict[str, Any], where: str, example: Any) -> None:
    """Put one example on the request body or an answer, unless it has one already."""
    if where == "request":
        holder = operation.get("requestBody", {})
    else:
        holder = operation.get("responses", {}).get(where, {})
    content = holder.get("content") or {}
    for media in content.values():  # the first media type whose schema takes a value like it
        if "example" in media or "examples" in media:
            return
    if content:
        wanted = "text/" if isinstance(example, str) else "application/json"
        media_type = next((m for m in content if m.startswith(wanted)), next(iter(content)))
        content[media_type]["example"] = example


def _annotate(paths: dict[str, Any]) -> dict[str, Any]:
    """The table's operationId, tags and examples on every operation it names, where the
    operation does not say already (a registered route's own words win)."""
    for path, item in paths.items():
        for method, operation in item.items():
            entry = _operations().get((method, path))
            if entry is None or not isinstance(operation, dict):
                continue
            operation.setdefault("operationId", entry.operation_id)
            operation.setdefault("tags", list(entry.tags))
            for where, example in entry.examples.items():
                _place(operation, where, example)
    return paths


def _tags(paths: dict[str, Any]) -> list[dict[str, str]]:
    """The tags described here, then any other a registered route uses."""
    used = {t for item in paths.values() for op in item.values() for t in op.get("tags", [])}
    described = [{"name": name, "description": text} for name, text in TAGS.items()]
    return described + [{"name": name} for name in sorted(used - set(TAGS))]


def document() -> dict[str, Any]:
    paths = _annotate({**_paths(), **copy.deepcopy(_EXTRA_PATHS)})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dipgw — provincial DIP data-exchange gateway",
            "version": "1",
            "description": "Hospitals push settlement lists (4101/4101A); bureaus and ops "
            "read receipts, cases, scored cases and quality. Errors share one shape.",
        },
        "tags": _tags(paths),
        "paths": paths,
        "components": {
            "schemas": msgspec.json.decode(_components_json()),  # a fresh copy, fast
            "securitySchemes": {
                "hmac": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Dipgw-Signature",
                    "description": "HMAC-SHA256 or HMAC-SM3 over method, path, timestamp, "
                    "nonce and body digest, with X-Dipgw-Hospital, "
                    "X-Dipgw-Timestamp (±300 s) and X-Dipgw-Nonce (single use)",
                },
                "mtls": {
                    "type": "mutualTLS",
                    "description": "client certificate whose CN is registered for the hospital",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "read-only token of a city bureau (its city) or ops",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "dipgw_ops",
                    "description": "the /ops session opened by POST /ops/login",
                },
            },
        },
    }


def document_bytes() -> bytes:
    """The served document, built once per set of feed formats (a format added to the
    registry is a media type of the file endpoint at once, as the endpoint accepts it)."""
    key = "document:" + ",".join(fmt.name for fmt in FORMATS)
    if key not in _SERVED:
        _SERVED.clear()
        _SERVED[key] = msgspec.json.encode(document())
    return _SERVED[key]
