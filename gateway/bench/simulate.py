"""`dipgw bench simulate`: how fast a year of a city's cases is simulated under draft rules.

Synthetic cases of Guangzhou's sample rules (`workers.dip.make_case_facts`): a pool of distinct
cases is generated and scored under the current rules once (not timed), then cycled to N
cases, each one decoded from its stored JSON and scored under the draft rules, one at a time,
on one core — what `dipgw rules simulate` does per case. The draft: 三甲 coefficient 1.00 →
1.05, 职工 point value 12.35 → 12.00.

Two measures: in memory (decode + draft scoring + tally + pricing), and with `db`, the whole
`workers.simulate.simulate` against a throwaway embedded PostgreSQL holding N stored cases
(the load is not timed; the read, scoring, pricing and storing are). PostgreSQL runs in its own
process; `process_cpu_s` is this process' CPU time alone.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from adapters.runtime.postgres import create_pool
from gateway.localpg import EmbeddedPostgres
from workers.dip import (
    CaseFacts,
    RuleSet,
    ScoreError,
    SimulationTally,
    group_and_score,
    make_case_facts,
    side_point_values,
    simulate_lines,
)
from workers.dip import sample_rules as _sample_rules
from workers.rules_store import import_rules
from workers.simulate import simulate

__all__ = ["draft_rules", "run_db", "run_memory", "synthetic_cases"]

CITY, YEAR = "440100", 2026
_AT = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
_DECODE = msgspec.json.Decoder(CaseFacts)


@dataclass(frozen=True, slots=True)
class Stored:
    """One synthetic stored case: hospital, facts as stored JSON, the published outcome."""

    code: str
    facts: bytes
    insured: str
    treating: str
    score: float | None
    kind: str | None
    group_code: str | None
    payment: Decimal | None


def draft_rules(rules: RuleSet) -> RuleSet:
    """The bench's draft: 3A × 1.05 instead of 1.00, 职工 point value 12.00."""
    policy = rules.policy
    levels = tuple(
        msgspec.structs.replace(lv, coefficient=1.05) if lv.code == "3A" else lv
        for lv in policy.levels
    )
    pvs = {**policy.point_values, "310": Decimal("12.00")}
    draft = msgspec.structs.replace(policy, levels=levels, point_values=pvs, version="bench-draft")
    return RuleSet(policy=draft, groups=rules.groups, exclusions=rules.exclusions)


def synthetic_cases(distinct: int, seed: int) -> tuple[RuleSet, list[Stored]]:
    """`distinct` cases of 200 hospitals, scored under the sample rules as published."""
    rules = _sample_rules(CITY)
    rng = random.Random(seed)
    out: list[Stored] = []
    for i in range(distinct):
        f = make_case_facts(rng, (rules,))
        code = f"H{CITY}{f.hospital_level}{i % 40:03d}"  # a hospital keeps its level
        f = msgspec.structs.replace(f, fixmedins_code=code, case_key=f"{code}:{i:09d}")
        try:
            _, s = group_and_score(f, rules)
            published: tuple[Any, ...] = (s.case_score, s.deviation, s.group_code)
            payment = s.estimated_payment
        except ScoreError:
            published, payment = (None, None, None), None
        out.append(
            Stored(
                code,
                msgspec.json.encode(f),
                f.insured_admdvs,
                f.treating_admdvs,
                *published,
                payment,
            )
        )
    return rules, out


def _cycle(pool: list[Stored], n: int) -> Iterator[Stored]:
    for i in range(n):
        yield pool[i % len(pool)]


