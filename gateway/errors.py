"""The one error shape on the wire, for errors the gateway itself raises (auth, limits, format).

Validation findings come from `contracts` in the same shape; `dimension` is empty here when
the error is about the request rather than the data (authentication, limits).
"""

from __future__ import annotations

from aiohttp import web

from contracts import Problem
from contracts.messages import ENCODER


class NonceReused(Exception):
    """A signed request was replayed: its nonce was used before (answered 401)."""


def json_response(
    status: int, payload: object, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=ENCODER.encode(payload),
        content_type="application/json",
        headers=headers,
    )


def problems_response(
    status: int, problems: list[object], headers: dict[str, str] | None = None
) -> web.Response:
    return json_response(status, {"errors": problems}, headers)


def http_error(
    status: int,
    rule: str,
    message: str,
    message_en: str,
    *,
    field: str = "$",
    headers: dict[str, str] | None = None,
) -> web.Response:
    problem = Problem(
        rule=rule,
        field=field,
        dimension="",
        severity="reject",
        message=message,
        message_en=message_en,
    )
    return problems_response(status, [problem], {"X-Dipgw-Reason": rule, **(headers or {})})
