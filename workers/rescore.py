"""Re-scoring stored cases of one city and clearing year under the rules now in force.

Two users:

* the scoring worker, on its own (`run_waiting_rescorer`): cases stored `unscored` with
  `DIP_NO_RULES` — their treating city had no rules for their clearing year yet, as at every
  change of clearing year — are scored as soon as that city's rules for that year are
  imported, however they were imported (`dipgw rules import`, `import_rules`). Only those
  waiting cases: a case once scored is never re-scored behind the operator's back;
* `dipgw rescore CITY YEAR`, run by the operator after a city publishes new rules for a year
  whose cases are already scored: every stored case of that city and year.

A withdrawn list (national 4102, stored `DIP_WITHDRAWN`) is left as it is: neither re-scores
it; only its re-submission, a new revision, is scored again (by the scoring worker).

Each case is re-scored from its stored facts (re-mapped from the stored upload when it had
none), then published exactly like the scoring worker does — to the city topics, so
subscribers see the new score, and to `scored_all` — and upserted here too, so the result is
in PostgreSQL when the call returns. The upsert's "later scoring of the same revision wins"
rule makes the scored sink's later copy of the same message a no-op. Re-scorings of one
(city, year) take turns (an advisory lock) and read the cases only once they hold it, so two
scoring processes finding the same waiting cases publish each new score once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from adapters.runtime.errors import describe_error
from adapters.runtime.logs import get_logger
from adapters.runtime.settings import Settings
from contracts import CST
from contracts.messages import GroupedCase
from workers.casefacts_map import MappingError, case_facts, withdrawn
from workers.dip import CaseFacts, clearing_year, reasons
from workers.rules_store import rules_in_force
from workers.scored_sink import store_scored
from workers.scoring import Outgoing, TopicCache, publish, score_grouped

log = get_logger("dipgw.rescore")
_FACTS = msgspec.json.Decoder(CaseFacts)

# Stored cases of the treating city whose clearing year is YEAR — or unknown yet (no facts),
# whose upload is then re-mapped to find out; with $3, only the cases waiting for rules. A
# withdrawn list (national 4102) is never re-scored: only its re-submission scores it again.
_SELECT = f"""
SELECT s.fixmedins_code, s.setl_id, s.revision, s.receipt_id::text AS receipt_id,
       s.received_at, s.treating_admdvs, s.insured_admdvs, s.clearing_year,
       s.status, s.case_score, s.estimated_payment,
       s.facts::text AS facts, c.record::text AS record, c.revision AS record_revision,
       h.level
FROM scored_cases s
LEFT JOIN cases c USING (fixmedins_code, setl_id)
LEFT JOIN hospitals h USING (fixmedins_code)
WHERE s.treating_city = $1 AND (s.clearing_year = $2 OR s.facts IS NULL)
  AND (NOT $3 OR s.unscored_rule = 'DIP_NO_RULES')
  AND s.unscored_rule IS DISTINCT FROM '{reasons.WITHDRAWN.rule}'
ORDER BY s.fixmedins_code, s.setl_id
"""

# (city, year) pairs with cases waiting for rules that are now imported.
_WAITING = """
SELECT DISTINCT s.treating_city AS city, s.clearing_year AS year
FROM scored_cases s
WHERE s.unscored_rule = 'DIP_NO_RULES' AND s.clearing_year IS NOT NULL
  AND EXISTS (SELECT 1 FROM dip_rulesets r
              WHERE r.city = s.treating_city AND r.clearing_year = s.clearing_year)