def run_memory(n: int, *, distinct: int = 5000, seed: int = 20261130) -> dict[str, Any]:
    """Decode + draft scoring + tally + pricing of `n` stored cases, in this process."""
    rules, pool = synthetic_cases(min(n, distinct), seed)
    draft = draft_rules(rules)
    group_and_score(_DECODE.decode(pool[0].facts), draft)  # indexes built outside the timing
    cpu, start = time.process_time(), time.perf_counter()
    tally = SimulationTally(draft)
    add, decode = tally.add, _DECODE.decode
    for c in _cycle(pool, n):
        add(c.code, decode(c.facts), _AT, c.score, c.kind)
    pv_cur, _ = side_point_values(rules.policy.point_values, None, tally.fund_points(False))
    pv_new, _ = side_point_values(draft.policy.point_values, None, tally.fund_points(True))
    result = simulate_lines(tally, pv_cur, pv_new)
    seconds = time.perf_counter() - start
    return {
        "mode": "memory",
        "cases": n,
        "distinct_cases": len(pool),
        "hospitals": len(result.lines),
        "seconds": round(seconds, 3),
        "process_cpu_s": round(time.process_time() - cpu, 3),
        "cases_per_s": round(n / seconds) if seconds > 0 else 0,
        "payment_current": str(result.total.payment_current),
        "payment_draft": str(result.total.payment_draft),
        "kinds_draft": result.total.kinds_draft,
    }


_COLUMNS = (
    "fixmedins_code", "setl_id", "revision", "receipt_id", "received_at", "scored_at",
    "treating_city", "insured_city", "treating_admdvs", "insured_admdvs", "scope",
    "clearing_year", "status", "unscored_rule", "group_code", "deviation", "case_score",
    "estimated_payment", "facts", "message",
)  # fmt: skip


def _records(pool: list[Stored], start: int, stop: int) -> Iterator[tuple[Any, ...]]:
    for i in range(start, stop):
        c = pool[i % len(pool)]
        scored = c.score is not None
        yield (
            c.code, f"S{i:09d}", 1, uuid.UUID(int=i + 1), _AT, _AT, CITY,
            c.insured[:4] + "00", c.treating, c.insured,
            "same_city" if c.insured[:4] == CITY[:4] else "cross_city",
            YEAR, "scored" if scored else "unscored", None if scored else "DIP_SCORE",
            c.group_code, c.kind, c.score, c.payment, c.facts.decode(), "{}",
        )  # fmt: skip


async def _load(pool_db: asyncpg.Pool, cases: list[Stored], n: int, chunk: int = 50_000) -> None:
    async with pool_db.acquire() as conn:
        for start in range(0, n, chunk):
            await conn.copy_records_to_table(
                "scored_cases",
                records=list(_records(cases, start, min(n, start + chunk))),
                columns=_COLUMNS,
            )
        await conn.execute("ANALYZE scored_cases")


async def _measure_db(dsn: str, n: int, distinct: int, seed: int) -> dict[str, Any]:
    rules, cases = synthetic_cases(min(n, distinct), seed)
    pool_db = await create_pool(dsn, min_size=1, max_size=2, command_timeout_s=600)
    try:
        await import_rules(pool_db, rules, [{"file": "bench"}])
        loaded = time.perf_counter()
        await _load(pool_db, cases, n)
        load_s = time.perf_counter() - loaded
        draft = draft_rules(rules)
        group_and_score(_DECODE.decode(cases[0].facts), draft)
        cpu, start = time.process_time(), time.perf_counter()
        run = await simulate(pool_db, CITY, YEAR, draft, [{"file": "bench"}], created_by="bench")
        seconds = time.perf_counter() - start
        cpu_s = time.process_time() - cpu
    finally:
        await pool_db.close()
    return {
        "mode": "db",
        "cases": run.result.total.cases,
        "distinct_cases": len(cases),
        "hospitals": len(run.result.lines),
        "load_s": round(load_s, 1),
        "seconds": round(seconds, 3),
        "process_cpu_s": round(cpu_s, 3),
        "cases_per_s": round(run.result.total.cases / seconds) if seconds > 0 else 0,
        "payment_current": str(run.result.total.payment_current),
        "payment_draft": str(run.result.total.payment_draft),
        "kinds_draft": run.result.total.kinds_draft,
    }


def run_db(n: int, *, distinct: int = 5000, seed: int = 20261130) -> dict[str, Any]:
    """The whole simulation of `n` stored cases on a throwaway embedded PostgreSQL."""
    with tempfile.TemporaryDirectory(prefix="dipgw-bench-simulate-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pgdata")
        try:
            dsn = pg.start()
            return asyncio.run(_measure_db(dsn, n, distinct, seed))
        finally:
            pg.stop()
