"""Cases stored `unscored` (no rules yet) are scored by the scoring worker once the city's rules
are imported; `dipgw rescore CITY YEAR` re-scores them when it publishes new ones — in
PostgreSQL and on the city's topic. Clearing year 2025, so the session's 2026 rules stay
untouched."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.runtime import LocalServices, Stack
from tests.builders import dip_document, read_topic, rules_variant, wait_scored
from tests.commands import cli_env, dipgw
from tests.conftest import Client

pytestmark = pytest.mark.integration


async def _wait_all_scored(
    stack: Stack, keys: dict[tuple[str, str], int], timeout: float = 60
) -> dict[tuple[str, str], dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for _ in range(int(timeout / 0.1)):
        rows = await wait_scored(stack.pool, keys)
        if all(r["status"] == "scored" for r in rows.values()):
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"not scored within {timeout}s: {rows}")


async def test_rescore_after_first_and_new_rules(
    stack: Stack,
    services: LocalServices,
    hospital: Client,
    rules: dict[str, Any],
    tmp_path: Path,
) -> None:
    env = cli_env(services.dsn, stack.bootstrap, tmp_path / "state")
    docs = [dip_document(dscg="2025-12-20 09:00:00"), dip_document(dscg="2025-12-21 09:00:00")]
    status, body = await hospital.post("/v1/settlements/batch", {"records": docs})
    assert status == 200 and body["accepted"] == 2, body
    keys = {("H44010000001", d["input"]["setlinfo"]["setl_id"]): 1 for d in docs}
    rows = await wait_scored(stack.pool, keys)
    assert {(r["status"], r["unscored_rule"], r["clearing_year"]) for r in rows.values()} == {
        ("unscored", "DIP_NO_RULES", 2025)
    }

    code, out, err = await dipgw("rescore", "440100", "2025", env=env)
    assert code == 1 and "no DIP rules" in out, err

    policy = rules_variant(tmp_path, "440100", 2025, version="2025.1")
    code, _, err = await dipgw("rules", "import", "440100", "2025", str(policy), env=env)
    assert code == 0, err
    # No command needed: the scoring worker scores the cases that waited for these rules ...
    rows = await _wait_all_scored(stack, keys)
    # ... so the operator's rescore finds nothing to change.
    code, out, err = await dipgw("rescore", "440100", "2025", "--json", env=env)
    assert code == 0, err
    result = json.loads(out)
    assert result["considered"] >= 2 and result["rescored"] >= 2 and result["changed"] == 0
    assert "/2025/2025.1@" in result["ruleset_version"]
    for row in rows.values():
        # GZ-C002 at level 3: 980 × 0.90 = 882 points × 12.35 = 10,892.70.
        assert (row["status"], row["group_code"]) == ("scored", "GZ-C002")
        assert row["estimated_payment"] == Decimal("10892.70")

    # The city publishes a new point value for 职工: version 2, and the cases follow.
    policy = rules_variant(tmp_path, "440100", 2025, version="2025.2", point_310="13.00")
    code, _, err = await dipgw("rules", "import", "440100", "2025", str(policy), env=env)
    assert code == 0, err
    code, out, err = await dipgw("rescore", "440100", "2025", "--json", env=env)
    assert code == 0, err
    assert json.loads(out)["changed"] >= 2
    rows = await wait_scored(stack.pool, keys)
    for row in rows.values():
        assert row["estimated_payment"] == Decimal("11466.00")  # 882 × 13.00
        assert "/2025/2025.2@" in row["ruleset_version"]

    # Rescoring again changes nothing.
    code, out, err = await dipgw("rescore", "440100", "2025", "--json", env=env)
    assert code == 0 and json.loads(out)["changed"] == 0, err

    # Guangzhou's subscribers saw the unscored, then both new scores, in order (5 messages a
    # case: unscored, scored on import, and one for each of the three commands).
    case_keys = {f"H44010000001:{k[1]}" for k in keys}
    seen = await read_topic(stack.bootstrap, "dip.case.scored.440100.v1", case_keys, expect=10)
    first = [m for m in seen if m["case_key"] == min(case_keys)]
    payments = [m.get("estimated_payment") for m in first]
    assert payments[0] is None and payments[-1] == "11466.00" and "10892.70" in payments
