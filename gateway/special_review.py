"""Special review (特病单议 / 特例单议): requests, decisions, their audit and the year's quota.

A hospital (its own cases) or a city bureau (its city's cases) opens a request for one scored
case; a reviewer (the case's city bureau, or ops) approves points with a reason, or rejects
with one. A decision is final. Every change is written to `special_review_audit` in the same
transaction (who, when, the row before and after). The year's clearing (`dipgw settle year`)
adds the approved points by SQL.

The quota (e.g. ≤ 5‰ of the city's scored cases of the year) is judged when a request is
approved, under a lock of the city and year so two reviewers cannot both take the last place.
It is read from the settlement policy in force (`settlement_policies`, highest seq); without
one nothing is approved: a quota never defaults in code.

No HTTP here: the API (`gateway.routes_settlement`) and the CLI (`dipgw review`) both call
these functions and turn `ReviewRefused` into their answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

import asyncpg

from adapters.runtime.errors import DipgwError
from contracts import Problem, city_of, shown, shown_or_none
from contracts.messages import ENCODER
from gateway import refusals
from gateway.refusals import Refusal

STATUSES = ("open", "approved", "rejected")
DECISIONS = ("approve", "reject")
REASON_MAX = 2000
"""Characters of a reason: a paragraph for the file, not the medical record itself."""
POINTS_MAX = Decimal("1000000000")
_PER_MILLE = Decimal(1000)


class ReviewRefused(DipgwError):
    """A request or decision that cannot be made: the catalogued refusal and its values."""

    def __init__(self, refusal: Refusal, field: str | None = None, **values: object) -> None:
        self.refusal, self.field, self.values = refusal, field, values
        problem = refusal.problem(field, **values)
        super().__init__(problem.message_en)
        self.status = refusal.status

    def problem(self) -> Problem:
        return self.refusal.problem(self.field, **self.values)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a hospital (`fixmedins_code`), a city bureau (`city`) or ops; `name` is what
    the audit records (a hospital's code, a token's label, a CLI operator)."""

    role: str  # "hospital" | "city" | "ops"
    name: str
    fixmedins_code: str | None = None
    city: str | None = None

    def may_see(self, fixmedins_code: str, treating_city: str) -> bool:
        if self.role == "hospital":
            return fixmedins_code == self.fixmedins_code
        if self.role == "city":
            return treating_city == self.city
        return self.role == "ops"


def bureau(admdvs: str | None, label: str) -> Actor:
    """A city bureau acting, from its token's region."""
    city = city_of(admdvs)
    return Actor(role="city", name=f"city {city}: {label}", city=city)


# -- checking what a caller sends --------------------------------------------------------------


def _storable(text: str) -> bool:
    """Text PostgreSQL stores and people read: no NUL or other control character (line
    breaks and tabs aside), no lone surrogate."""
    return not any(
        (c < " " and c not in "\n\r\t") or c == "\x7f" or "\ud800" <= c <= "\udfff" for c in text
    )


def reason_of(value: object, field: str = "reason") -> str:
    """A reason: text of 1..`REASON_MAX` characters once trimmed, storable."""
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value.strip()) > REASON_MAX
        or not _storable(value)
    ):
        raise ReviewRefused(
            refusals.REVIEW_FIELD,
            field,
            name=field,
            shape=f" 1–{REASON_MAX} 字的文本",
            shape_en=f"text of 1–{REASON_MAX} characters",
        )
    return value.strip()


def points_of(value: object) -> Decimal:
    """Approved points: a number (JSON number or text) above 0, at most 4 decimals."""
    given = "null" if value is None else str(value)[:40]
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ReviewRefused(refusals.REVIEW_POINTS, given=given)
    try:
        points = Decimal(str(value).strip())
    except InvalidOperation:
        raise ReviewRefused(refusals.REVIEW_POINTS, given=given) from None
    exponent = points.as_tuple().exponent
    if (
        not points.is_finite()
        or points <= 0
        or points > POINTS_MAX
        or not isinstance(exponent, int)
        or exponent < -4
    ):
        raise ReviewRefused(refusals.REVIEW_POINTS, given=given)
    return points


def _case_key(fixmedins_code: str, setl_id: str) -> str:
    return f"{fixmedins_code}:{setl_id}"


# -- the rows as shown -------------------------------------------------------------------------

_COLUMNS = """r.review_id, r.fixmedins_code, r.setl_id, r.treating_city, r.clearing_year, r.status,
    r.request_reason, r.approved_points, r.reason, r.requested_by, r.requested_at,
    r.decided_by, r.decided_at"""


def _points_text(points: Decimal | None) -> str | None:
    return None if points is None else format(points.normalize(), "f")


