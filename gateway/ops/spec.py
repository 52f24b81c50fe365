"""The quality endpoints' paths of the OpenAPI document."""

from __future__ import annotations

from typing import Any

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
