"""The fault drill, short: every kind of fault once under load on a 3-broker cluster with
2 gateway and 2 worker processes; nothing acknowledged is lost, duplicated or scored wrongly.
(`dipgw drill` runs the long one; its figures are in docs/operations.md.)"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from gateway.drill import FAULTS, Drill, DrillOptions, scratch_home

pytestmark = pytest.mark.integration


@pytest.fixture
def home() -> Iterator[Path]:
    path = scratch_home()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def _lose_one_case_and_count_one_twice(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "DELETE FROM cases WHERE ctid = (SELECT ctid FROM cases ORDER BY setl_id LIMIT 1)"
    )
    await pool.execute(
        """UPDATE quality_daily SET received = received + 1
           WHERE ctid = (SELECT ctid FROM quality_daily ORDER BY fixmedins_code LIMIT 1)"""
    )
    await pool.execute(
        """UPDATE scored_cases SET case_score = case_score + 1
           WHERE ctid = (SELECT ctid FROM scored_cases ORDER BY setl_id DESC LIMIT 1)"""
    )


async def test_every_fault_once_loses_and_duplicates_nothing(home: Path) -> None:
    options = DrillOptions(rounds=len(FAULTS), rate_per_s=6, calm_s=3, fault_s=5)
    report = await Drill(home, options, tamper=_lose_one_case_and_count_one_twice).run()
    problems = report["problems"]
    assert (report["lost"], report["duplicated"], report["wrong_scores"]) == (0, 0, 0), problems
    assert sorted(f["kind"] for f in report["faults"]) == sorted(FAULTS)
    assert report["cases"] >= 100 and report["revisions_beyond_first"] > 0
    assert set(report["answers"]) - {"202"}, "no fault was felt by the hospitals"
    assert report["settings"]["brokers"] == 3 and report["settings"]["replication_factor"] == 3
    # and the reconciliation is no formality: it sees a lost case, a double count, a bad score
    tampered = report["after_tamper"]
    assert (tampered["lost"], tampered["duplicated"], tampered["wrong_scores"]) == (1, 1, 1)
