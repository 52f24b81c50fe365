"""Settlement runs on the real PostgreSQL: the small city of tests/dip/test_settle.py stored as
scored cases (H2's 310 patient insured in 440300, a cross-city case), its January and February
prepay, the year's clearing with an approved special review, and a rescored case reported as
the next run's adjustment while the first run stays as it was."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec
import pytest

from adapters.runtime.postgres import create_pool, migrate
from tests.builders import dip_case
from tests.dip.test_settle import policy_doc
from tests.workers.test_scored_sink import scored
from workers.dip import HospitalInput, parse_settlement_policy
from workers.scored_sink import store_scored
from workers.settlement import NoPolicy, diff_runs, find_run, run_month, run_year
from workers.settlement_policy import import_settlement_policy, policy_in_force

D = Decimal
AT = datetime(2027, 1, 5, 2, 0, tzinfo=UTC)

# (hospital, setl_id, fund, points, cost, fund_pay, discharge date, insured city)
CASES = [
    ("H1", "c1", "310", 1000, "9000", "7200", "2026-01-10", "440100"),
    ("H2", "c3", "310", 800, "10000", "8000", "2026-01-11", "440300"),  # cross-city
    ("H3", "c4", "310", 200, "1500", None, "2026-01-12", "440100"),
    ("H1", "c5", "390", 600, "4000", "2400", "2026-01-13", "440100"),
    ("H2", "c6", "390", 900, "7000", "4200", "2026-01-14", "440100"),
    ("H1", "c2", "310", 500, "5000", "4000", "2026-02-03", "440100"),
    ("H1", "c7", "340", 50, "300", "200", "2026-01-15", "440100"),  # a fund not settled
]


@pytest.fixture
async def pool(fresh_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(fresh_dsn)
    await migrate(conn)
    await conn.close()
    p = await create_pool(fresh_dsn, min_size=1, max_size=2)
    yield p
    await p.close()


async def store_case(
    pool: asyncpg.Pool,
    row: tuple[str, str, str, int, str, str | None, str, str],
    *,
    revision: int = 1,
    city: str = "440100",
    status: str = "scored",
) -> None:
    h, sid, fund, points, cost, fund_pay, discharged, insured = row
    facts: dict[str, Any] = {"insutype": fund, "discharge_date": discharged, "total_cost": cost}
    if fund_pay is not None:
        facts["fund_pay"] = fund_pay
    message = {"insutype": fund, "case_score": points}
    await pool.execute(
        """INSERT INTO scored_cases (fixmedins_code, setl_id, revision, receipt_id, received_at,
               scored_at, treating_city, insured_city, treating_admdvs, insured_admdvs, scope,
               clearing_year, status, case_score, total_cost, ruleset_version, facts, message)
           VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $6, $7, $8, 2026, $9, $10, $11, 'r1',
                   $12::jsonb, $13::jsonb)
           ON CONFLICT (fixmedins_code, setl_id) DO UPDATE SET revision = EXCLUDED.revision,
               case_score = EXCLUDED.case_score, pos = nextval('scored_cases_pos')""",
        h,
        sid,
        revision,
        uuid.uuid4(),
        AT,
        city,
        insured,
        "same_city" if insured == city else "cross_city",
        status,
        float(points),
        D(cost),
        msgspec.json.encode(facts).decode(),
        msgspec.json.encode(message).decode(),
    )


def lines(run: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(x["fixmedins_code"], x["fund"]): x for x in run.lines}


async def test_policy_import_versions_and_quota_column(pool: asyncpg.Pool) -> None:
    policy = parse_settlement_policy(policy_doc())
    first, unchanged = await import_settlement_policy(pool, policy, [{"file": "p.toml"}])
    assert (first.seq, unchanged) == (1, False)
    again, unchanged = await import_settlement_policy(pool, policy, [])
    assert (again.seq, unchanged) == (1, True)
    doc = policy_doc()
    doc["special_review_quota_permille"] = "3"
    second, _ = await import_settlement_policy(pool, parse_settlement_policy(doc), [])
    assert second.seq == 2
    quota = await pool.fetchval(
        """SELECT special_review_quota_permille FROM settlement_policies
           WHERE city = '440100' AND clearing_year = 2026 ORDER BY seq DESC LIMIT 1"""
    )
    assert quota == D(3)
    stored = await policy_in_force(pool, "440100", 2026)
    assert stored is not None and stored.policy.special_review_quota_permille == D(3)


async def test_months_year_and_adjustments(pool: asyncpg.Pool) -> None:
    with pytest.raises(NoPolicy):
        await run_month(pool, "440100", "2026-01")
    await import_settlement_policy(pool, parse_settlement_policy(policy_doc()), [])
    for row in CASES:
        await store_case(pool, row)
    # not settled here: another treating city's case, and an unscored one
    await store_case(
        pool, ("H9", "x1", "310", 999, "100", "80", "2026-01-10", "440100"), city="440300"
    )
    await store_case(
        pool, ("H1", "u1", "310", 0, "100", "80", "2026-01-10", "440100"), status="unscored"
    )

    jan = await run_month(
        pool, "440100", "2026-01", {"H1": HospitalInput(deductions={"310": D("100")})}
    )
    got = lines(jan)
    # the figures of tests/dip/test_settle.py::test_month_prepay_with_deposit
    assert {k: v["payable"] for k, v in got.items()} == {
        ("H1", "310"): "6911.00",
        ("H1", "390"): "2736.00",
        ("H2", "310"): "5130.00",
        ("H2", "390"): "3762.00",
        ("H3", "310"): "1453.50",
    }
    assert jan.totals["city"]["payable"] == "19992.50"
    assert jan.totals["city"]["deposit"] == "1057.50"
    assert jan.inputs["left_out_by_insutype"] == {"340": 1}
    assert jan.inputs["rulesets"] == {"r1": 5}
    assert jan.seq == 1 and jan.inputs["previous_run_id"] is None
    assert jan.totals["city"]["adjustment"] == "0.00"  # a period's first run adjusts nothing
    feb = await run_month(pool, "440100", "2026-02")
    assert feb.totals["city"]["payable"] == "3420.00"
    assert feb.totals["earlier_months"]["months"] == ["2026-01"]
    assert feb.totals["earlier_months"]["changed"] == 0

    await pool.execute(
        """INSERT INTO special_reviews (fixmedins_code, setl_id, treating_city, clearing_year,
               status, request_reason, approved_points, reason, requested_by, requested_at,
               decided_by, decided_at)
           VALUES ('H2', 'c3', '440100', 2026, 'approved', 'ICU', 200, 'ok', 'h2', $1,
                   'bureau', $1)""",
        AT,
    )
    assessment = {
        "H1": HospitalInput(score=D("95"), deductions={"310": D("50")}),
        "H2": HospitalInput(score=D("75")),
        "H3": HospitalInput(score=D("50")),
    }
    year = await run_year(pool, "440100", 2026, assessment)
    # the figures of tests/dip/test_settle.py::test_year_clearing_with_bands_…
    assert year.point_values["310"]["value"] == "9.2593"
    assert year.point_values["390"]["bound"] == "floor"
    assert {k: v["payable"] for k, v in lines(year).items()} == {
        ("H1", "310"): "790.69",
        ("H1", "390"): "-56.00",
        ("H2", "310"): "2283.93",
        ("H2", "390"): "-71.00",
        ("H3", "310"): "-171.66",
    }
    assert year.totals["city"]["payable"] == "2775.96"
    assert year.inputs["special_reviews"] == "1 approved"
    assert sorted(year.inputs["month_runs"]) == ["2026-01", "2026-02"]

    # H1's January case is corrected and rescored (revision 2, 1100 points): the next January
    # run reports it; the first run is not rewritten.
    await store_case(
        pool, ("H1", "c1", "310", 1100, "9000", "7200", "2026-01-10", "440100"), revision=2
    )
    # February's next run reports the January correction (paid when January is run again)
    feb2 = await run_month(pool, "440100", "2026-02")
    earlier = feb2.totals["earlier_months"]
    assert (earlier["new"], earlier["changed"], earlier["gone"]) == (0, 1, 0)
    # 100 more points × 预算点值 10 = 1000.00
    assert earlier["lines"] == [
        {"fixmedins_code": "H1", "fund": "310", "points": "100.0000", "amount": "1000.00"}
    ]
    assert feb2.totals["city"]["adjustment"] == "0.00"
    jan2 = await run_month(
        pool, "440100", "2026-01", {"H1": HospitalInput(deductions={"310": D("100")})}
    )
    assert jan2.seq == 2 and jan2.inputs["previous_run_id"] == jan.run_id
    h1 = lines(jan2)[("H1", "310")]
    # 1100 × 10 = 11000 − 1800 = 9200 × 0.9 = 8280; deposit 414; 8280 − 414 − 100 = 7766;
    # adjustment 7766 − 6911 = 855
    assert (h1["payable"], h1["adjustment"]) == ("7766.00", "855.00")
    assert jan2.totals["city"]["adjustment"] == "855.00"
    changes = jan2.totals["case_changes"]
    assert (changes["new"], changes["changed"], changes["gone"]) == (0, 1, 0)
    assert changes["listed"][0]["setl_id"] == "c1"
    assert changes["listed"][0]["revision_before"] == 1
    assert changes["listed"][0]["revision_after"] == 2

    first = await find_run(pool, "440100", "2026-01", 1)
    latest = await find_run(pool, "440100", "2026-01")
    assert first is not None and latest is not None and latest["seq"] == 2
    assert first["totals"]["city"]["payable"] == "19992.50"  # unchanged
    diff = diff_runs(first, latest)
    assert [(d["fixmedins_code"], d["fund"], d["payable"]["delta"]) for d in diff] == [
        ("H1", "310", "855.00")
    ]
    stored = await pool.fetchval(
        "SELECT sum(payable) FROM settlement_lines WHERE run_id = $1", jan2.run_id
    )
    assert stored == D("20847.50")


async def test_reads_cases_as_the_scored_sink_stores_them(pool: asyncpg.Pool) -> None:
    """The shapes the pipeline writes: insutype in the message, fund_pay and the discharge
    date in the facts (Decimals as text), the score as a float."""
    await import_settlement_policy(pool, parse_settlement_policy(policy_doc()), [])
    facts = dip_case(
        case_key="H44010000001:S1",
        insutype="390",
        total_cost=D("11270.00"),
        fund_pay=D("6762.00"),
        discharge_date="2026-04-30",
        insured_admdvs="440304",
    )
    await store_scored(
        pool,
        [
            scored(
                "S1",
                1,
                AT,
                case_score=1234.56789,
                total_cost=D("11270.00"),
                insutype="390",
                scope="cross_city",
                insured_admdvs="440304",
                insured_city="440300",
                facts=facts,
            )
        ],
    )
    run = await run_month(pool, "440100", "2026-04")
    (line,) = run.lines
    # 1234.56789 → 1234.5679 points × 8 = 9876.5432 → 9876.54; other 11270 − 6762 = 4508;
    # (9876.54 − 4508) × 0.9 = 4831.686 → 4831.69; deposit 241.5845 → 241.58; 4590.11
    assert (line["fund"], line["points"], line["other_payments"]) == ("390", "1234.5679", "4508.00")
    assert (line["settled"], line["deposit"], line["payable"]) == ("4831.69", "241.58", "4590.11")
    assert (await run_month(pool, "440100", "2026-05")).lines == []