ORDER BY 1, 2
"""

# One re-scoring of a (city, year) at a time, across processes.
_RESCORE_LOCK = 0x6469_7273  # "dirs"


@dataclass
class RescoreResult:
    city: str
    clearing_year: int
    ruleset_version: str
    considered: int = 0
    rescored: int = 0
    unscored: int = 0
    changed: int = 0


def _grouped(row: asyncpg.Record, now: datetime) -> GroupedCase | None:
    facts: CaseFacts | None = None
    if row["record_revision"] is not None and row["record_revision"] != row["revision"]:
        return None  # a newer revision (a withdrawal, say) is on its way through the pipeline
    if row["facts"] is not None:
        facts = _FACTS.decode(row["facts"])
    elif row["record"] is not None and row["level"] is not None:
        if withdrawn(row["record"].encode()):
            return None
        try:
            facts = case_facts(
                row["record"].encode(),
                case_key=f"{row['fixmedins_code']}:{row['setl_id']}",
                fixmedins_code=row["fixmedins_code"],
                treating_admdvs=row["treating_admdvs"],
                insured_admdvs=row["insured_admdvs"],
                hospital_level=row["level"],
            )
        except MappingError:
            return None
    if facts is None:
        return None
    return GroupedCase(
        receipt_id=row["receipt_id"],
        case_key=facts.case_key,
        fixmedins_code=row["fixmedins_code"],
        setl_id=row["setl_id"],
        revision=row["revision"],
        received_at=row["received_at"],
        treating_admdvs=row["treating_admdvs"],
        insured_admdvs=facts.insured_admdvs,
        contract_version="",
        clearing_year=clearing_year(facts.discharge_date, row["received_at"]),
        grouped_at=now,
        facts=facts,
    )


async def rescore(
    pool: asyncpg.Pool,
    producer: Any,
    settings: Settings,
    bootstrap: str,
    city: str,
    year: int,
    *,
    batch: int = 500,
    waiting_only: bool = False,
    now: datetime | None = None,
    topics: TopicCache | None = None,
) -> RescoreResult | None:
    """Re-score the stored cases of `city`/`year`; None when the city has no rules in force.

    `waiting_only`: only the cases stored `unscored` for want of rules (`DIP_NO_RULES`).
    `now` is their new `scored_at` (default: the real time).
    """
    async with pool.acquire() as lock:
        await lock.execute("SELECT pg_advisory_lock($1, $2)", _RESCORE_LOCK, _lock_key(city, year))
        try:
            return await _rescore(
                pool,
                producer,
                settings,
                topics or TopicCache(settings, bootstrap),
                city,
                year,
                batch=batch,
                waiting_only=waiting_only,
                now=now or datetime.now(CST),
            )
        finally:
            await lock.execute(
                "SELECT pg_advisory_unlock($1, $2)", _RESCORE_LOCK, _lock_key(city, year)
            )


def _lock_key(city: str, year: int) -> int:
    return (int(city) * 10_000 + year) % 2**31 if city.isdigit() else year


async def _rescore(
    pool: asyncpg.Pool,
    producer: Any,
    settings: Settings,
    topics: TopicCache,
    city: str,
    year: int,
    *,
    batch: int,
    waiting_only: bool,
    now: datetime,
) -> RescoreResult | None:
    stored = await rules_in_force(pool, city, year)
    if stored is None:
        return None
    result = RescoreResult(city, year, stored.rules.version_id)
    rows = await pool.fetch(_SELECT, city, year, waiting_only)
    pending: list[Outgoing] = []
    for row in rows:
        grouped = _grouped(row, now)
        if grouped is None or grouped.clearing_year != year:
            continue
        result.considered += 1
        case, route = score_grouped(grouped, stored, settings, now)
        if case.status == "scored":
            result.rescored += 1
        else:
            result.unscored += 1
        if (row["status"], row["case_score"], row["estimated_payment"]) != (
            case.status,
            case.case_score,
            case.estimated_payment,
        ):
            result.changed += 1
        pending.append((case, route))
        if len(pending) >= batch:
            await _flush(pool, producer, topics, settings, pending)
    await _flush(pool, producer, topics, settings, pending)
    return result


async def rescore_waiting(
    pool: asyncpg.Pool,
    producer: Any,
    settings: Settings,
    bootstrap: str,
    now: datetime,
    *,
    topics: TopicCache | None = None,
) -> list[RescoreResult]:
    """Score the cases waiting for rules (`DIP_NO_RULES`) of every (city, year) whose rules
    are now imported. Idempotent: a case scored here no longer waits."""
    topics = topics or TopicCache(settings, bootstrap)
    out = []
    for pair in await pool.fetch(_WAITING):
        result = await rescore(
            pool,
            producer,
            settings,
            bootstrap,
            pair["city"],
            pair["year"],
            waiting_only=True,
            now=now,
            topics=topics,
        )
        if result is not None and result.considered:
            log.info(
                "rescore.waiting_scored",
                city=result.city,
                clearing_year=result.clearing_year,
                ruleset=result.ruleset_version,
                scored=result.rescored,
                unscored=result.unscored,
            )
            out.append(result)
    return out


async def run_waiting_rescorer(ctx: Any, owner: asyncio.Task[Any]) -> None:
    """Look for cases whose rules have arrived every `worker.rules_cache_s` (at least 1 s)
    until `owner` (the scoring worker's task) ends."""
    settings = ctx.settings
    topics = TopicCache(settings, ctx.bootstrap)
    while not owner.done():
        try:
            await rescore_waiting(
                ctx.pool, ctx.producer, settings, ctx.bootstrap, ctx.clock(), topics=topics
            )
        except Exception as exc:  # the database or broker away: try again next round
            log.warning("rescore.waiting_failed", error=describe_error(exc))
        await asyncio.wait({owner}, timeout=max(1.0, settings.worker.rules_cache_s))


async def _flush(
    pool: asyncpg.Pool,
    producer: Any,
    topics: TopicCache,
    settings: Settings,
    cases: list[Outgoing],
) -> None:
    if not cases:
        return
    await publish(producer, topics, settings, cases)
    await store_scored(pool, [case for case, _ in cases])
    cases.clear()
