"""The batch endpoint's checking, apart from the running stack."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime

import msgspec

from contracts import CST
from contracts.samples import make_settlement
from gateway.checks import Checked, Checker
from gateway.routes_ingest import check_sliced

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=CST)


def _batch(count: int) -> bytes:
    rng = random.Random(7)
    docs = [
        make_settlement(
            rng,
            now=NOW.replace(tzinfo=None),
            mdtrtarea_admvs="440100",
            insuplc_admdvs="440300",
            fixmedins_code="H44010000001",
        )
        for _ in range(count)
    ]
    return msgspec.json.encode({"records": docs})


async def test_a_large_batch_gives_the_loop_a_turn_between_slices() -> None:
    """A 1,000-record batch is checked a slice at a time: other requests (a health check)
    are served in between, not after the whole batch (found: a legit batch held the loop
    for hundreds of milliseconds on a loaded machine)."""
    checker = Checker()
    body = _batch(1000)
    turns = 0

    async def other_request() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_request())
    await asyncio.sleep(0)
    before = turns
    checked = await check_sliced(checker, body, NOW, max_records=1000)
    other.cancel()
    assert len(checked) == 1000
    assert turns - before >= 1000 // 32 - 1
    # and the same verdicts as checking the batch at once
    at_once = checker.check_many(body, "batch", NOW, max_records=1000)
    assert [type(c) for c in checked] == [type(c) for c in at_once]
    assert [c.upload.case_key for c in checked if isinstance(c, Checked)] == [
        c.upload.case_key for c in at_once if isinstance(c, Checked)
    ]
