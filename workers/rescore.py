"""Re-scoring stored cases of one city and clearing year under the rules now in force.

Used by `dipgw rescore CITY YEAR` after a city publishes new rules (or its first rules, for
cases stored `unscored`). Each case is re-scored from its stored facts (re-mapped from the
stored upload when it had none), then published exactly like the scoring worker does — to the
city topics, so subscribers see the new score, and to `scored_all` — and upserted here too,
so the command's result is in PostgreSQL when it returns. The upsert's "later scoring of the
same revision wins" rule makes the scored sink's later copy of the same message a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from gateway.settings import Settings
from workers.case_messages import GroupedCase, ScoredCase
from workers.casefacts_map import MappingError, case_facts
from workers.dip import CaseFacts
from workers.grouping import CST, clearing_year
from workers.rules_store import rules_in_force
from workers.scored_sink import store_scored
from workers.scoring import TopicCache, publish, score_grouped

_FACTS = msgspec.json.Decoder(CaseFacts)

# Stored cases of the treating city whose clearing year is YEAR — or unknown yet (no facts),
# whose upload is then re-mapped to find out.
_SELECT = """
SELECT s.fixmedins_code, s.setl_id, s.revision, s.receipt_id::text AS receipt_id,
       s.received_at, s.treating_admdvs, s.insured_admdvs, s.clearing_year,
       s.facts::text AS facts, c.record::text AS record, c.revision AS record_revision,
       h.level
FROM scored_cases s
LEFT JOIN cases c USING (fixmedins_code, setl_id)
LEFT JOIN hospitals h USING (fixmedins_code)
WHERE s.treating_city = $1 AND (s.clearing_year = $2 OR s.facts IS NULL)
ORDER BY s.fixmedins_code, s.setl_id
"""


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
    if row["facts"] is not None:
        facts = _FACTS.decode(row["facts"])
    elif row["record"] is not None and row["level"] is not None:
        if row["record_revision"] != row["revision"]:
            return None  # a newer revision is on its way through the pipeline
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
) -> RescoreResult | None:
    """Re-score the stored cases of `city`/`year`; None when the city has no rules in force."""
    stored = await rules_in_force(pool, city, year)
    if stored is None:
        return None
    result = RescoreResult(city, year, stored.rules.version_id)
    topics = TopicCache(settings, bootstrap)
    rows = await pool.fetch(_SELECT, city, year)
    before = {
        (r["fixmedins_code"], r["setl_id"]): r
        for r in await pool.fetch(
            """SELECT fixmedins_code, setl_id, status, case_score, estimated_payment, ruleset_id
               FROM scored_cases WHERE treating_city = $1""",
            city,
        )
    }
    now = datetime.now(CST)
    pending: list[ScoredCase] = []
    for row in rows:
        grouped = _grouped(row, now)
        if grouped is None or grouped.clearing_year != year:
            continue
        result.considered += 1
        case = score_grouped(grouped, stored, settings, now)
        if case.status == "scored":
            result.rescored += 1
        else:
            result.unscored += 1
        old = before.get((case.fixmedins_code, case.setl_id))
        if old is None or (old["status"], old["case_score"], old["estimated_payment"]) != (
            case.status,
            case.case_score,
            case.estimated_payment,
        ):
            result.changed += 1
        pending.append(case)
        if len(pending) >= batch:
            await _flush(pool, producer, topics, settings, pending)
    await _flush(pool, producer, topics, settings, pending)
    return result


async def _flush(
    pool: asyncpg.Pool,
    producer: Any,
    topics: TopicCache,
    settings: Settings,
    cases: list[ScoredCase],
) -> None:
    if not cases:
        return
    await publish(producer, topics, settings, cases)
    await store_scored(pool, cases)
    cases.clear()
