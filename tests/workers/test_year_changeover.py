"""The change of clearing year: in January a city's rules for the new year are not imported
yet, so its new cases are stored `unscored` with DIP_NO_RULES; once the rules are imported the
scoring worker scores those waiting cases by itself — once each, in PostgreSQL and on the
city's topic — and leaves the cases of the old year alone.

A stack of its own (database, topics, consumer groups) whose clock reads 12 January 2027, so
the session's cases and rules are not in the way and the topics can be counted exactly."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from adapters.runtime.clock import fixed_clock
from adapters.runtime.settings import Settings
from contracts import CST
from gateway.runtime import LocalServices, Stack, running_stack
from tests.builders import dip_document, read_topic, rules_variant, tagged_settings, wait_scored
from tests.conftest import register_hospital
from workers.dip import SAMPLE_RULES
from workers.rescore import rescore_waiting
from workers.rules_store import import_rules, read_rules_files

pytestmark = pytest.mark.integration

JANUARY = datetime(2027, 1, 12, 12, 0, tzinfo=CST)


@pytest.fixture
def own_settings(services: LocalServices) -> Settings:
    """Topics and consumer groups of this test only; rules looked up every second."""
    return tagged_settings(services.settings, "yc", rules_cache_s=1.0)


@pytest.fixture
async def january(
    services: LocalServices, own_settings: Settings, fresh_dsn: str
) -> AsyncIterator[Stack]:
    """Gateway and workers in January 2027, with only the 2026 sample rules imported."""
    async with running_stack(
        own_settings, services.bootstrap, fresh_dsn, clock=fixed_clock(JANUARY)
    ) as stack:
        for path in SAMPLE_RULES.values():
            await import_rules(stack.pool, *read_rules_files([path]))
        yield stack


async def _wait_status(
    pool: asyncpg.Pool, keys: list[tuple[str, str]], status: str, timeout: float = 60
) -> dict[tuple[str, str], dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for _ in range(int(timeout / 0.1)):
        found = await pool.fetch(
            "SELECT * FROM scored_cases WHERE setl_id = ANY($1)", [k[1] for k in keys]
        )
        rows = {(r["fixmedins_code"], r["setl_id"]): dict(r) for r in found}
        if all(k in rows and rows[k]["status"] == status for k in keys):
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"not {status} within {timeout}s: {rows}")


async def test_cases_waiting_for_the_new_years_rules_are_scored_once_when_imported(
    january: Stack, tmp_path: Path
) -> None:
    code, topic = "H44010000001", january.settings.topics.scored.format(admdvs="440100")
    hospital = await register_hospital(january, code, "440100")
    new_year = [dip_document(code=code, dscg="2027-01-10 09:00:00", seed=n) for n in range(2)]
    old_year = dip_document(code=code, dscg="2026-12-30 09:00:00", seed=7)
    status, body = await hospital.post("/v1/settlements/batch", {"records": [*new_year, old_year]})
    assert status == 200 and body["accepted"] == 3, body
    waiting = [(code, d["input"]["setlinfo"]["setl_id"]) for d in new_year]
    last_year = (code, old_year["input"]["setlinfo"]["setl_id"])

    rows = await wait_scored(january.pool, {k: 1 for k in [*waiting, last_year]})
    for key in waiting:
        row = rows[key]
        assert (row["status"], row["unscored_rule"], row["clearing_year"]) == (
            "unscored",
            "DIP_NO_RULES",
            2027,
        )
    old = rows[last_year]
    assert (old["status"], old["clearing_year"]) == ("scored", 2026)

    # Several sweeps pass while the rules are missing: the cases keep waiting.
    await asyncio.sleep(2.5)
    rows = await _wait_status(january.pool, waiting, "unscored")
    assert {r["unscored_rule"] for r in rows.values()} == {"DIP_NO_RULES"}

    # Guangzhou publishes its 2027 rules: the 2026 sample policy with the year changed.
    imported = await import_rules(
        january.pool, *read_rules_files([rules_variant(tmp_path, "440100", 2027)])
    )
    assert imported.stored.rules.clearing_year == 2027 and not imported.unchanged
    rows = await _wait_status(january.pool, waiting, "scored")
    for key in waiting:
        row = rows[key]
        assert (row["clearing_year"], row["unscored_rule"]) == (2027, None)
        assert row["ruleset_id"] == imported.stored.ruleset_id
        assert "/2027/" in row["ruleset_version"] and row["group_code"]
        assert row["estimated_payment"] is not None and row["revision"] == 1

    # Nothing left to do: another sweep, and the same import again, change nothing.
    assert (
        await rescore_waiting(
            january.pool, january.producer, january.settings, january.bootstrap, JANUARY
        )
        == []
    )
    assert (await import_rules(january.pool, imported.stored.rules, [])).unchanged
    await asyncio.sleep(2.5)  # more of the worker's own sweeps

    # Exactly once: one row per case, and on the city's topic each waiting case once unscored,
    # then once scored; the 2026 case once, scored under the 2026 rules, never touched again.
    count = await january.pool.fetchval(
        "SELECT count(*) FROM scored_cases WHERE setl_id = ANY($1)",
        [k[1] for k in [*waiting, last_year]],
    )
    assert count == 3
    keys = {f"{c}:{s}" for c, s in [*waiting, last_year]}
    seen = await read_topic(january.bootstrap, topic, keys, expect=6, timeout=5)
    by_case = Counter((m["case_key"], m["status"]) for m in seen)
    assert by_case == Counter(
        {
            **{(f"{c}:{s}", "unscored"): 1 for c, s in waiting},
            **{(f"{c}:{s}", "scored"): 1 for c, s in waiting},
            (f"{last_year[0]}:{last_year[1]}", "scored"): 1,
        }
    )
    for c, s in waiting:
        mine = [m for m in seen if m["case_key"] == f"{c}:{s}"]
        assert [m["status"] for m in mine] == ["unscored", "scored"]  # in this order
        assert mine[1]["clearing_year"] == 2027 and "/2027/" in mine[1]["ruleset_version"]
    old_message = next(m for m in seen if m["case_key"] == f"{last_year[0]}:{last_year[1]}")
    assert "/2026/" in old_message["ruleset_version"]
