"""Special review's store and rules (`gateway.special_review`) on a fresh PostgreSQL: who may
open and decide, the audit, and the quota read from the settlement policy in force."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from adapters.runtime.postgres import create_pool
from contracts import CST
from gateway import refusals
from gateway.special_review import (
    Actor,
    ReviewRefused,
    bureau,
    decide,
    get_review,
    list_reviews,
    open_review,
    points_of,
    reason_of,
)
from tests.gateway.settlement_rows import policy, scored_cases

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 1, 10, 0, tzinfo=CST)
H1, H2, H3 = "H44010000101", "H44010000102", "H44030000103"
HOSPITAL = Actor(role="hospital", name=H1, fixmedins_code=H1)
GZ = bureau("440100", "gz-clerk")
SZ = bureau("440300", "sz-clerk")
OPS = Actor(role="ops", name="ops: on-call")


@pytest.fixture
async def pool(fresh_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(fresh_dsn, min_size=1, max_size=4)
    try:
        await scored_cases(pool, H1, 300)
        await scored_cases(pool, H2, 100)
        await scored_cases(pool, H3, 10, city="440300")
        await scored_cases(pool, H1, 1, prefix="U", status="unscored")
        yield pool
    finally:
        await pool.close()


async def refused(work: object) -> ReviewRefused:
    with pytest.raises(ReviewRefused) as caught:
        await work  # type: ignore[misc]
    return caught.value


async def test_a_hospital_opens_for_its_own_case_and_it_is_audited(pool: asyncpg.Pool) -> None:
    opened = await open_review(pool, HOSPITAL, H1, "S000001", "  ICU 45 days ", now=AT)
    assert opened["status"] == "open" and opened["requested_by"] == H1
    assert opened["request_reason"] == "ICU 45 days"
    assert (opened["treating_city"], opened["clearing_year"]) == ("440100", 2026)
    assert opened["requested_at"] == "2026-12-01T10:00:00+08:00"
    (row,) = await pool.fetch("SELECT * FROM special_review_audit")
    assert (row["action"], row["actor"], row["before"]) == ("open", H1, None)
    assert json.loads(row["after"])["review_id"] == opened["review_id"]


async def test_who_may_open_what(pool: asyncpg.Pool) -> None:
    other = await refused(open_review(pool, HOSPITAL, H2, "S000001", "x", now=AT))
    assert other.refusal is refusals.REVIEW_NOT_YOURS and other.status == 403
    assert H2 in str(other) and H1 in str(other)
    absent = await refused(open_review(pool, HOSPITAL, H1, "NOPE", "x", now=AT))
    assert absent.refusal is refusals.REVIEW_CASE_UNKNOWN and absent.status == 404
    # A bureau of another city is told the same as for an absent case: nothing leaks.
    foreign = await refused(open_review(pool, SZ, H1, "S000001", "x", now=AT))
    assert foreign.refusal is refusals.REVIEW_CASE_UNKNOWN
    unscored = await refused(open_review(pool, HOSPITAL, H1, "U000000", "x", now=AT))
    assert unscored.refusal is refusals.REVIEW_UNSCORED and "DIP_NO_RULES" in str(unscored)
    opened = await open_review(pool, GZ, H2, "S000001", "new technique", now=AT)
    assert opened["requested_by"] == "city 440100: gz-clerk"
    assert (await list_reviews(pool, city="440300"))["total"] == 0


async def test_a_case_is_reviewed_once_unless_rejected(pool: asyncpg.Pool) -> None:
    first = await open_review(pool, HOSPITAL, H1, "S000002", "x", now=AT)
    double = await refused(open_review(pool, GZ, H1, "S000002", "again", now=AT))
    assert double.refusal is refusals.REVIEW_DUPLICATE and double.status == 409
    assert str(first["review_id"]) in str(double)
    await decide(pool, GZ, first["review_id"], "reject", "not special", points=None, now=AT)
    again = await open_review(pool, HOSPITAL, H1, "S000002", "new evidence", now=AT)
    assert again["review_id"] != first["review_id"]


async def test_decisions_are_checked_final_and_audited(pool: asyncpg.Pool) -> None:
    await policy(pool, "440100", 2026, "5")
    review = await open_review(pool, HOSPITAL, H1, "S000003", "x", now=AT)
    rid = review["review_id"]
    for points in (0, -1, "0.00", "abc", None, True, "1.00001", "NaN"):
        bad = await refused(decide(pool, GZ, rid, "approve", "ok", points=points, now=AT))  # type: ignore[arg-type]
        assert bad.refusal is refusals.REVIEW_POINTS and bad.problem().field == "approved_points"
    wrong = await refused(decide(pool, GZ, rid, "maybe", "ok", points=None, now=AT))
    assert wrong.refusal is refusals.REVIEW_FIELD and wrong.problem().field == "decision"
    foreign = await refused(decide(pool, SZ, rid, "reject", "no", points=None, now=AT))
    assert foreign.refusal is refusals.REVIEW_UNKNOWN  # another city's request: as absent
    absent = await refused(decide(pool, OPS, 999999, "reject", "no", points=None, now=AT))
    assert absent.refusal is refusals.REVIEW_UNKNOWN and absent.status == 404

    later = AT + timedelta(days=2)
    approved = await decide(
        pool, GZ, rid, "approve", "justified", points=Decimal("850.5"), now=later
    )
    assert approved["status"] == "approved" and approved["approved_points"] == "850.5"
    assert approved["decided_at"] == "2026-12-03T10:00:00+08:00"
    assert approved["decided_by"] == "city 440100: gz-clerk"
    final = await refused(decide(pool, OPS, rid, "reject", "changed mind", points=None, now=AT))
    assert final.refusal is refusals.REVIEW_DECIDED and final.status == 409
    assert "2026-12-03T10:00:00+08:00" in str(final) and "gz-clerk" in str(final)

    shown = await get_review(pool, HOSPITAL, rid)
    assert [a["action"] for a in shown["audit"]] == ["open", "approve"]
    decision = shown["audit"][1]
    assert decision["actor"] == "city 440100: gz-clerk" and decision["at"].endswith("+08:00")
    assert decision["before"]["status"] == "open" and decision["before"]["approved_points"] is None
    assert decision["after"]["status"] == "approved"
    assert decision["after"]["approved_points"] == "850.5"
    assert shown["case"]["flagged_for_review"] is True
    other = await refused(get_review(pool, Actor("hospital", H2, fixmedins_code=H2), rid))
    assert other.refusal is refusals.REVIEW_UNKNOWN
    # What the year's clearing reads.
    assert await pool.fetchval(
        """SELECT sum(approved_points) FROM special_reviews WHERE status = 'approved'
           AND treating_city = '440100' AND clearing_year = 2026 AND fixmedins_code = $1""",
        H1,
    ) == Decimal("850.5")


async def test_no_policy_no_approval(pool: asyncpg.Pool) -> None:
    review = await open_review(pool, HOSPITAL, H1, "S000004", "x", now=AT)
    missing = await refused(
        decide(pool, OPS, review["review_id"], "approve", "ok", points=1, now=AT)
    )
    assert missing.refusal is refusals.REVIEW_NO_POLICY
    assert missing.problem().field == "special_review_quota_permille"
    assert "440100" in str(missing) and "2026" in str(missing)
    # a rejection needs no quota
    await decide(pool, OPS, review["review_id"], "reject", "no", points=None, now=AT)


async def test_the_quota_of_the_policy_in_force(pool: asyncpg.Pool) -> None:
    # 400 scored cases in 440100 (the unscored one does not count): 5‰ → 2 approvals.
    await policy(pool, "440100", 2026, "1", seq=1)
    await policy(pool, "440100", 2026, "5", seq=2)  # the highest seq is in force
    ids = [
        (await open_review(pool, HOSPITAL, H1, f"S00001{n}", "x", now=AT))["review_id"]
        for n in range(3)
    ]
    for rid in ids[:2]:
        await decide(pool, GZ, rid, "approve", "ok", points="100", now=AT)
    full = await refused(decide(pool, GZ, ids[2], "approve", "ok", points="100", now=AT))
    assert full.refusal is refusals.REVIEW_QUOTA
    assert "at most 2 approved (5‰ of 400 cases), 2 approved already" in str(full)
    assert (await get_review(pool, GZ, ids[2]))["status"] == "open"  # untouched
    # another city's quota is its own: 10 cases at 5‰ → none
    await policy(pool, "440300", 2026, "5")
    sz = await open_review(pool, SZ, H3, "S000001", "x", now=AT)
    none = await refused(decide(pool, SZ, sz["review_id"], "approve", "ok", points=1, now=AT))
    assert "at most 0 approved" in str(none)
    listed = await list_reviews(pool, city="440100", status="approved")
    assert listed["total"] == 2 and {r["review_id"] for r in listed["reviews"]} == set(ids[:2])


def test_points_are_positive_numbers_with_four_decimals_at_most() -> None:
    assert points_of("12.5") == Decimal("12.5")
    assert points_of(3) == Decimal(3)
    assert points_of("0.0001") == Decimal("0.0001")
    for bad in ("0", "-2", "1e400", "Infinity", "", [], {"a": 1}, 1.23456):
        with pytest.raises(ReviewRefused):
            points_of(bad)


def test_a_reason_is_storable_text() -> None:
    assert reason_of(" 第一行\n第二行\t完 ") == "第一行\n第二行\t完"
    for bad in ("", "   ", "a\x00b", "\ud800", "bell\x07", "x" * 2001, 12, None):
        with pytest.raises(ReviewRefused) as caught:
            reason_of(bad)
        assert caught.value.refusal is refusals.REVIEW_FIELD
