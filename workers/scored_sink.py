"""Scored sink: `dip.case.scored.all.v1` → the `scored_cases` table.

Upsert by case key: a newer revision replaces the row, and within one revision a later scoring
(a rescore under new rules, a replay after a crash) does; anything older is ignored, so
replays and redeliveries never move a case backwards. Writes take one advisory lock per
transaction so that the change positions (`pos`) are committed in order — a subscriber paging
"after position N" can then never skip a row committed late.

A withdrawn list (national 4102) arrives as its newest revision marked `DIP_WITHDRAWN`, so its
row becomes `unscored` with no score, payment or group: whatever sums scores or payments, or
counts `status = 'scored'`, leaves it out, and its re-submission (the next revision) replaces
the row — one row per case, never counted twice.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import asyncpg
from aiokafka import ConsumerRecord

from adapters.runtime.logs import get_logger
from contracts.messages import ENCODER, SCORED_ALL_DECODER, InternalScoredCase
from workers._deadletter import apply_each_or_dead_letter
from workers._runner import decode_each

if TYPE_CHECKING:
    from workers.registry import WorkerContext

log = get_logger("dipgw.scored_sink")

_POS_LOCK = 0x6469_7073  # "dips"

_COLUMNS = (
    ("fixmedins_code", "text"),
    ("setl_id", "text"),
    ("revision", "int"),
    ("receipt_id", "uuid"),
    ("received_at", "timestamptz"),
    ("scored_at", "timestamptz"),
    ("treating_city", "text"),
    ("insured_city", "text"),
    ("treating_admdvs", "text"),
    ("insured_admdvs", "text"),
    ("scope", "text"),
    ("clearing_year", "int"),
    ("status", "text"),
    ("unscored_rule", "text"),
    ("group_status", "text"),
    ("group_code", "text"),
    ("deviation", "text"),
    ("case_score", "float8"),
    ("estimated_payment", "numeric"),
    ("special_review", "bool"),
    ("total_cost", "numeric"),
    ("ruleset_id", "bigint"),
    ("ruleset_version", "text"),
    ("catalog_version", "text"),
    ("facts", "text"),
    ("message", "text"),
)
_JSON = ("facts", "message")
_UPDATED = [c for c, _ in _COLUMNS if c not in ("fixmedins_code", "setl_id")]

# One statement for the whole batch (arrays unnested), not one per row: a fraction of the
# database's and the worker's work per case.
_UPSERT = f"""
INSERT INTO scored_cases ({", ".join(c for c, _ in _COLUMNS)})
SELECT {", ".join(f"{c}::jsonb" if c in _JSON else c for c, _ in _COLUMNS)}
FROM unnest({", ".join(f"${i}::{t}[]" for i, (_, t) in enumerate(_COLUMNS, 1))})
     AS u({", ".join(c for c, _ in _COLUMNS)})
ON CONFLICT (fixmedins_code, setl_id) DO UPDATE
SET {", ".join(f"{c} = EXCLUDED.{c}" for c in _UPDATED)},
    pos = nextval('scored_cases_pos'), stored_at = clock_timestamp()
WHERE scored_cases.revision < EXCLUDED.revision
   OR (scored_cases.revision = EXCLUDED.revision AND scored_cases.scored_at < EXCLUDED.scored_at)
"""


def row_of(case: InternalScoredCase) -> tuple[object, ...]:
    """The table row of one case; `message` is what the cities received (no facts)."""
    public = case.public()
    return (
        case.fixmedins_code,
        case.setl_id,
        case.revision,
        uuid.UUID(case.receipt_id),
        case.received_at,
        case.scored_at,
        case.treating_city,
        case.insured_city,
        case.treating_admdvs,
        case.insured_admdvs,
        case.scope,
        case.clearing_year,
        case.status,
        case.unscored.rule if case.unscored else None,
        case.group_status,
        case.group_code,
        case.deviation,
        case.case_score,
        case.estimated_payment,
        case.special_review,
        case.total_cost,
        case.ruleset_id,
        case.ruleset_version,
        case.catalog_version,
        None if case.facts is None else ENCODER.encode(case.facts).decode(),
        ENCODER.encode(public).decode(),
    )


async def store_scored(pool: asyncpg.Pool, cases: list[InternalScoredCase]) -> None:
    """Upsert scored cases (latest revision, latest scoring wins) in one transaction."""
    if not cases:
        return
    # Within one batch keep only each case's newest message: fewer writes, same end state.
    newest: dict[str, InternalScoredCase] = {}
    for case in cases:
        seen = newest.get(case.case_key)
        if seen is None or (case.revision, case.scored_at) >= (seen.revision, seen.scored_at):
            newest[case.case_key] = case
    rows = [row_of(c) for c in sorted(newest.values(), key=lambda c: c.case_key)]
    await _write(pool, rows)


async def _write(pool: asyncpg.Pool, rows: list[tuple[object, ...]]) -> None:
    columns = [list(column) for column in zip(*rows, strict=True)]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _POS_LOCK)
        await conn.execute(_UPSERT, *columns)


class ScoredSink:
    def __init__(self, context: WorkerContext) -> None:
        self._pool = context.pool

    async def handle(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        # A row the table refuses must not stall the partition: it is dead-lettered.
        await apply_each_or_dead_letter(self._pool, "scored_sink", records, self._apply)

    async def _apply(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        cases = [c for _, c in decode_each(records, SCORED_ALL_DECODER, "scored_sink")]
        await store_scored(self._pool, cases)
