"""The settlement and special-review endpoints' paths of the OpenAPI document, with examples."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway import refusals

_MONEY = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$", "description": "yuan, 2 decimals"}
_MOMENT = {"type": "string", "format": "date-time", "description": "+08:00"}
_NUMBER_TEXT = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
_HOSPITAL = {"type": "string", "pattern": "^H[0-9]{11}$"}


def _review_schema() -> dict[str, Any]:
    text_or_null = {"type": ["string", "null"]}
    return {
        "type": "object",
        "required": ["review_id", "case_key", "status", "requested_by", "requested_at"],
        "properties": {
            "review_id": {"type": "integer"},
            "case_key": {"type": "string"},
            "fixmedins_code": _HOSPITAL,
            "setl_id": {"type": "string"},
            "treating_city": {"type": "string", "pattern": "^[0-9]{6}$"},
            "clearing_year": {"type": "integer"},
            "status": {"enum": ["open", "approved", "rejected"]},
            "request_reason": {"type": "string"},
            "requested_by": {"type": "string"},
            "requested_at": _MOMENT,
            "approved_points": {"anyOf": [_NUMBER_TEXT, {"type": "null"}]},
            "reason": text_or_null,
            "decided_by": text_or_null,
            "decided_at": {"anyOf": [_MOMENT, {"type": "null"}]},
            "case": {"type": "object"},
            "audit": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["action", "actor", "at", "after"],
                    "properties": {
                        "action": {"enum": ["open", "approve", "reject"]},
                        "actor": {"type": "string"},
                        "at": _MOMENT,
                        "before": {"type": ["object", "null"]},
                        "after": {"type": "object"},
                    },
                },
            },
        },
    }


def _line_schema() -> dict[str, Any]:
    money = {
        name: _MONEY
        for name in (
            "dip_amount",
            "other_payments",
            "deductions",
            "deposit",
            "settled",
            "payable",
            "adjustment",
        )
    }
    return {
        "type": "object",
        "required": ["fixmedins_code", "fund", "payable"],
        "properties": {
            "fixmedins_code": _HOSPITAL,
            "name": {"type": ["string", "null"]},
            "fund": {"type": "string"},
            "cases": {"type": "integer"},
            "points": _NUMBER_TEXT,
            **money,
            "figures": {"type": "object"},
        },
    }


def _run_schema(with_lines: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["run_id", "city", "period", "kind", "seq", "created_at"],
        "properties": {
            "run_id": {"type": "integer"},
            "city": {"type": "string"},
            "period": {"type": "string", "pattern": "^[0-9]{4}(-[0-9]{2})?$"},
            "kind": {"enum": ["month", "year"]},
            "seq": {"type": "integer"},
            "clearing_year": {"type": "integer"},
            "policy_id": {"type": "integer"},
            "inputs": {"type": "object"},
            "point_values": {"type": "object"},
            "totals": {"type": "object", "description": "absent for a hospital"},
            "created_at": _MOMENT,
            "lines_url": {"type": "string"},
        },
    }
    if with_lines:
        schema["properties"]["lines"] = {"type": "array", "items": _line_schema()}
        schema["required"] = [*schema["required"], "lines"]
    return schema


def _sim_schema(with_lines: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["sim_id", "city", "clearing_year", "seq", "created_at"],
        "properties": {
            "sim_id": {"type": "integer"},
            "city": {"type": "string"},
            "clearing_year": {"type": "integer"},
            "seq": {"type": "integer"},
            "current_version": {"type": ["string", "null"]},
            "draft_version": {"type": "string"},
            "point_values": {"type": "object"},
            "cases": {"type": "integer"},
            "payment_current": _MONEY,
            "payment_draft": _MONEY,
            "delta": _MONEY,
            "delta_pct": {"anyOf": [_NUMBER_TEXT, {"type": "null"}]},
            "kinds_current": {"type": "object"},
            "kinds_draft": {"type": "object"},
            "created_at": _MOMENT,
        },
    }
    if with_lines:
        line = {
            "type": "object",
            "required": ["fixmedins_code", "payment_current", "payment_draft", "delta"],
            "properties": {
                "fixmedins_code": _HOSPITAL,
                "cases": {"type": "integer"},
                "payment_current": _MONEY,
                "payment_draft": _MONEY,
                "delta": _MONEY,
                "delta_pct": {"anyOf": [_NUMBER_TEXT, {"type": "null"}]},
            },
        }
        schema["properties"]["lines"] = {"type": "array", "items": line}
    return schema


def example_review(decided: bool = False) -> dict[str, Any]:
    review: dict[str, Any] = {
        "review_id": 17,
        "case_key": "H44010000001:SETL202611240001",
        "fixmedins_code": "H44010000001",
        "setl_id": "SETL202611240001",
        "treating_city": "440100",
        "clearing_year": 2026,
        "status": "open",
        "request_reason": "ICU 45 天，ECMO，费用为病种均费 6.2 倍",
        "requested_by": "H44010000001",
        "requested_at": "2026-12-01T10:00:00+08:00",
        "approved_points": None,
        "reason": None,
        "decided_by": None,
        "decided_at": None,
    }
    if decided:
        review.update(
            status="approved",
            approved_points="850.5",
            reason="专家组评议：病情危重，按实际成本核定",
            decided_by="city 440100: 广州市医保局审核科",
            decided_at="2026-12-03T15:20:00+08:00",
        )
    return review


def _example_line(code: str, fund: str, payable: str) -> dict[str, Any]:
    return {
        "fixmedins_code": code,
        "name": "广州市第一人民医院",
        "fund": fund,
        "cases": 1280,
        "points": "1534200.0000",
        "dip_amount": "18940211.35",
        "other_payments": "5120330.10",
        "deductions": "0.00",
        "deposit": "690994.06",
        "settled": "13819881.25",
        "payable": payable,
        "adjustment": "0.00",
        "figures": {"point_value": "12.3456"},
    }


def example_run(with_lines: bool = False) -> dict[str, Any]:
    run: dict[str, Any] = {
        "run_id": 42,
        "city": "440100",
        "period": "2026-10",
        "kind": "month",
        "seq": 1,
        "clearing_year": 2026,
        "policy_id": 3,
        "inputs": {"policy_version": "440100/2026/1", "ruleset_version": "2026.1"},
        "point_values": {"employee": "12.3456", "resident": "10.9876"},
        "totals": {"payable": "13128887.19"},
        "created_at": "2026-11-05T09:00:00+08:00",
        "lines_url": "/v1/settlement/runs/42",
    }
    if with_lines:
        run["lines"] = [_example_line("H44010000001", "employee", "13128887.19")]
    return run


def example_simulation(with_lines: bool = False) -> dict[str, Any]:
    sim: dict[str, Any] = {
        "sim_id": 7,
        "city": "440100",
        "clearing_year": 2026,
        "seq": 2,
        "current_version": "2026.1",
        "draft_version": "440100/2026/2027-draft@3f2a9c1b7d0e",
        "point_values": {"current": {"employee": "12.35"}, "draft": {"employee": "11.98"}},
        "cases": 1000000,
        "payment_current": "9876543210.00",
        "payment_draft": "9876543210.00",
        "delta": "0.00",
        "delta_pct": "0.00",
        "kinds_current": {"normal": 930000, "high": 40000, "low": 30000},
        "kinds_draft": {"normal": 925000, "high": 45000, "low": 30000},
        "created_at": "2026-11-20T16:00:00+08:00",
        "lines_url": "/v1/simulations/7",
    }
    if with_lines:
        sim["lines"] = [
            {
                "fixmedins_code": "H44010000001",
                "name": "广州市第一人民医院",
                "cases": 52000,
                "payment_current": "512000000.00",
                "payment_draft": "498700000.00",
                "delta": "-13300000.00",
                "delta_pct": "-2.60",
            }
        ]
    return sim


def _problem(refusal: refusals.Refusal, field: str | None = None, **values: object) -> Any:
    return {"errors": [msgspec.to_builtins(refusal.problem(field, **values))]}


def openapi_paths() -> dict[str, Any]:
    from gateway.openapi import error_responses

    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "schema": schema,
            "description": description,
        }

    def path(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }

    def answer(description: str, schema: dict[str, Any], example: Any) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": schema, "example": example}},
        }

    def page(description: str, key: str, item: dict[str, Any], example: Any) -> dict[str, Any]:
        """A list route's 200: the matching total and one page of items under `key`."""
        schema = {
            "type": "object",
            "required": ["total", key],
            "properties": {"total": {"type": "integer"}, key: {"type": "array", "items": item}},
        }
        return answer(description, schema, {"total": 1, key: [example]})

    def errors(*codes: int, **examples: Any) -> dict[str, Any]:
        found = error_responses(*codes)
        for code, example in examples.items():
            found[code.removeprefix("e")]["content"]["application/json"]["example"] = example
        return found

    paging = [
        query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "default 50"),
        query("page", {"type": "integer", "minimum": 1}, "from 1"),
    ]
    city = query("city", {"type": "string", "pattern": "^[0-9]{6}$"}, "one city (ops)")
    readers = [{"bearer": []}, {"hmac": []}, {"mtls": []}]
    bureaus = [{"bearer": []}]
    review = _review_schema()
    decided = {
        **example_review(True),
        "audit": [
            {
                "action": "open",
                "actor": "H44010000001",
                "at": "2026-12-01T10:00:00+08:00",
                "before": None,
                "after": example_review(),
            },
            {
                "action": "approve",
                "actor": "city 440100: 广州市医保局审核科",
                "at": "2026-12-03T15:20:00+08:00",
                "before": example_review(),
                "after": example_review(True),
            },
        ],
    }
    quota = _problem(
        refusals.REVIEW_QUOTA,
        city="440100",
        year=2026,
        quota=2150,
        cases=430112,
        permille="5",
        approved=2150,
    )
    return {
        "/v1/settlement/runs": {
            "get": {
                "operationId": "listSettlementRuns",
                "tags": ["settlement"],
                "summary": "Settlement runs (月度预结算, 年度清算), last stored first: ops all, a "
                "city bureau its city, a hospital its city's (without the city's totals)",
                "security": readers,
                "parameters": [
                    city,
                    query("kind", {"enum": ["month", "year"]}, "month or year"),
                    query(
                        "period",
                        {"type": "string", "pattern": "^[0-9]{4}(-[0-9]{2})?$"},
                        "YYYY-MM or YYYY",
                    ),
                    *paging,
                ],
                "responses": {
                    "200": page("the runs", "runs", _run_schema(False), example_run()),
                    **error_responses(400, 401, 403, 503),
                },
            }
        },
        "/v1/settlement/runs/{run_id}": {
            "get": {
                "operationId": "getSettlementRun",
                "tags": ["settlement"],
                "summary": "One run with its per-hospital, per-fund lines (a hospital: its own)",
                "security": readers,
                "parameters": [
                    path("run_id"),
                    query("hospital", _HOSPITAL, "one hospital's lines"),
                ],
                "responses": {
                    "200": answer("the run and its lines", _run_schema(True), example_run(True)),
                    **errors(
                        400,
                        401,
                        403,
                        404,
                        503,
                        e404=_problem(
                            refusals.NOT_FOUND, what="settlement run", what_cn="结算批次"
                        ),
                    ),
                },
            }
        },
        "/v1/simulations": {
            "get": {
                "operationId": "listSimulations",
                "tags": ["settlement"],
                "summary": "Rules simulations (测算), newest first: ops all, a bureau its city",
                "security": bureaus,
                "parameters": [
                    city,
                    query("year", {"type": "integer", "minimum": 2000, "maximum": 2100}, "year"),
                    *paging,
                ],
                "responses": {
                    "200": page(
                        "the simulations", "simulations", _sim_schema(False), example_simulation()
                    ),
                    **error_responses(400, 401, 403, 503),
                },
            }
        },
        "/v1/simulations/{sim_id}": {
            "get": {
                "operationId": "getSimulation",
                "tags": ["settlement"],
                "summary": "One simulation with its per-hospital lines, biggest loss first",
                "security": bureaus,
                "parameters": [path("sim_id")],
                "responses": {
                    "200": answer("the simulation", _sim_schema(True), example_simulation(True)),
                    **errors(
                        401,
                        403,
                        404,
                        503,
                        e404=_problem(refusals.NOT_FOUND, what="simulation", what_cn="测算"),
                    ),
                },
            }
        },
        "/v1/special-reviews": {
            "post": {
                "operationId": "openSpecialReview",
                "tags": ["special review"],
                "summary": "Open a special review (特病单议) for one scored case: a hospital its "
                "own, a city bureau its city's",
                "security": readers,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["fixmedins_code", "setl_id", "reason"],
                                "properties": {
                                    "fixmedins_code": _HOSPITAL,
                                    "setl_id": {"type": "string", "maxLength": 64},
                                    "reason": {"type": "string", "maxLength": 2000},
                                },
                            },
                            "example": {
                                "fixmedins_code": "H44010000001",
                                "setl_id": "SETL202611240001",
                                "reason": "ICU 45 天，ECMO，费用为病种均费 6.2 倍",
                            },
                        }
                    },
                },
                "responses": {
                    "201": answer("opened", review, example_review()),
                    **errors(
                        400,
                        401,
                        403,
                        404,
                        422,
                        503,
                        e404=_problem(
                            refusals.REVIEW_CASE_UNKNOWN, case="H44010000001:SETL202611240001"
                        ),
                    ),
                    "409": answer(
                        "the case has an open or approved request",
                        {"$ref": "#/components/schemas/ErrorList"},
                        _problem(
                            refusals.REVIEW_DUPLICATE,
                            case="H44010000001:SETL202611240001",
                            review_id=17,
                            status="open",
                        ),
                    ),
                },
            },
            "get": {
                "operationId": "listSpecialReviews",
                "tags": ["special review"],
                "summary": "Special reviews, newest first (a hospital: its own cases)",
                "security": readers,
                "parameters": [
                    city,
                    query("hospital", _HOSPITAL, "one hospital"),
                    query("status", {"enum": ["open", "approved", "rejected"]}, "one status"),
                    query(
                        "year",
                        {"type": "integer", "minimum": 2000, "maximum": 2100},
                        "clearing year",
                    ),
                    *paging,
                ],
                "responses": {
                    "200": page("the requests", "reviews", review, example_review()),
                    **error_responses(400, 401, 403, 503),
                },
            },
        },
        "/v1/special-reviews/{review_id}": {
            "get": {
                "operationId": "getSpecialReview",
                "tags": ["special review"],
                "summary": "One request with its case's score and its audit (who, when, "
                "before/after)",
                "security": readers,
                "parameters": [path("review_id")],
                "responses": {
                    "200": answer("the request", review, decided),
                    **errors(
                        401,
                        403,
                        404,
                        503,
                        e404=_problem(refusals.REVIEW_UNKNOWN, review_id=17),
                    ),
                },
            }
        },
        "/v1/special-reviews/{review_id}/decision": {
            "post": {
                "operationId": "decideSpecialReview",
                "tags": ["special review"],
                "summary": "Approve points (> 0) or reject, with a reason: the case's city "
                "bureau or ops; final; approval within the year's quota of the settlement "
                "policy in force",
                "security": bureaus,
                "parameters": [path("review_id")],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["decision", "reason"],
                                "properties": {
                                    "decision": {"enum": ["approve", "reject"]},
                                    "approved_points": {
                                        "anyOf": [
                                            {"type": "number", "exclusiveMinimum": 0},
                                            _NUMBER_TEXT,
                                        ]
                                    },
                                    "reason": {"type": "string", "maxLength": 2000},
                                },
                            },
                            "example": {
                                "decision": "approve",
                                "approved_points": "850.5",
                                "reason": "专家组评议：病情危重，按实际成本核定",
                            },
                        }
                    },
                },
                "responses": {
                    "200": answer("decided", review, example_review(True)),
                    **errors(400, 401, 403, 404, 422, 503, e422=quota),
                    "409": answer(
                        "already decided",
                        {"$ref": "#/components/schemas/ErrorList"},
                        _problem(
                            refusals.REVIEW_DECIDED,
                            review_id=17,
                            status="approved",
                            decided_by="city 440100: 广州市医保局审核科",
                            decided_at="2026-12-03T15:20:00+08:00",
                        ),
                    ),
                },
            }
        },
    }
