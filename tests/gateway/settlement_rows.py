"""Rows the settlement tests store directly: scored cases, a settlement policy, settlement
runs and simulations, as `dipgw settle` and `dipgw rules simulate` would have stored them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from contracts import CST, Problem
from contracts.messages import ENCODER, ScoredCase

MOMENT = datetime(2026, 11, 24, 9, 30, tzinfo=CST)


async def scored_cases(
    pool: asyncpg.Pool,
    fixmedins_code: str,
    count: int,
    *,
    city: str = "440100",
    year: int = 2026,
    prefix: str = "S",
    status: str = "scored",
) -> list[str]:
    """`count` scored cases of one hospital (setl_id `prefix` + n); their setl_ids. Each row's
    message is the scored case the sink would have stored, so `/v1/scored` can serve it."""
    ids = [f"{prefix}{n:06d}" for n in range(count)]
    scored = status == "scored"
    messages = [
        ENCODER.encode(
            ScoredCase(
                receipt_id=str(uuid.uuid4()),
                case_key=f"{fixmedins_code}:{setl_id}",
                fixmedins_code=fixmedins_code,
                setl_id=setl_id,
                revision=1,
                received_at=MOMENT,
                scored_at=MOMENT,
                role="treating",
                scope="same_city",
                treating_admdvs=city,
                insured_admdvs=city,
                treating_city=city,
                insured_city=city,
                clearing_year=year if scored else None,
                status=status,  # type: ignore[arg-type]
                group_code="I21.0:00.6600" if scored else None,
                deviation="extreme" if scored else None,
                case_score=3200.0 if scored else None,
                special_review=scored,
                unscored=None if scored else _NO_RULES,
            )
        ).decode()
        for setl_id in ids
    ]
    # The columns are the message's, as the scored sink stores them: one source for both.
    await pool.execute(
        """INSERT INTO scored_cases (fixmedins_code, setl_id, revision, receipt_id, received_at,
               scored_at, treating_city, insured_city, treating_admdvs, insured_admdvs, scope,
               clearing_year, status, unscored_rule, group_code, deviation, case_score,
               special_review, message)
           SELECT $1, id, 1, (m->>'receipt_id')::uuid, $3, $3, $4, $4, $4, $4, m->>'scope',
                  (m->>'clearing_year')::int, m->>'status', m->'unscored'->>'rule',
                  m->>'group_code', m->>'deviation', (m->>'case_score')::float8,
                  (m->>'special_review')::boolean, m
           FROM unnest($2::text[], $5::jsonb[]) AS row(id, m)""",
        fixmedins_code,
        ids,
        MOMENT,
        city,
        messages,
    )
    return ids


_NO_RULES = Problem(
    rule="DIP_NO_RULES",
    field="mdtrtarea_admvs",
    dimension="",
    severity="reject",
    message="无规则",
    message_en="no rules",
)


async def policy(pool: asyncpg.Pool, city: str, year: int, permille: str, *, seq: int = 1) -> None:
    """A settlement policy in force (only the quota matters to special review)."""
    await pool.execute(
        """INSERT INTO settlement_policies (city, clearing_year, seq, version, content_sha256,
               document, special_review_quota_permille)
           VALUES ($1, $2, $3, $4, 'sha', '{}', $5)""",
        city,
        year,
        seq,
        f"{city}-{year}-p{seq}",
        Decimal(permille),
    )


async def settlement_run(
    pool: asyncpg.Pool, city: str, period: str, lines: list[tuple[str, str, str]]
) -> int:
    """A run of `city` for `period` ('YYYY-MM': month, 'YYYY': year) with lines
    (hospital, fund, payable); returns its run_id."""
    kind = "month" if "-" in period else "year"
    year = int(period[:4])
    policy_id = await pool.fetchval(
        """SELECT policy_id FROM settlement_policies WHERE city = $1 AND clearing_year = $2
           ORDER BY seq DESC LIMIT 1""",
        city,
        year,
    )
    if policy_id is None:
        await policy(pool, city, year, "5", seq=1)
        return await settlement_run(pool, city, period, lines)
    seq = await pool.fetchval(
        """SELECT coalesce(max(seq), 0) + 1 FROM settlement_runs
           WHERE city = $1 AND period = $2 AND kind = $3""",
        city,
        period,
        kind,
    )
    total = sum(Decimal(p) for _, _, p in lines)
    run_id: int = await pool.fetchval(
        """INSERT INTO settlement_runs (city, period, kind, seq, clearing_year, policy_id, inputs,
               point_values, totals, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9::jsonb, $10)
           RETURNING run_id""",
        city,
        period,
        kind,
        seq,
        year,
        policy_id,
        json.dumps({"policy_version": f"{city}-{year}-p1", "ruleset_version": "2026.1"}),
        json.dumps({"employee": "12.3456", "resident": "10.9876"}),
        json.dumps({"payable": f"{total:.2f}"}),
        MOMENT,
    )
    for code, fund, payable in lines:
        await pool.execute(
            """INSERT INTO settlement_lines (run_id, fixmedins_code, fund, cases, points,
                   dip_amount, other_payments, deductions, deposit, settled, payable, adjustment,
                   figures)
               VALUES ($1, $2, $3, 10, 1234.5, $4, 0, 0, 0, $4, $4, 0, '{}'::jsonb)""",
            run_id,
            code,
            fund,
            Decimal(payable),
        )
    return run_id


async def simulation(
    pool: asyncpg.Pool, city: str, year: int, lines: list[tuple[str, str, str]]
) -> int:
    """A simulation of `city`'s `year` with lines (hospital, payment now, payment draft)."""
    seq = await pool.fetchval(
        """SELECT coalesce(max(seq), 0) + 1 FROM simulation_runs
           WHERE city = $1 AND clearing_year = $2""",
        city,
        year,
    )
    now = sum(Decimal(a) for _, a, _ in lines)
    draft = sum(Decimal(b) for _, _, b in lines)
    columns: dict[str, Any] = {
        "city": city,
        "clearing_year": year,
        "seq": seq,
        "current_version": "2026.1",
        "draft_version": "2026.2-draft",
        "draft_sha256": "sha",
        "point_values": json.dumps(
            {"current": {"employee": "12.34"}, "draft": {"employee": "11.98"}, "method": "x"}
        ),
        "cases": 10 * len(lines),
        "payment_current": now,
        "payment_draft": draft,
        "delta": draft - now,
        "points_current": Decimal("1234.5"),
        "points_draft": Decimal("1200.25"),
        "kinds_current": json.dumps({"normal": 8, "high": 2}),
        "kinds_draft": json.dumps({"normal": 9, "high": 1}),
        "seconds": 0.5,
        "created_at": MOMENT,
    }
    sim_id: int = await pool.fetchval(
        f"""INSERT INTO simulation_runs ({", ".join(columns)})
            VALUES ({", ".join(f"${i}" for i in range(1, len(columns) + 1))})
            RETURNING sim_id""",
        *columns.values(),
    )
    for code, a, b in lines:
        await pool.execute(
            """INSERT INTO simulation_lines (sim_id, fixmedins_code, cases, points_current,
                   points_draft, payment_current, payment_draft, delta, kinds_current,
                   kinds_draft)
               VALUES ($1, $2, 10, 100, 98.5, $3, $4, $5, '{"normal": 10}', '{"normal": 10}')""",
            sim_id,
            code,
            Decimal(a),
            Decimal(b),
            Decimal(b) - Decimal(a),
        )
    return sim_id
