"""`dipgw rules simulate`'s shell: read a city's year of stored cases, tally them under draft
rules (`workers.dip.SimulationTally`), price both sides and store the result.

Read only: the published results (`scored_cases`) are read in one snapshot and never written;
nothing is published to Kafka. What is stored is the simulation itself (`simulation_runs`,
`simulation_lines`, migration 0018), numbered per city and year, so the API can serve it and
successive drafts can be compared (测算 is run again and again).

The rows are streamed with a server-side cursor, so a year of a large city never sits in
memory as rows: only the per-hospital sums do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec

from workers.dip import (
    CaseFacts,
    PointValue,
    RuleSet,
    SettlementPolicy,
    Simulation,
    SimulationTally,
    decode_settlement_policy,
    reasons,
    side_point_values,
    simulate_lines,
)
from workers.rules_store import rules_in_force

__all__ = ["SimulationRun", "simulate"]

_FACTS = msgspec.json.Decoder(CaseFacts)

# The stored cases of the treating city and clearing year, as published; a withdrawn list
# (national 4102) is no case to pay, as `dipgw rescore` leaves it too.
_SELECT = f"""
SELECT fixmedins_code, received_at, status, case_score, deviation, facts::text AS facts
FROM scored_cases
WHERE treating_city = $1 AND clearing_year = $2
  AND unscored_rule IS DISTINCT FROM '{reasons.WITHDRAWN.rule}'
"""

_SIM_LOCK = 0x6469_7369  # "dsim": one seq at a time per (city, year)

_INSERT_RUN = """
INSERT INTO simulation_runs (city, clearing_year, seq, current_ruleset_id, current_version,
    draft_version, draft_sha256, draft_sources, point_values, cases, skipped, points_current,
    points_draft, payment_current, payment_draft, delta, delta_pct, kinds_current, kinds_draft,
    seconds, created_by)
VALUES ($1, $2,
    (SELECT coalesce(max(seq), 0) + 1 FROM simulation_runs WHERE city = $1 AND clearing_year = $2),
    $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11, $12, $13, $14, $15, $16, $17::jsonb,
    $18::jsonb, $19, $20)
RETURNING sim_id, seq, created_at
"""

_INSERT_LINES = """
INSERT INTO simulation_lines (sim_id, fixmedins_code, cases, points_current, points_draft,
    payment_current, payment_draft, delta, delta_pct, kinds_current, kinds_draft)
SELECT $1, * FROM unnest($2::text[], $3::int[], $4::numeric[], $5::numeric[], $6::numeric[],
    $7::numeric[], $8::numeric[], $9::numeric[], $10::jsonb[], $11::jsonb[])
"""


@dataclass(frozen=True, slots=True)
class SimulationRun:
    """A stored simulation: its number, what was compared and the figures."""

    sim_id: int
    seq: int
    city: str
    clearing_year: int
    current_version: str | None
    draft_version: str
    point_value_method: str
    skipped: int
    seconds: float
    created_at: datetime
    result: Simulation
    names: dict[str, str]  # hospital code → registered name (for the report; may lack some)


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _pv_doc(point_values: Mapping[str, Decimal]) -> dict[str, str]:
    return {fund: str(pv) for fund, pv in sorted(point_values.items())}


async def _tally(
    pool: asyncpg.Pool, city: str, year: int, draft: RuleSet, batch: int
) -> tuple[SimulationTally, int]:
    tally = SimulationTally(draft)
    skipped = 0
    add = tally.add
    decode = _FACTS.decode
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        cursor = await conn.cursor(_SELECT, city, year)
        pending = asyncio.ensure_future(cursor.fetch(batch))
        try:
            while rows := await pending:
                # Ask for the next batch before scoring this one: PostgreSQL reads and sends it
                # while this process scores (the request leaves at the next loop turn).
                pending = asyncio.ensure_future(cursor.fetch(batch))
                await asyncio.sleep(0)
                for row in rows:
                    facts = row[5]
                    if facts is None:  # stored before facts were kept: `rescore` re-maps those
                        skipped += 1
                        continue
                    scored = row[2] == "scored"
                    add(
                        row[0],
                        decode(facts),
                        row[1],
                        row[3] if scored else None,
                        row[4] if scored else None,
                    )
        finally:
            if not pending.done():  # scoring failed: the read is abandoned with the snapshot
                pending.cancel()
    return tally, skipped


async def settlement_policy_in_force(
    pool: asyncpg.Pool, city: str, year: int
) -> SettlementPolicy | None:
    """The city's settlement policy for the year (the highest seq), if it has one."""
    document = await pool.fetchval(
        """SELECT document FROM settlement_policies WHERE city = $1 AND clearing_year = $2
           ORDER BY seq DESC LIMIT 1""",
        city,
        year,
    )
    return None if document is None else decode_settlement_policy(document)


