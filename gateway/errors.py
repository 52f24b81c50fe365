"""The one error shape on the wire, for errors the gateway itself raises (auth, limits, format).

Validation findings come from `contracts` in the same shape; `dimension` is empty here when
the error is about the request rather than the data (authentication, limits).
"""

from __future__ import annotations

import msgspec
from aiohttp import web


class NonceReused(Exception):
    """A signed request was replayed: its nonce was used before (answered 401)."""


class Problem(msgspec.Struct, kw_only=True):
    rule: str
    field: str
    dimension: str
    severity: str
    message: str
    message_en: str


ENCODER = msgspec.json.Encoder()


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


# SQLSTATE classes that mean "the server is away or refusing", not "this data is wrong":
# 08 connection exception, 53 insufficient resources, 57 operator intervention (shutdown,
# terminated), 58 system error; 55000 is "database is not accepting connections".
_UNAVAILABLE_SQLSTATE = ("08", "53", "57", "58")


def is_dependency_failure(exc: BaseException) -> bool:
    """PostgreSQL or Kafka away (a connection-level error of their clients, or the network).

    Retryable, answered with 503. A data or integrity error of PostgreSQL is not one: that is
    a bug or bad data, must not be retried forever, and is reported as such.
    """
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return True
    module = type(exc).__module__
    if module.startswith("aiokafka"):
        return True
    if module.startswith("asyncpg"):
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate is None:  # client-side: connection lost, pool closing, …
            return True
        return str(sqlstate).startswith(_UNAVAILABLE_SQLSTATE) or sqlstate == "55000"
    return False
