"""The OpenAPI 3.1 document served at /openapi.json, schemas generated from the Structs."""

from __future__ import annotations

from typing import Any

import msgspec

from adapters import FORMATS
from contracts import Problem


class ErrorList(msgspec.Struct):
    """Every error of a request; `dimension` is empty for request-level errors (auth, limits)."""

    errors: list[Problem]


class ReceiptAnswer(msgspec.Struct, kw_only=True):
    position: str
    status: str
    case_key: str | None = None
    receipt_id: str | None = None
    revision: int | None = None
    errors: list[Problem] | None = None
    warnings: list[Problem] | None = None


class BatchAnswer(msgspec.Struct, kw_only=True):
    accepted: int
    duplicate: int
    rejected: int
    unavailable: int
    results: list[ReceiptAnswer]


class ReceiptStatus(msgspec.Struct, kw_only=True):
    receipt_id: str
    fixmedins_code: str
    setl_id: str
    revision: int
    status: str
    mdtrtarea_admvs: str
    insuplc_admdvs: str | None
    received_at: str
    accepted_at: str | None
    stored_at: str | None
    kafka_topic: str | None
    kafka_partition: int | None
    kafka_offset: int | None


class NationalResponse(msgspec.Struct, kw_only=True):
    infcode: int
    inf_refmsgid: str
    refmsg_time: str
    respond_time: str
    err_msg: str
    warn_msg: str
    output: dict[str, Any] | None


_SETTLEMENT = {
    "type": "object",
    "description": "A settlement list in the national request envelope (docs/upload-format.md)",
    "required": ["fixmedins_code", "mdtrtarea_admvs", "input"],
    "properties": {
        "infno": {"type": "string", "enum": ["4101", "4101A"]},
        "msgid": {"type": "string", "maxLength": 30},
        "fixmedins_code": {"type": "string", "pattern": "^H[0-9]{11}$"},
        "mdtrtarea_admvs": {"type": "string", "pattern": "^[0-9]{6}$"},
        "insuplc_admdvs": {"type": "string", "pattern": "^[0-9]{6}$"},
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


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


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


_HOSPITAL = [{"hmac": []}, {"mtls": []}]
_READER = [{"hmac": []}, {"mtls": []}, {"bearer": []}]


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


def document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        [ErrorList, ReceiptAnswer, BatchAnswer, ReceiptStatus, NationalResponse],
        ref_template="#/components/schemas/{name}",
    )
    components["Settlement"] = _SETTLEMENT
    components["Batch"] = {
        "type": "object",
        "required": ["records"],
        "properties": {
            "records": {"type": "array", "items": {"$ref": "#/components/schemas/Settlement"}}
        },
    }
    upload_errors = error_responses(401, 403, 413, 415, 429, 503)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dipgw — provincial DIP data-exchange gateway",
            "version": "1",
            "description": "Hospitals push settlement lists (4101/4101A); bureaus and ops "
            "read receipts and cases. Errors share one shape.",
        },
        "paths": {
            "/v1/settlements": {
                "post": {
                    "summary": "Push one settlement list",
                    "security": _HOSPITAL,
                    "requestBody": {"required": True, "content": _json("Settlement")},
                    "responses": {
                        "202": {
                            "description": "Durable in Kafka; receipt issued",
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
                        **error_responses(422),
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
                        "200": {
                            "description": "Per-record results",
                            "content": _json("BatchAnswer"),
                        },
                        **upload_errors,
                        **error_responses(422),
                    },
                }
            },
            "/fsi/api/{infno}": {
                "post": {
                    "summary": "National 4101/4101A call, national response shape",
                    "security": _HOSPITAL,
                    "parameters": [
                        {
                            "name": "infno",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": ["4101", "4101A"]},
                        }
                    ],
                    "requestBody": {"required": True, "content": _json("Settlement")},
                    "responses": {
                        "200": {
                            "description": "infcode 0 accepted, -1 rejected",
                            "content": _json("NationalResponse"),
                        },
                        **upload_errors,
                        **error_responses(404, 422),
                    },
                }
            },
            "/v1/receipts/{receipt_id}": {
                "get": {
                    "summary": "Where a receipt's record is: pending → accepted → stored",
                    "security": _READER,
                    "parameters": [
                        {
                            "name": "receipt_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
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
                    "parameters": [
                        {
                            "name": "fixmedins_code",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "setl_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The case",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **error_responses(401, 403, 404, 503),
                    },
                }
            },
            **_EXTRA_PATHS,
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "security": [],
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: Kafka and PostgreSQL answer",
                    "security": [],
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "a dependency is down (named under `down`)"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (an ops or metrics token)",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": {"description": "text exposition"},
                        **error_responses(401, 403),
                    },
                }
            },
        },
        "components": {
            "schemas": components,
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
            },
        },
    }


def document_bytes() -> bytes:
    return msgspec.json.encode(document())
