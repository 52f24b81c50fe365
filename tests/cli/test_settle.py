"""`dipgw rules import` of a settlement policy and `dipgw settle month|year|show|diff`, on a
fresh database: versions, refusals naming the field, runs stored and compared."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from adapters.runtime.postgres import create_pool
from gateway.runtime import LocalServices
from tests.commands import cli_env, dipgw
from tests.workers.test_settlement import store_case

pytestmark = pytest.mark.integration

EXAMPLE = Path("workers/dip/data/440100-2026-settlement.toml")


async def test_import_settle_show_diff(
    services: LocalServices, fresh_dsn: str, tmp_path: Path
) -> None:
    env = cli_env(fresh_dsn, services.bootstrap, tmp_path / "state")

    broken = tmp_path / "broken.toml"
    broken.write_text(
        EXAMPLE.read_text("utf-8").replace(
            'from = "0.10"\nto = "0.20"', 'from = "0.12"\nto = "0.20"'
        ),
        "utf-8",
    )
    code, _, err = await dipgw("rules", "import", "440100", "2026", str(broken), env=env)
    assert code == 2 and "surplus[1].from = 0.12: leaves a gap" in err, err

    code, out, err = await dipgw(
        "rules", "import", "440100", "2026", str(EXAMPLE), "--json", env=env
    )
    assert code == 0, err
    imported = json.loads(out)
    assert (imported["seq"], imported["unchanged"], imported["funds"]) == (
        1,
        False,
        ["310", "390"],
    )
    code, out, err = await dipgw("settle", "policy", "440100", "2026", env=env)
    assert code == 0 and "settlement policy in force: seq 1, 2026.1" in out, err
    assert 'budget = "9500000000.00"' in out
    code, out, err = await dipgw("rules", "import", "440100", "2025", str(EXAMPLE), env=env)
    assert code == 2 and "not 440100 for 2025" in err

    code, _, err = await dipgw("settle", "month", "440100", "2026-13", env=env)
    assert code == 2 and "expected YYYY-MM" in err

    pool: asyncpg.Pool = await create_pool(fresh_dsn, min_size=1, max_size=1)
    try:
        await store_case(pool, ("H1", "c1", "310", 1000, "9000", "7200", "2026-03-10", "440100"))
        code, out, err = await dipgw("settle", "month", "440100", "2026-03", "--json", env=env)
        assert code == 0, err
        run = json.loads(out)
        # 预算点值 11.4634 (the example's 1:2:7 history); 1000 × 11.4634 = 11463.40;
        # − 1800 = 9663.40 × 0.9 = 8697.06; deposit 5 % = 434.853 → 434.85; payable 8262.21
        (line,) = run["lines"]
        assert (line["settled"], line["deposit"], line["payable"]) == (
            "8697.06",
            "434.85",
            "8262.21",
        )
        await store_case(pool, ("H2", "c2", "390", 100, "900", "500", "2026-03-11", "440300"))
    finally:
        await pool.close()

    code, out, err = await dipgw("settle", "month", "440100", "2026-03", env=env)
    assert code == 0, err
    assert "run 2" in out and "1 new, 0 changed, 0 gone" in out
    code, out, err = await dipgw("settle", "show", "440100", "2026-03", "--seq", "1", env=env)
    assert code == 0 and "run 1" in out and "8262.21" in out, err
    code, out, err = await dipgw("settle", "diff", "440100", "2026-03", "--json", env=env)
    assert code == 0, err
    diff = json.loads(out)
    assert (diff["from"], diff["to"]) == (1, 2)
    assert [(d["fixmedins_code"], d["fund"]) for d in diff["lines"]] == [("H2", "390")]

    scores = tmp_path / "assessment.toml"
    scores.write_text('[hospitals.H1]\nscore = "92"\n', "utf-8")
    code, _, err = await dipgw(
        "settle", "year", "440100", "2026", "--assessment", str(scores), env=env
    )
    assert code == 2 and "assessment score missing for H2" in err, err
    scores.write_text(
        '[hospitals.H1]\nscore = "92"\n[hospitals.H2]\nscore = "70"\n'
        'deductions = { "390" = "10.00" }\n',
        "utf-8",
    )
    code, out, err = await dipgw(
        "settle", "year", "440100", "2026", "--assessment", str(scores), "--json", env=env
    )
    assert code == 0, err
    year = json.loads(out)
    assert year["kind"] == "year" and year["inputs"]["input_files"][0]["file"] == scores.name
    assert {x["fixmedins_code"] for x in year["lines"]} == {"H1", "H2"}
    # the year's total is the sum of its lines, to the fen
    total = sum((Decimal(x["payable"]) for x in year["lines"]), Decimal(0))
    assert str(total) == year["totals"]["city"]["payable"]
    code, out, _ = await dipgw("settle", "show", "440100", "2025", env=env)
    assert code == 1 and "no settlement run" in out
