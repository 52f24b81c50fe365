"""Quality worker: accepted and rejected settlement lists → per hospital/day quality rollups.

Ops teams are held to 填写规范率 / 上传及时率 / 病案数据质量 targets; this worker keeps what
those are computed from (gateway/ops.py reports them). Exact under redelivery: each message
first claims its key in `quality_events` (accepted: receipt id, which also absorbs a receipt
produced twice; rejected: Kafka topic/partition/offset, since a rejection has no receipt) and
only newly claimed messages are added to the rollups, in the same transaction.

Upload lag (discharge → receipt) is kept as a histogram of fixed hour buckets per hospital and
day (`LAG_EDGES_H`): counts add up exactly across days, hospitals and cities, percentiles are
interpolated inside a bucket (one-day resolution up to 15 days), and the share within N ≤ 15
days (上传及时率) is exact.

Each rejected list is also kept for the `/ops` message browser (`rejected_messages`): its
findings and its document as the rejected topic carries it (already masked by the gateway),
under its original Kafka position, added with the rollups in the same transaction and pruned
after `quality.events_keep_days`.

The worker also runs the alert evaluator (`workers.quality_alerts`) for as long as it runs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeAlias

import asyncpg
import msgspec
from aiokafka import ConsumerRecord

from adapters.runtime.logs import get_logger
from contracts import CST, LAG_BUCKETS, city_of, lag_bucket
from contracts.messages import (
    ACCEPTED_DECODER,
    DOCUMENT_HEAD_DECODER,
    REJECTED_DECODER,
    DocumentHead,
    status_revision_sha256,
)
from workers._deadletter import apply_each_or_dead_letter, replayed_from

log = get_logger("dipgw.quality")

EXAMPLES_KEPT = 5
# Where a list whose hospital and region name no city is counted (never dropped).
UNKNOWN_CITY = "000000"

Record: TypeAlias = ConsumerRecord[bytes, bytes]


def _head(document: bytes) -> DocumentHead | None:
    """Where and when, if the carried document shows them: a rejected list may be anything
    (an array, a string, wrong types), and is counted all the same."""
    if document in (b"", b"null"):
        return None
    try:
        return DOCUMENT_HEAD_DECODER.decode(document)
    except msgspec.DecodeError:
        return None


def _discharged(doc: DocumentHead | None) -> datetime | None:
    text = doc.dscg_time if doc is not None else None
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=CST)


@dataclass(slots=True)
class Kept:
    """A rejected list for the `/ops` message browser: where it is in Kafka (the original's
    position for a replayed copy), its findings and its document, masked as the topic has it."""

    topic: str
    partition: int
    offset: int
    errors: bytes
    document: bytes | None


@dataclass(slots=True)
class Fact:
    """What one message contributes to the rollups; no personal data."""

    key: str
    ref: str  # receipt id, or rejected:<partition>/<offset>
    fixmedins_code: str
    region: str | None
    received_at: datetime
    accepted: bool
    case_key: str | None = None
    revision: int = 1
    lag_hours: float | None = None
    findings: list[tuple[str, str, str]] = field(default_factory=list)  # rule, severity, dim
    kept: Kept | None = None  # a rejected list, as the message browser keeps it

    @property
    def day(self) -> date:
        return self.received_at.astimezone(CST).date()


def fact_of(record: Record, accepted_topic: str) -> Fact | None:
    """Decode one message of the accepted or rejected topic; None when it is not one."""
    value = record.value or b""
    try:
        if record.topic == accepted_topic:
            msg = ACCEPTED_DECODER.decode(value)
            doc = _head(bytes(msg.document))
            fact = Fact(
                key=f"accepted:{msg.receipt_id}",
                ref=msg.receipt_id,
                fixmedins_code=msg.fixmedins_code,
                region=msg.mdtrtarea_admvs,
                received_at=msg.received_at,
                accepted=True,
                case_key=msg.case_key,
                revision=msg.revision,
                findings=[_finding(w) for w in msg.warnings],
            )
        else:
            rej = REJECTED_DECODER.decode(value)
            document = bytes(rej.document)
            doc = _head(document)
            # A replayed copy counts as its original: it is the same message.
            origin = replayed_from(record)
            topic, partition, offset = (
                origin[1:] if origin else (record.topic, record.partition, record.offset)
            )
            fact = Fact(
                key=f"rejected:{topic}:{partition}:{offset}",
                ref=f"rejected:{partition}/{offset}",
                fixmedins_code=rej.fixmedins_code,
                region=doc.mdtrtarea_admvs if doc else None,
                received_at=rej.received_at,
                accepted=False,
                case_key=rej.case_key,
                findings=[(e.rule, e.severity, e.dimension) for e in rej.errors],
                kept=Kept(
                    topic,
                    partition,
                    offset,
                    msgspec.json.encode(rej.errors),
                    None if document in (b"", b"null") else document,
                ),
            )
    except (msgspec.DecodeError, ValueError) as exc:
        log.error(
            "quality.undecodable",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=str(exc)[:200],
        )
        return None
    if fact.received_at.tzinfo is None:
        fact.received_at = fact.received_at.replace(tzinfo=CST)
    discharged = _discharged(doc)
    if discharged is not None and discharged <= fact.received_at:
        fact.lag_hours = (fact.received_at - discharged).total_seconds() / 3600
    return fact


def _finding(item: dict[str, Any]) -> tuple[str, str, str]:
    return (
        str(item.get("rule") or "?"),
        str(item.get("severity") or "reject"),
        str(item.get("dimension") or ""),
    )


@dataclass(slots=True)
class _Day:
    city: str
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    warned: int = 0
    revisions: int = 0
    resubmissions: int = 0
    lag_hist: list[int] = field(default_factory=lambda: [0] * LAG_BUCKETS)
    last_seen: datetime | None = None


@dataclass(slots=True)
class _RuleDay:
    city: str
    dimension: str
    findings: int = 0
    records: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Rollup:
    """The increments of one batch, keyed as the tables are."""

    days: dict[tuple[date, str], _Day] = field(default_factory=dict)
    rules: dict[tuple[date, str, str, str], _RuleDay] = field(default_factory=dict)
    dims: dict[tuple[date, str, str, str], list[Any]] = field(default_factory=dict)

    def add(self, fact: Fact, city: str, resubmission: bool) -> None:
        day = self.days.setdefault((fact.day, fact.fixmedins_code), _Day(city))
        day.received += 1
        if fact.accepted:
            day.accepted += 1
            day.warned += bool(fact.findings)
            day.revisions += fact.revision > 1
            day.resubmissions += resubmission
        else:
            day.rejected += 1
        if fact.lag_hours is not None:
            day.lag_hist[lag_bucket(fact.lag_hours)] += 1
        if day.last_seen is None or fact.received_at > day.last_seen:
            day.last_seen = fact.received_at
        per_rule: dict[tuple[str, str], tuple[str, int]] = {}
        per_dim: dict[tuple[str, str], int] = defaultdict(int)
        for rule, severity, dimension in fact.findings:
            _, n = per_rule.get((rule, severity), (dimension, 0))
            per_rule[(rule, severity)] = (dimension, n + 1)
            per_dim[(dimension, severity)] += 1
        for (rule, severity), (dimension, n) in per_rule.items():
            entry = self.rules.setdefault(
                (fact.day, fact.fixmedins_code, rule, severity), _RuleDay(city, dimension)
            )
            entry.findings += n
            entry.records += 1
            if len(entry.examples) < EXAMPLES_KEPT:
                entry.examples.append(fact.ref)
        for (dimension, severity), n in per_dim.items():
            entry_dim = self.dims.setdefault(
                (fact.day, fact.fixmedins_code, dimension, severity), [city, 0, 0]
            )
            entry_dim[1] += 1
            entry_dim[2] += n


_DAILY_UPSERT = """
INSERT INTO quality_daily (day, fixmedins_code, city, received, accepted, rejected, warned,
                           revisions, resubmissions, lag_hist, last_seen)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (day, fixmedins_code) DO UPDATE SET
    received = quality_daily.received + EXCLUDED.received,
    accepted = quality_daily.accepted + EXCLUDED.accepted,
    rejected = quality_daily.rejected + EXCLUDED.rejected,
    warned = quality_daily.warned + EXCLUDED.warned,
    revisions = quality_daily.revisions + EXCLUDED.revisions,
    resubmissions = quality_daily.resubmissions + EXCLUDED.resubmissions,
    lag_hist = ARRAY(SELECT a + b FROM unnest(quality_daily.lag_hist, EXCLUDED.lag_hist)
                     WITH ORDINALITY AS t(a, b, i) ORDER BY i),
    last_seen = GREATEST(quality_daily.last_seen, EXCLUDED.last_seen)
