"""The one error shape on the wire, for errors the gateway itself raises (auth, limits, format).

Validation findings come from `contracts` in the same shape; `dimension` is empty here when
the error is about the request rather than the data (authentication, limits).
"""

from __future__ import annotations

from aiohttp import web

from adapters.runtime.errors import DipgwError
from contracts.messages import ENCODER
from gateway.refusals import BAD_QUERY, RATE_LIMITED, Refusal


class NonceReused(DipgwError):
    """A signed request was replayed: its nonce was used before (answered 401)."""


class BadQuery(DipgwError, ValueError):
    """A query parameter the caller cannot use: answered 400 BAD_QUERY (exit 2 in the CLI).

    `str()` is the English message; `message` the Chinese one (by default the English one
    behind a Chinese prefix); `field` the parameter, when one is to blame.
    """

    def __init__(self, message_en: str, message: str | None = None, *, field: str = "$") -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message = message if message is not None else f"查询参数错误：{message_en}"
        self.field = field

    def response(self) -> web.Response:
        return http_error(
            BAD_QUERY, field=self.field, message=self.message, message_en=self.message_en
        )


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
    refusal: Refusal,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **values: object,
) -> web.Response:
    """The answer for one catalogued refusal (`gateway.refusals`), its templates filled."""
    problem = refusal.problem(field, **values)
    return problems_response(
        refusal.status, [problem], {"X-Dipgw-Reason": problem.rule, **(headers or {})}
    )


def rate_limited(wait_s: float, budget: str, budget_en: str) -> web.Response:
    """429 naming the budget spent, with the seconds until it allows the next request."""
    return http_error(
        RATE_LIMITED,
        budget=budget,
        budget_en=budget_en,
        headers={"Retry-After": str(max(1, round(wait_s + 0.5)))},
    )
