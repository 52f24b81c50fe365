"""Who may read the quality reports, and what: ops every city, a city bureau its own city only,
a hospital nothing. A refusal is raised as `Refused`, carrying the ready HTTP answer."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from adapters.runtime.errors import DipgwError
from contracts import city_of
from gateway import params, refusals
from gateway.accounts import Principal
from gateway.authn import principal_of
from gateway.errors import http_error
from gateway.ops.reports import hospital_admdvs

READERS = ("ops", "city")


class Refused(DipgwError):
    """The caller may not read this; `response` is the answer to give."""

    def __init__(self, response: web.Response) -> None:
        self.response = response


def not_a_reader() -> web.Response:
    return http_error(
        refusals.FORBIDDEN_ROLE,
        allowed="运维与医保局",
        action="查看",
        allowed_en="ops and city bureaus",
        action_en="read reports",
    )


def forbidden_region() -> web.Response:
    return http_error(refusals.FORBIDDEN_REGION)


def reader(request: web.Request) -> Principal:
    """The caller, if it may read the reports at all; else `Refused`."""
    principal = principal_of(request)
    if principal.role not in READERS:
        raise Refused(not_a_reader())
    return principal


def scope(request: web.Request) -> tuple[str | None, str | None]:
    """(city, hospital) the caller may and asked to see; `Refused` or `BadQuery` if not."""
    principal = reader(request)
    city = params.city(request.query.get("city"), "city")
    hospital = params.code(
        request.query.get("hospital"), "hospital", params.HOSPITAL, "H + 11 digits"
    )
    if principal.role == "city":
        own = city_of(principal.admdvs) or ""
        if city is not None and city != own:
            raise Refused(forbidden_region())
        city = own
    return city, hospital


async def check_hospital(request: web.Request, pool: asyncpg.Pool, hospital: str | None) -> None:
    """`Refused` unless the caller may read `hospital` (a city bureau: one of its city's)."""
    principal = principal_of(request)
    if hospital is None or principal.role == "ops":
        return
    if not principal.may_read_region(await hospital_admdvs(pool, hospital)):
        raise Refused(forbidden_region())