"""
_RULE_UPSERT = """
INSERT INTO quality_rule_daily (day, fixmedins_code, rule, severity, city, dimension,
                                findings, records, examples)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (day, fixmedins_code, rule, severity) DO UPDATE SET
    findings = quality_rule_daily.findings + EXCLUDED.findings,
    records = quality_rule_daily.records + EXCLUDED.records,
    examples = (quality_rule_daily.examples || EXCLUDED.examples)[1:5]
"""
_DIM_UPSERT = """
INSERT INTO quality_dimension_daily (day, fixmedins_code, dimension, severity, city,
                                     records, findings)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (day, fixmedins_code, dimension, severity) DO UPDATE SET
    records = quality_dimension_daily.records + EXCLUDED.records,
    findings = quality_dimension_daily.findings + EXCLUDED.findings
"""
_HOSPITAL_UPSERT = """
INSERT INTO quality_hospitals (fixmedins_code, city, first_seen, last_seen)
VALUES ($1, $2, $3, $3)
ON CONFLICT (fixmedins_code) DO UPDATE SET
    city = EXCLUDED.city,
    first_seen = LEAST(quality_hospitals.first_seen, EXCLUDED.first_seen),
    last_seen = GREATEST(quality_hospitals.last_seen, EXCLUDED.last_seen)