def shown_review(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """A request as the API, the CLI and the audit show it: moments +08:00, points as text."""
    return {
        "review_id": row["review_id"],
        "case_key": _case_key(row["fixmedins_code"], row["setl_id"]),
        "fixmedins_code": row["fixmedins_code"],
        "setl_id": row["setl_id"],
        "treating_city": row["treating_city"],
        "clearing_year": row["clearing_year"],
        "status": row["status"],
        "request_reason": row["request_reason"],
        "requested_by": row["requested_by"],
        "requested_at": shown(row["requested_at"]),
        "approved_points": _points_text(row["approved_points"]),
        "reason": row["reason"],
        "decided_by": row["decided_by"],
        "decided_at": shown_or_none(row["decided_at"]),
    }


def _json(doc: dict[str, Any] | None) -> str | None:
    return None if doc is None else ENCODER.encode(doc).decode()


async def _audit(
    conn: asyncpg.Connection,
    review_id: int,
    action: str,
    actor: Actor,
    at: datetime,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> None:
    await conn.execute(
        """INSERT INTO special_review_audit (review_id, action, actor, acted_at, before, after)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)""",
        review_id,
        action,
        actor.name,
        at,
        _json(before),
        _json(after),
    )


# -- opening -----------------------------------------------------------------------------------


async def open_review(
    pool: asyncpg.Pool,
    actor: Actor,
    fixmedins_code: str,
    setl_id: str,
    reason: object,
    *,
    now: datetime,
) -> dict[str, Any]:
    """Open a request for one scored case; `ReviewRefused` when it cannot be opened."""
    case = _case_key(fixmedins_code, setl_id)
    text = reason_of(reason)
    if actor.role == "hospital" and fixmedins_code != actor.fixmedins_code:
        # Refused before any lookup: nothing is told about another hospital's cases.
        raise ReviewRefused(
            refusals.REVIEW_NOT_YOURS, given=fixmedins_code, own=actor.fixmedins_code
        )
    async with pool.acquire() as conn, conn.transaction():
        scored = await conn.fetchrow(
            """SELECT treating_city, clearing_year, status, unscored_rule FROM scored_cases
               WHERE fixmedins_code = $1 AND setl_id = $2""",
            fixmedins_code,
            setl_id,
        )
        if scored is None or not actor.may_see(fixmedins_code, scored["treating_city"]):
            raise ReviewRefused(refusals.REVIEW_CASE_UNKNOWN, case=case)
        if scored["status"] != "scored" or scored["clearing_year"] is None:
            why = scored["unscored_rule"] or "no clearing year"
            raise ReviewRefused(refusals.REVIEW_UNSCORED, case=case, why=why)
        try:
            async with conn.transaction():  # a savepoint: the duplicate is looked up after
                row = await conn.fetchrow(
                    f"""INSERT INTO special_reviews AS r (fixmedins_code, setl_id, treating_city,
                            clearing_year, request_reason, requested_by, requested_at)
                        VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}""",
                    fixmedins_code,
                    setl_id,
                    scored["treating_city"],
                    scored["clearing_year"],
                    text,
                    actor.name,
                    now,
                )
        except asyncpg.UniqueViolationError:
            live = await conn.fetchrow(
                """SELECT review_id, status FROM special_reviews
                   WHERE fixmedins_code = $1 AND setl_id = $2 AND status <> 'rejected'""",
                fixmedins_code,
                setl_id,
            )
            raise ReviewRefused(
                refusals.REVIEW_DUPLICATE,
                case=case,
                review_id=live["review_id"] if live else "?",
                status=live["status"] if live else "open",
            ) from None
        assert row is not None
        after = shown_review(row)
        await _audit(conn, row["review_id"], "open", actor, now, None, after)
    return after


# -- deciding ----------------------------------------------------------------------------------


async def _quota_check(conn: asyncpg.Connection, city: str, year: int) -> None:
    """`ReviewRefused` unless one more approval fits the city's quota for the year. Called in
    the deciding transaction, after taking the city-and-year lock."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"dipgw.special_review:{city}:{year}",
    )
    permille = await conn.fetchval(
        """SELECT special_review_quota_permille FROM settlement_policies
           WHERE city = $1 AND clearing_year = $2 ORDER BY seq DESC LIMIT 1""",
        city,
        year,
    )
    if permille is None:
        raise ReviewRefused(refusals.REVIEW_NO_POLICY, city=city, year=year)
    figures = await conn.fetchrow(
        """SELECT
             (SELECT count(*) FROM scored_cases
              WHERE treating_city = $1 AND clearing_year = $2 AND status = 'scored') AS cases,
             (SELECT count(*) FROM special_reviews
              WHERE treating_city = $1 AND clearing_year = $2 AND status = 'approved')
               AS approved""",
        city,
        year,
    )
    cases, approved = int(figures["cases"]), int(figures["approved"])
    quota = int((Decimal(cases) * Decimal(permille) / _PER_MILLE).to_integral_value(ROUND_FLOOR))
    if approved + 1 > quota:
        raise ReviewRefused(
            refusals.REVIEW_QUOTA,
            city=city,
            year=year,
            quota=quota,
            cases=cases,
            permille=format(Decimal(permille).normalize(), "f"),
            approved=approved,
        )


async def decide(
    pool: asyncpg.Pool,
    actor: Actor,
    review_id: int,
    decision: str,
    reason: object,
    *,
    points: object,
    now: datetime,
) -> dict[str, Any]:
    """Approve (`points` > 0) or reject an open request, audited; `ReviewRefused` if not."""
    if decision not in DECISIONS:
        raise ReviewRefused(
            refusals.REVIEW_FIELD,
            "decision",
            name="decision",
            shape=" approve 或 reject",
            shape_en="approve or reject",
        )
    text = reason_of(reason)
    approved = points_of(points) if decision == "approve" else None
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM special_reviews r WHERE review_id = $1 FOR UPDATE",
            review_id,
        )
        if row is None or not actor.may_see(row["fixmedins_code"], row["treating_city"]):
            raise ReviewRefused(refusals.REVIEW_UNKNOWN, review_id=review_id)
        before = shown_review(row)
        if row["status"] != "open":
            raise ReviewRefused(
                refusals.REVIEW_DECIDED,
                review_id=review_id,
                status=row["status"],
                decided_by=row["decided_by"],
                decided_at=before["decided_at"],
            )
        if decision == "approve":
            await _quota_check(conn, row["treating_city"], row["clearing_year"])
        updated = await conn.fetchrow(
            f"""UPDATE special_reviews AS r SET status = $2, approved_points = $3, reason = $4,
                       decided_by = $5, decided_at = $6
                WHERE review_id = $1 RETURNING {_COLUMNS}""",
            review_id,
            "approved" if decision == "approve" else "rejected",
            approved,
            text,
            actor.name,
            now,
        )
        assert updated is not None
        after = shown_review(updated)
        await _audit(conn, review_id, decision, actor, now, before, after)
    return after


# -- reading -----------------------------------------------------------------------------------


async def list_reviews(
    pool: asyncpg.Pool,
    *,
    city: str | None = None,
    hospital: str | None = None,
    status: str | None = None,
    year: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Requests, newest first, filtered (the caller's scope is one of the filters)."""
    where = """($1::text IS NULL OR r.treating_city = $1)
               AND ($2::text IS NULL OR r.fixmedins_code = $2)
               AND ($3::text IS NULL OR r.status = $3)
               AND ($4::int IS NULL OR r.clearing_year = $4)"""
    args = (city, hospital, status, year)
    total = await pool.fetchval(f"SELECT count(*) FROM special_reviews r WHERE {where}", *args)
    rows = await pool.fetch(
        f"""SELECT {_COLUMNS} FROM special_reviews r WHERE {where}
            ORDER BY r.review_id DESC LIMIT $5 OFFSET $6""",
        *args,
        limit,
        offset,
    )
    return {"total": total, "reviews": [shown_review(r) for r in rows]}


async def get_review(pool: asyncpg.Pool, actor: Actor, review_id: int) -> dict[str, Any]:
    """One request with its case's score and its audit trail; `ReviewRefused` if absent or
    not the caller's to see (the same answer)."""
    row = await pool.fetchrow(
        f"""SELECT {_COLUMNS}, s.case_score, s.deviation, s.group_code,
                   s.special_review AS flagged
            FROM special_reviews r
            LEFT JOIN scored_cases s USING (fixmedins_code, setl_id)
            WHERE r.review_id = $1""",
        review_id,
    )
    if row is None or not actor.may_see(row["fixmedins_code"], row["treating_city"]):
        raise ReviewRefused(refusals.REVIEW_UNKNOWN, review_id=review_id)
    audit = await pool.fetch(
        """SELECT action, actor, acted_at, before, after FROM special_review_audit
           WHERE review_id = $1 ORDER BY audit_id""",
        review_id,
    )
    return {
        **shown_review(row),
        "case": {
            "group_code": row["group_code"],
            "deviation": row["deviation"],
            "case_score": row["case_score"],
            "flagged_for_review": row["flagged"],
        },
        "audit": [
            {
                "action": a["action"],
                "actor": a["actor"],
                "at": shown(a["acted_at"]),
                "before": None if a["before"] is None else json.loads(a["before"]),
                "after": json.loads(a["after"]),
            }
            for a in audit
        ],
    }
