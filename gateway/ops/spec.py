"""The quality endpoints' paths of the OpenAPI document."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway import refusals
from gateway.ops.reports import GROUPINGS


def openapi_paths() -> dict[str, Any]:
    # the app imports this module: at call time
    from gateway.openapi import (
        error_responses,
        example_dashboard,
        example_quality_alerts,
        example_quality_report,
        example_top_rules,
    )

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
    rows = {"$ref": "#/components/schemas/QualityReport"}

    def get(
        operation_id: str,
        summary: str,
        parameters: list[dict[str, Any]],
        content: dict[str, Any],
        example: dict[str, Any],
    ) -> Any:
        content = {
            **content,
            "application/json": {**content["application/json"], "example": example},
        }
        return {
            "get": {
                "operationId": operation_id,
                "tags": ["quality"],
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
            "getQualityReport",
            "Ingestion quality for a period by hospital, city, day or rule (ops: all; a city "
            "bureau: its own city)",
            [
                *scope,
                query("by", {"enum": list(GROUPINGS)}, "one row per …; default hospital"),
                query("format", {"enum": ["json", "csv"]}, "or Accept: text/csv"),
                query("timely_days", {"type": "integer", "minimum": 1, "maximum": 15}, "及时"),
            ],
            {**json_rows, "text/csv": {"schema": {"type": "string"}}},
            example_quality_report(),
        ),
        "/v1/quality/top-rules": get(
            "getQualityTopRules",
            "The rules failing most lists, with example receipt ids",
            [
                *scope,
                query("severity", {"enum": ["reject", "warn", "all"]}, "default reject"),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "default 10"),
            ],
            json_rows,
            example_top_rules(),
        ),
        "/v1/quality/alerts": get(
            "getQualityAlerts",
            "Quality alerts raised, newest first",
            [
                query("city", {"type": "string", "pattern": "^[0-9]{6}$"}, "one city"),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 100"),
            ],
            {"application/json": {"schema": {"$ref": "#/components/schemas/QualityAlerts"}}},
            example_quality_alerts(),
        ),
        "/v1/quality/dashboard": get(
            "getQualityDashboard",
            "Everything the /ops page draws",
            scope[:3],
            {"application/json": {"schema": {"type": "object"}}},
            example_dashboard(),
        ),
    }


def message_paths() -> dict[str, Any]:
    """The message browser's paths (`/v1/ops/…`, ops only), each with an example answer."""
    from gateway.openapi import error_responses

    def param(name: str, where: str, schema: dict[str, Any], description: str) -> Any:
        return {
            "name": name,
            "in": where,
            "required": where == "path",
            "schema": schema,
            "description": description,
        }

    moment = {"type": "string", "format": "date-time"}
    when = {"type": ["string", "null"], "format": "date-time"}
    paging = [
        param("page", "query", {"type": "integer", "minimum": 1}, "from 1; default 1"),
        param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200}, "default 50"),
    ]
    window = [
        param("since", "query", moment, "from this time, with its offset (+08:00)"),
        param("until", "query", moment, "up to this time, with its offset (+08:00)"),
    ]
    hospital = param("hospital", "query", {"type": "string", "pattern": "^H[0-9]{11}$"}, "one")
    position = [
        param("partition", "path", {"type": "integer", "minimum": 0}, "Kafka partition"),
        param("offset", "path", {"type": "integer", "minimum": 0}, "Kafka offset"),
    ]
    dead_target = [
        param("worker", "path", {"type": "string", "pattern": "^[a-z_]{1,32}$"}, "worker"),
        param("topic", "path", {"type": "string"}, "the topic it was read from"),
        *position,
    ]

    def page_of(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["page", "limit", "has_more", "rows"],
            "properties": {
                "page": {"type": "integer"},
                "limit": {"type": "integer"},
                "has_more": {"type": "boolean", "description": "exact: a next page has rows"},
                "rows": {"type": "array", "items": row},
            },
        }

    rejected_row = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "partition/offset"},
            "topic": {"type": "string"},
            "partition": {"type": "integer"},
            "offset": {"type": "integer"},
            "fixmedins_code": {"type": "string"},
            "city": {"type": "string"},
            "case_key": {"type": ["string", "null"]},
            "received_at": {**moment, "description": "+08:00"},
            "rules": {"type": "array", "items": {"type": "string"}},
        },
    }
    rejected_one = {
        "allOf": [
            rejected_row,
            {
                "type": "object",
                "properties": {
                    "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}},
                    "document": {"description": "personal fields masked (redact_document)"},
                },
            },
        ]
    }
    dead_row = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "worker/topic/partition/offset"},
            "worker": {"type": "string"},
            "topic": {"type": "string"},
            "partition": {"type": "integer"},
            "offset": {"type": "integer"},
            "key": {"type": "string"},
            "fixmedins_code": {"type": ["string", "null"]},
            "error": {"type": "string"},
            "at": {**moment, "description": "+08:00"},
            "replayed_at": when,
            "replayed_to": {"type": ["string", "null"]},
        },
    }
    audit_row = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "at": {**moment, "description": "+08:00"},
            "actor": {"type": "string", "description": "the token's label"},
            "action": {"type": "string", "enum": ["replay"]},
            "target": {"type": "string"},
            "result": {
                "type": "string",
                "description": "replayed, already replayed, gone from Kafka, or refused by "
                "Kafka: … (naming the right the gateway's Kafka user lacks)",
            },
            "detail": {"type": "string"},
        },
    }
    dead_one = {
        "allOf": [
            dead_row,
            {
                "type": "object",
                "properties": {
                    "message": {"description": "the message, personal fields masked"},
                    "message_gone": {"type": "boolean", "description": "no longer in Kafka"},
                    "message_unreadable": {
                        "type": ["string", "null"],
                        "description": "why the gateway may not read it (a Kafka ACL)",
                    },
                    "audit": page_of(audit_row),
                },
            },
        ]
    }
    replay_answer = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "replayed": {"type": "boolean", "description": "false: nothing was written now"},
            "result": audit_row["properties"]["result"],
            "replayed_at": when,
            "replayed_to": {"type": ["string", "null"], "description": "topic/partition/offset"},
            "audited_at": moment,
            "actor": {"type": "string"},
        },
    }
    at = "2026-11-30T23:15:10+08:00"
    # a finding as the catalogue writes it (an ID spelled here would be a second home)
    routing_error = msgspec.to_builtins(
        refusals.REQ_ROUTING.problem("setl_id", name="结算ID", path="input.setlinfo.setl_id")
    )
    rejected_example = {
        "id": "0/1234",
        "topic": "dip.settlement.rejected.v1",
        "partition": 0,
        "offset": 1234,
        "fixmedins_code": "H44010000001",
        "city": "440100",
        "case_key": "H44010000001:S0001",
        "received_at": at,
        "rules": [routing_error["rule"]],
    }
    dead_example = {
        "id": "sink/dip.settlement.accepted.v1/2/88",
        "worker": "sink",
        "topic": "dip.settlement.accepted.v1",
        "partition": 2,
        "offset": 88,
        "key": "H44010000001:S0001",
        "fixmedins_code": "H44010000001",
        "error": "UntranslatableCharacterError (22P05)",
        "at": at,
        "replayed_at": None,
        "replayed_to": None,
    }
    audit_example = {
        "id": 1,
        "at": at,
        "actor": "ops-zhang",
        "action": "replay",
        "target": dead_example["id"],
        "result": "replayed",
        "detail": "dip.settlement.accepted.v1/2/90",
    }

    def page_example(row: dict[str, Any]) -> dict[str, Any]:
        return {"page": 1, "limit": 50, "has_more": False, "rows": [row]}

    def operation(
        method: str,
        operation_id: str,
        summary: str,
        parameters: list[dict[str, Any]],
        schema: dict[str, Any],
        example: Any,
        errors: tuple[int, ...] = (400, 401, 403, 503),
    ) -> dict[str, Any]:
        return {
            method: {
                "operationId": operation_id,
                "tags": ["ops messages"],
                "summary": summary,
                "security": [{"bearer": []}],
                "parameters": parameters,
                "responses": {
                    "200": {
                        "description": "the answer; every time in +08:00",
                        "content": {"application/json": {"schema": schema, "example": example}},
                    },
                    **error_responses(*errors),
                },
            }
        }

    dead_path = "/v1/ops/dead-letters/{worker}/{topic}/{partition}/{offset}"
    return {
        "/v1/ops/rejected": operation(
            "get",
            "listRejectedLists",
            "Rejected lists by hospital, rule and time, newest first (ops only)",
            [
                hospital,
                param("rule", "query", {"type": "string"}, "lists with a finding of this rule"),
                *window,
                *paging,
            ],
            page_of(rejected_row),
            page_example(rejected_example),
        ),
        "/v1/ops/rejected/{partition}/{offset}": operation(
            "get",
            "getRejectedList",
            "One rejected list: its findings and its document, personal fields masked",
            position,
            rejected_one,
            {
                **rejected_example,
                "errors": [routing_error],
                "document": {"input": {"setlinfo": {"psn_name": "张*", "setl_id": "S0001"}}},
            },
            (400, 401, 403, 404, 503),
        ),
        "/v1/ops/dead-letters": operation(
            "get",
            "listDeadLetters",
            "Dead letters by worker, hospital and time, newest first (ops only)",
            [
                param("worker", "query", {"type": "string"}, "one worker"),
                hospital,
                *window,
                *paging,
            ],
            page_of(dead_row),
            page_example(dead_example),
        ),
        dead_path: operation(
            "get",
            "getDeadLetter",
            "One dead letter, its message read back from Kafka with personal fields masked",
            dead_target,
            dead_one,
            {
                **dead_example,
                "message": {"receipt_id": "…", "document": {"input": {"setlinfo": {}}}},
                "message_gone": False,
                "message_unreadable": None,
                "audit": page_example(audit_example),
            },
            (400, 401, 403, 404, 503),
        ),
        dead_path + "/replay": operation(
            "post",
            "replayDeadLetter",
            "Re-deliver a dead letter to its worker after a fix: once (a second request "
            "answers what the first did), audited. From the /ops page: same origin and "
            "X-Dipgw-Ops: 1",
            [
                *dead_target,
                param(
                    "X-Dipgw-Ops",
                    "header",
                    {"enum": ["1"]},
                    "required when the /ops session cookie authenticates (CSRF)",
                ),
            ],
            replay_answer,
            {
                "id": dead_example["id"],
                "replayed": True,
                "result": "replayed",
                "replayed_at": at,
                "replayed_to": "dip.settlement.accepted.v1/2/90",
                "audited_at": at,
                "actor": "ops-zhang",
            },
            (400, 401, 403, 404, 503),
        ),
        "/v1/ops/audit": operation(
            "get",
            "listOpsAudit",
            "What ops did from /ops (replays), newest first",
            paging,
            page_of(audit_row),
            page_example(audit_example),
        ),
    }