"""


async def apply_facts(conn: asyncpg.Connection, facts: list[Fact]) -> int:
    """Add the facts not seen before to the rollups; call inside a transaction. Returns count."""
    unique = list({fact.key: fact for fact in facts}.values())
    if not unique:
        return 0
    claimed = {
        row["event_key"]
        for row in await conn.fetch(
            """INSERT INTO quality_events (event_key) SELECT unnest($1::text[])
               ON CONFLICT DO NOTHING RETURNING event_key""",
            [fact.key for fact in unique],
        )
    }
    new = [fact for fact in unique if fact.key in claimed]
    if not new:
        return 0
    cities = {
        row["fixmedins_code"]: city_of(row["admdvs"]) or UNKNOWN_CITY
        for row in await conn.fetch(
            "SELECT fixmedins_code, admdvs FROM hospitals WHERE fixmedins_code = ANY($1)",
            list({fact.fixmedins_code for fact in new}),
        )
    }
    rejected_cases = sorted(
        {(f.case_key, f.received_at) for f in new if not f.accepted and f.case_key},
        key=lambda item: (item[0], item[1]),
    )
    if rejected_cases:
        await conn.executemany(
            """INSERT INTO quality_rejected_cases (case_key, rejected_at) VALUES ($1, $2)
               ON CONFLICT DO NOTHING""",
            rejected_cases,
        )
    accepted_keys = sorted({f.case_key for f in new if f.accepted and f.case_key})
    resubmitted = (
        {
            row["case_key"]
            for row in await conn.fetch(
                """DELETE FROM quality_rejected_cases WHERE case_key = ANY($1)
                   RETURNING case_key""",
                accepted_keys,
            )
        }
        if accepted_keys
        else set()
    )
    changes = await status_changes(conn, new)
    rollup = Rollup()
    for fact in new:
        if fact.key in changes:
            continue  # a status change (4102) is not a list received: counted nowhere
        city = cities.get(fact.fixmedins_code) or city_of(fact.region) or UNKNOWN_CITY
        first = fact.accepted and fact.case_key in resubmitted
        if first:
            resubmitted.discard(fact.case_key)  # one resubmission per rejected case
        rollup.add(fact, city, first)
    # Sorted keys: concurrent batches lock rows in one order and cannot deadlock.
    await conn.executemany(
        _DAILY_UPSERT,
        [
            (
                k[0],
                k[1],
                d.city,
                d.received,
                d.accepted,
                d.rejected,
                d.warned,
                d.revisions,
                d.resubmissions,
                d.lag_hist,
                d.last_seen,
            )
            for k, d in sorted(rollup.days.items())
        ],
    )
    if rollup.rules:
        await conn.executemany(
            _RULE_UPSERT,
            [
                (*k, r.city, r.dimension, r.findings, r.records, r.examples)
                for k, r in sorted(rollup.rules.items())
            ],
        )
    if rollup.dims:
        await conn.executemany(_DIM_UPSERT, [(*k, *v) for k, v in sorted(rollup.dims.items())])
    latest: dict[str, tuple[str, datetime]] = {}
    for (_, code), d in rollup.days.items():
        assert d.last_seen is not None
        if code not in latest or d.last_seen > latest[code][1]:
            latest[code] = (d.city, d.last_seen)
    await conn.executemany(_HOSPITAL_UPSERT, [(code, *v) for code, v in sorted(latest.items())])
    kept = [
        (
            f.kept.topic,
            f.kept.partition,
            f.kept.offset,
            f.fixmedins_code,
            cities.get(f.fixmedins_code) or city_of(f.region) or UNKNOWN_CITY,
            f.case_key,
            f.received_at,
            sorted({rule for rule, _, _ in f.findings}),
            f.kept.errors.decode(),
            None if f.kept.document is None else f.kept.document.decode(),
        )
        for f in new
        if f.kept is not None
    ]
    if kept:
        await conn.executemany(_KEEP_REJECTED, sorted(kept, key=lambda row: row[:3]))
    return len(new)


async def status_changes(conn: asyncpg.Connection, facts: list[Fact]) -> set[str]:
    """Keys of the accepted facts that are status revisions (national 4102: withdrawn or
    re-submitted), told by their receipt's content identity (`status_revision_sha256` of the
    revision before). Not lists received: they add no received, accepted or revision count and
    no lag sample (the discharge did not happen again)."""
    later: dict[uuid.UUID, str] = {}
    for f in facts:
        if f.accepted and f.revision > 1:
            try:
                later[uuid.UUID(f.ref)] = f.key
            except ValueError:  # not a receipt of this gateway: a list like any
                continue
    if not later:
        return set()
    rows = await conn.fetch(
        """SELECT r.receipt_id, r.content_sha256, b.receipt_id::text AS base
           FROM receipts r JOIN receipts b ON b.fixmedins_code = r.fixmedins_code
                AND b.setl_id = r.setl_id AND b.revision = r.revision - 1
           WHERE r.receipt_id = ANY($1::uuid[])""",
        list(later),
    )
    return {
        later[row["receipt_id"]]
        for row in rows
        if bytes(row["content_sha256"])
        in {status_revision_sha256(row["base"], stas) for stas in ("0", "1")}
    }


_KEEP_REJECTED = """
INSERT INTO rejected_messages (topic, "partition", "offset", fixmedins_code, city, case_key,
                               received_at, rules, errors, document)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT DO NOTHING