def _method(current: SettlementPolicy | None, draft: SettlementPolicy | None) -> str:
    """How both sides' point values were found, in one line for people."""
    if current is None and draft is None:
        return "rules (each side's own point values)"
    cur = "rules" if current is None else f"settlement {current.version}"
    new = "rules" if draft is None else f"settlement {draft.version}"
    return f"budget ÷ payment ratio ÷ points (current: {cur}; draft: {new})"


def _details(details: Mapping[str, PointValue]) -> dict[str, Any]:
    return {
        fund: {
            "estimate": str(pv.estimate),
            "raw": None if pv.raw is None else str(pv.raw),
            "value": None if pv.value is None else str(pv.value),
            "bound": pv.bound,
            "total_score": f"{pv.total_score:f}",
        }
        for fund, pv in details.items()
    }


async def simulate(
    pool: asyncpg.Pool,
    city: str,
    year: int,
    draft: RuleSet,
    sources: list[dict[str, str]],
    *,
    settlement: SettlementPolicy | None = None,
    created_by: str = "",
    batch: int = 5000,
) -> SimulationRun:
    """Simulate `draft` (the rules of `city` for `year`) on the year's stored cases; store and
    return the result. The published results are left as they are.

    Point values (`side_point_values`): with the city's settlement policy in force, each side
    is priced at the 结算点值 its own total points give; `settlement` is a draft settlement
    policy (point value method, budgets) for the draft side, else the one in force serves
    both. Without any, each side's rules' own point values."""
    started = time.perf_counter()
    current = await rules_in_force(pool, city, year)
    policy = await settlement_policy_in_force(pool, city, year)
    draft_policy = settlement or policy
    tally, skipped = await _tally(pool, city, year, draft, batch)
    rules_pv = current.rules.policy.point_values if current is not None else {}
    pv_current, cur_details = side_point_values(
        rules_pv or draft.policy.point_values, policy, tally.fund_points(draft=False)
    )
    pv_draft, draft_details = side_point_values(
        draft.policy.point_values, draft_policy, tally.fund_points(draft=True)
    )
    method = _method(policy, draft_policy)
    result = simulate_lines(tally, pv_current, pv_draft)
    seconds = time.perf_counter() - started
    t = result.total
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _SIM_LOCK, int(city) ^ year)
        row = await conn.fetchrow(
            _INSERT_RUN,
            city,
            year,
            None if current is None else current.ruleset_id,
            None if current is None else current.rules.version_id,
            draft.version_id,
            draft.content_hash,
            _json(sources),
            _json(
                {
                    "current": _pv_doc(pv_current),
                    "draft": _pv_doc(pv_draft),
                    "method": method,
                    "details": {
                        "current": _details(cur_details),
                        "draft": _details(draft_details),
                    },
                }
            ),
            t.cases,
            skipped,
            t.points_current,
            t.points_draft,
            t.payment_current,
            t.payment_draft,
            t.delta,
            t.delta_pct,
            _json(t.kinds_current),
            _json(t.kinds_draft),
            seconds,
            created_by,
        )
        lines = result.lines
        if lines:
            await conn.execute(
                _INSERT_LINES,
                row["sim_id"],
                [ln.fixmedins_code for ln in lines],
                [ln.cases for ln in lines],
                [ln.points_current for ln in lines],
                [ln.points_draft for ln in lines],
                [ln.payment_current for ln in lines],
                [ln.payment_draft for ln in lines],
                [ln.delta for ln in lines],
                [ln.delta_pct for ln in lines],
                [_json(ln.kinds_current) for ln in lines],
                [_json(ln.kinds_draft) for ln in lines],
            )
    names = {
        r["fixmedins_code"]: r["name"]
        for r in await pool.fetch(
            "SELECT fixmedins_code, name FROM hospitals WHERE fixmedins_code = ANY($1::text[])",
            [ln.fixmedins_code for ln in result.lines],
        )
    }
    return SimulationRun(
        sim_id=row["sim_id"],
        seq=row["seq"],
        city=city,
        clearing_year=year,
        current_version=None if current is None else current.rules.version_id,
        draft_version=draft.version_id,
        point_value_method=method,
        skipped=skipped,
        seconds=seconds,
        created_at=row["created_at"],
        result=result,
        names=names,
    )
