"""The scored sink on its own, through the real `scored_all` topic into the real table: newer
revisions and later scorings win, stale ones are ignored, a row the table refuses is
dead-lettered without stopping the others."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from contracts.messages import ENCODER, InternalScoredCase
from gateway.runtime import Stack
from tests.builders import handled
from tests.clock import now as clock_now

pytestmark = pytest.mark.integration


def scored(setl_id: str, revision: int, at: datetime, **kw: Any) -> InternalScoredCase:
    fields: dict[str, Any] = {
        "receipt_id": str(uuid.uuid4()),
        "case_key": f"H44010000001:{setl_id}",
        "fixmedins_code": "H44010000001",
        "setl_id": setl_id,
        "revision": revision,
        "received_at": at,
        "scored_at": at,
        "role": "treating",
        "scope": "same_city",
        "treating_admdvs": "440100",
        "insured_admdvs": "440100",
        "treating_city": "440100",
        "insured_city": "440100",
        "clearing_year": 2026,
        "status": "scored",
        "case_score": 100.0 * revision,
        "estimated_payment": Decimal("1000.00") * revision,
    }
    return InternalScoredCase(**(fields | kw))


async def send(stack: Stack, *cases: InternalScoredCase) -> list[Any]:
    """Send in order (same key → same partition → this order); the records' positions."""
    return [
        await stack.producer.send_and_wait(
            stack.settings.topics.scored_all, key=case.case_key.encode(), value=ENCODER.encode(case)
        )
        for case in cases
    ]


async def row(stack: Stack, setl_id: str, **expect: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for _ in range(200):
        record = await stack.pool.fetchrow("SELECT * FROM scored_cases WHERE setl_id = $1", setl_id)
        found = dict(record) if record else {}
        if found and all(found[k] == v for k, v in expect.items()):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{setl_id}: {found} never matched {expect}")


async def test_latest_revision_and_latest_scoring_win(stack: Stack) -> None:
    t0 = clock_now()
    sid = f"SNK{uuid.uuid4().hex[:10]}"
    await handled(
        stack,
        "scored_sink",
        await send(stack, scored(sid, 2, t0), scored(sid, 1, t0 + timedelta(seconds=5))),
    )
    r = await row(stack, sid, revision=2)
    assert r["case_score"] == 200.0  # the late revision 1 did not win
    pos = r["pos"]

    # A rescore of the same revision (later scored_at) wins and moves the position on ...
    await send(stack, scored(sid, 2, t0 + timedelta(seconds=1), case_score=250.0))
    r = await row(stack, sid, case_score=250.0)
    assert r["pos"] > pos
    # ... a replay of an older scoring of that revision does not.
    await handled(stack, "scored_sink", await send(stack, scored(sid, 2, t0)))
    assert (await row(stack, sid))["case_score"] == 250.0


async def test_a_row_the_table_refuses_is_dead_lettered(stack: Stack) -> None:
    t0 = clock_now()
    bad, good = f"SNK{uuid.uuid4().hex[:10]}", f"SNK{uuid.uuid4().hex[:10]}"
    # 10^15 yuan does not fit numeric(16,2).
    await send(
        stack,
        scored(bad, 1, t0, estimated_payment=Decimal("1000000000000000.00")),
        scored(good, 1, t0),
    )
    await row(stack, good, revision=1)
    assert (
        await stack.pool.fetchval("SELECT count(*) FROM scored_cases WHERE setl_id = $1", bad) == 0
    )
    for _ in range(100):
        dead = await stack.pool.fetch(
            "SELECT worker, topic, error FROM dead_letters WHERE key = $1",
            f"H44010000001:{bad}",
        )
        if dead:
            break
        await asyncio.sleep(0.05)
    assert [(d["worker"], d["topic"]) for d in dead] == [
        ("scored_sink", stack.settings.topics.scored_all)
    ]