"""
PRUNE_EVERY_S = 600.0


async def prune_rejected_messages(pool: asyncpg.Pool, keep_days: int) -> int:
    """Forget rejected lists kept longer than `keep_days` (the browser's bounded retention);
    aged on the database's clock, which stamped them. Returns how many were removed."""
    status = await pool.execute(
        "DELETE FROM rejected_messages WHERE kept_at < now() - make_interval(days => $1)",
        keep_days,
    )
    return int(status.rsplit(" ", 1)[-1])


class Quality:
    """The quality worker's handler; it also owns the alert evaluator's lifetime."""

    def __init__(self, ctx: Any) -> None:
        self._pool: asyncpg.Pool = ctx.pool
        self._accepted: str = ctx.settings.topics.accepted
        self._keep_days: int = ctx.settings.quality.events_keep_days
        self._pruned = -PRUNE_EVERY_S
        self._alerts: asyncio.Task[None] | None = None
        from workers.quality_alerts import run_evaluator

        # Runs as long as the worker task that built this handler (its restarts included).
        owner = asyncio.current_task()
        if owner is not None:
            self._alerts = asyncio.create_task(run_evaluator(ctx, owner), name="quality-alerts")

    async def handle(self, records: list[Record]) -> None:
        await apply_each_or_dead_letter(self._pool, "quality", records, self._apply)

    async def _apply(self, records: list[Record]) -> None:
        facts = [f for f in (fact_of(r, self._accepted) for r in records) if f is not None]
        if not facts:
            return
        async with self._pool.acquire() as conn, conn.transaction():
            await apply_facts(conn, facts)
        if time.monotonic() - self._pruned >= PRUNE_EVERY_S:
            self._pruned = time.monotonic()
            await prune_rejected_messages(self._pool, self._keep_days)
