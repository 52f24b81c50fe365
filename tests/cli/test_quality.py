"""`dipgw quality report` as an operator runs it, on the database of a real run."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from pathlib import Path

import pytest

from gateway.runtime import LocalServices, Stack
from tests.builders import new_code, push_mix, wait_received
from tests.clock import today as clock_today
from tests.conftest import register_hospital

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


async def _dipgw(services: LocalServices, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(
        DIPGW_PG_DSN=services.dsn,
        DIPGW_STATE_DIR=str(services.settings.state_path),
        DIPGW_LOG_LEVEL="warning",
        COLUMNS="200",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture(scope="module")
async def reported(stack: Stack) -> str:
    code = new_code()
    client = await register_hospital(stack, code, "440100")
    await push_mix(client, code)
    await wait_received(stack.pool, code, 9)
    return code


async def test_report_as_json_csv_and_a_terminal_table(
    services: LocalServices, reported: str
) -> None:
    code = reported
    # The uploads were received on the tests' clock: the report ends on its day.
    day = ("--to", clock_today().isoformat())
    rc, out, err = await _dipgw(services, "quality", "report", "--hospital", code, "--json", *day)
    assert rc == 0, err
    (row,) = json.loads(out)["rows"]
    assert (row["fixmedins_code"], row["received"], row["rejected"]) == (code, 9, 2)
    assert row["pass_rate"] == round(7 / 9, 4)

    rc, out, err = await _dipgw(
        services, "quality", "report", "--by", "rule", "--hospital", code, "--csv", *day
    )
    assert rc == 0, err
    # Opened by a byte-order mark: Excel on Chinese Windows reads the file as UTF-8.
    assert out.startswith("\ufeffrule,")
    rules = {r["rule"]: r for r in csv.DictReader(io.StringIO(out.removeprefix("\ufeff")))}
    assert rules["REQ_FIELD"]["records"] == "2" and rules["REQ_FIELD"]["dimension"] == "完整性"
    rc, plain, err = await _dipgw(
        services, "quality", "report", "--by", "rule", "--hospital", code, "--csv", "--no-bom", *day
    )
    assert rc == 0, err
    assert plain == out.removeprefix("\ufeff")

    rc, out, err = await _dipgw(services, "quality", "report", "--hospital", code, *day)
    assert rc == 0, err
    assert code in out and "77.8%" in out and "规范率" in out
    assert "+08:00" in out  # last seen, in the province's time and labelled

    rc, out, err = await _dipgw(services, "quality", "report", "--from", "2026-99-01")
    assert rc == 2 and "YYYY-MM-DD" in err
