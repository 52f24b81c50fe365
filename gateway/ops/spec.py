"""The quality endpoints' paths of the OpenAPI document."""

from __future__ import annotations

from typing import Any

from gateway.ops.reports import GROUPINGS


def openapi_paths() -> dict[str, Any]:
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
