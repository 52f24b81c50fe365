"""Query handlers: where a receipt is, what a case has been through.

"Absent" and "not yours" get the same answer, so nothing leaks about other hospitals. Every
moment in an answer is in China Standard Time with its offset (PostgreSQL answers in UTC).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from contracts import in_display_zone
from gateway import params, refusals
from gateway.accounts import Principal
from gateway.authn import principal_of
from gateway.errors import BadQuery, http_error, json_response
from gateway.ingest import in_display_zone_row, receipt_status
from gateway.services import SERVICES


def _may_see(principal: Principal, row: dict[str, Any]) -> bool:
    if principal.role == "hospital":
        return row["fixmedins_code"] == principal.fixmedins_code
    return principal.may_read_region(row["mdtrtarea_admvs"]) or principal.may_read_region(
        row["insuplc_admdvs"]
    )


_KEY_CHARS = 64  # setl_id is at most 30 characters in the national contract

_WHAT_CN = {"receipt": "回执", "case": "病例"}


def _not_found(what: str) -> web.Response:
    # The same answer for "absent" and "not yours": nothing leaks about other hospitals.
    return http_error(refusals.NOT_FOUND, what=what, what_cn=_WHAT_CN[what])


async def get_receipt(request: web.Request) -> web.StreamResponse:
    try:
        receipt_id = params.uuid(request.match_info["receipt_id"], "receipt_id")
    except BadQuery:  # no receipt has such an id
        return _not_found("receipt")
    row = await receipt_status(request.app[SERVICES].pool, receipt_id)
    if row is None or not _may_see(principal_of(request), row):
        return _not_found("receipt")
    row["receipt_id"] = str(row["receipt_id"])
    return json_response(200, row)


async def get_case(request: web.Request) -> web.StreamResponse:
    """The case's latest revision and every receipt it has had."""
    try:  # a key no record can have (not storable, too long) is no case's
        code = params.code(
            request.match_info["fixmedins_code"], "fixmedins_code", params.HOSPITAL, "H + 11 digits"
        )
        setl_id = params.key(request.match_info["setl_id"], "setl_id", max_chars=_KEY_CHARS)
    except BadQuery:
        return _not_found("case")
    pool = request.app[SERVICES].pool
    receipts = [
        in_display_zone_row(r)
        for r in await pool.fetch(
            """SELECT receipt_id, revision, status, received_at, accepted_at, stored_at,
                  fixmedins_code, mdtrtarea_admvs, insuplc_admdvs
           FROM receipts WHERE fixmedins_code = $1 AND setl_id = $2 ORDER BY revision""",
            code,
            setl_id,
        )
    ]
    if not receipts or not _may_see(principal_of(request), receipts[-1]):
        return _not_found("case")
    stored = await pool.fetchrow(
        "SELECT revision, stored_at FROM cases WHERE fixmedins_code = $1 AND setl_id = $2",
        code,
        setl_id,
    )
    for row in receipts:
        row["receipt_id"] = str(row["receipt_id"])
    return json_response(
        200,
        {
            "case_key": f"{code}:{setl_id}",
            "latest_revision": receipts[-1]["revision"],
            "stored_revision": stored["revision"] if stored else None,
            "stored_at": in_display_zone(stored["stored_at"]) if stored else None,
            "receipts": receipts,
        },
    )
