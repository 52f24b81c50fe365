"""The quality worker: rollups from a real run, exact when Kafka redelivers (replay, duplicates
in a batch, two consumers at once, a crash mid-transaction)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from contracts import LAG_BUCKETS, LAG_EDGES_H, lag_bucket, lag_percentile
from gateway.runtime import Stack
from tests.builders import new_code, push_mix, wait_received, wait_stored
from tests.clock import now as clock_now
from tests.conftest import register_hospital
from workers._deadletter import REPLAY_HEADER, apply_each_or_dead_letter, replay_header
from workers.quality import Fact, apply_facts, fact_of, prune_rejected_messages

# -- pure ---------------------------------------------------------------------------------


def test_lag_buckets_put_the_timeliness_edge_on_a_bucket_edge() -> None:
    assert lag_bucket(0) == 0 and lag_bucket(24) == 0 and lag_bucket(24.01) == 1
    assert lag_bucket(7 * 24) == 6  # uploaded exactly 7 days after discharge: still timely
    assert lag_bucket(7 * 24 + 0.1) == 7
    assert lag_bucket(10_000) == LAG_BUCKETS - 1
    assert all(LAG_EDGES_H[d - 1] == 24 * d for d in range(1, 16))


def test_lag_percentiles_interpolate_inside_a_bucket_and_merge_by_adding() -> None:
    one, other = [0] * LAG_BUCKETS, [0] * LAG_BUCKETS
    one[0], other[2] = 50, 50  # half within a day, half on day 3
    merged = [a + b for a, b in zip(one, other, strict=True)]
    assert lag_percentile(merged, 0.5) == 24.0
    assert lag_percentile(merged, 0.25) == 12.0
    assert 48 < (lag_percentile(merged, 0.9) or 0) <= 72
    assert lag_percentile([0] * LAG_BUCKETS, 0.5) is None
    late = [0] * LAG_BUCKETS
    late[-1] = 3
    assert lag_percentile(late, 0.5) == LAG_EDGES_H[-1]  # a floor in the open bucket


def _rejected_record(
    document: bytes, offset: int = 7, headers: list[tuple[str, bytes]] | None = None
) -> ConsumerRecord[bytes, bytes]:
    value = (
        b'{"fixmedins_code":"H44010000001","received_at":"2026-11-24T09:30:00+08:00",'
        b'"errors":[{"rule":"DEC_SHAPE","field":"$","dimension":"\xe8\xa7\x84\xe8\x8c\x83'
        b'\xe6\x80\xa7","severity":"reject","message":"m","message_en":"m"}],'
        b'"document":' + document + b"}"
    )
    return ConsumerRecord(
        "rejected",
        0,
        offset,
        0,
        0,
        None,
        value,
        None,
        0,
        len(value),
        headers or [],  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "document",
    [
        b"[1,2,3]",  # a batch body that was not {"records": [...]}: seen skipped (issue 11)
        b'"text"',
        b"12",
        b"null",
        b'{"mdtrtarea_admvs": 440100, "input": []}',
        b'{"input": {"setlinfo": {"dscg_time": ["x"]}}}',
        b'{"mdtrtarea_admvs": "440100", "input": {"setlinfo": {"dscg_time": "nonsense"}}}',
    ],
)
def test_every_rejection_is_counted_whatever_its_document(document: bytes) -> None:
    """A rejected upload counts in the rollups however broken the list was: only the
    rejected-topic message itself must decode."""
    fact = fact_of(_rejected_record(document), "accepted")
    assert fact is not None
    assert (fact.accepted, fact.fixmedins_code, fact.lag_hours) == (False, "H44010000001", None)
    assert fact.findings == [("DEC_SHAPE", "reject", "规范性")]


def test_a_rejection_keeps_its_region_and_lag_when_the_document_shows_them() -> None:
    document = (
        b'{"mdtrtarea_admvs":"440100",'
        b'"input":{"setlinfo":{"dscg_time":"2026-11-23 09:30:00","age":{"x":1}}}}'
    )
    fact = fact_of(_rejected_record(document), "accepted")
    assert fact is not None and fact.region == "440100" and fact.lag_hours == 24.0


# -- against the real stack ---------------------------------------------------------------

_COLUMNS = "received, accepted, rejected, warned, revisions, resubmissions, lag_hist"


async def _rollups(pool: asyncpg.Pool, code: str) -> dict[str, Any]:
    daily = await pool.fetch(
        f"SELECT day, city, {_COLUMNS} FROM quality_daily WHERE fixmedins_code = $1", code
    )
    rules = await pool.fetch(
        """SELECT rule, severity, dimension, findings, records, examples
           FROM quality_rule_daily WHERE fixmedins_code = $1 ORDER BY rule, severity""",
        code,
    )
    dims = await pool.fetch(
        """SELECT dimension, severity, records, findings FROM quality_dimension_daily
           WHERE fixmedins_code = $1 ORDER BY dimension, severity""",
        code,
    )
    return {
        "daily": [dict(r) for r in daily],
        "rules": [dict(r) for r in rules],
        "dims": [dict(r) for r in dims],
    }


async def _replay(stack: Stack, code: str) -> list[Any]:
    """Every message of `code` on the accepted and rejected topics, read again from Kafka."""
    topics = [stack.settings.topics.accepted, stack.settings.topics.rejected]
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [
            TopicPartition(t, p) for t in topics for p in range(stack.settings.topics.partitions)
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in parts])

        while await behind():
            batch = await consumer.getmany(timeout_ms=500)
            mine = code.encode()
            out += [r for rs in batch.values() for r in rs if (r.key or b"").startswith(mine)]
        return out
    finally:
        await consumer.stop()


@pytest.mark.integration
async def test_rollups_from_a_real_run_are_exact_and_replays_change_nothing(
    stack: Stack,
) -> None:
    code = new_code()
    client = await register_hospital(stack, code, "440100")
    ids = await push_mix(client, code)
    for receipt in ids["accepted"]:
        await wait_stored(client, receipt)
    await wait_received(stack.pool, code, 9)
    await asyncio.sleep(0.5)  # nothing more may arrive
    before = await _rollups(stack.pool, code)

    (daily,) = before["daily"]
    assert daily["city"] == "440100"
    assert (daily["received"], daily["accepted"], daily["rejected"]) == (9, 7, 2)
    assert (daily["warned"], daily["revisions"], daily["resubmissions"]) == (2, 1, 1)
    assert sum(daily["lag_hist"]) == 9  # every list carries its discharge time
    rules = {(r["rule"], r["severity"]): r for r in before["rules"]}
    assert set(rules) == {("REQ_FIELD", "reject"), ("FMT_POSCODE", "warn")}
    assert rules["REQ_FIELD", "reject"]["records"] == 2
    assert rules["REQ_FIELD", "reject"]["dimension"] == "完整性"
    assert all(e.startswith("rejected:") for e in rules["REQ_FIELD", "reject"]["examples"])
    assert set(rules["FMT_POSCODE", "warn"]["examples"]) <= set(ids["accepted"])
    assert [(d["dimension"], d["severity"], d["records"]) for d in before["dims"]] == [
        ("完整性", "reject", 2),
        ("规范性", "warn", 2),
    ]

    # Redelivery: the same messages read again from Kafka, applied again (as after a crash
    # before the commit), twice in one batch and by two consumers at once, add nothing.
    records = await _replay(stack, code)
    assert len(records) == 9
    facts = [f for f in (fact_of(r, stack.settings.topics.accepted) for r in records) if f]
    assert len(facts) == 9

    async def apply(batch: list[Fact]) -> int:
        async with stack.pool.acquire() as conn, conn.transaction():
            return await apply_facts(conn, batch)

    counted = await asyncio.gather(apply(facts + facts), apply(list(reversed(facts))))
    assert counted == [0, 0]
    assert await _rollups(stack.pool, code) == before


@pytest.mark.integration
async def test_a_batch_rolled_back_midway_is_counted_once_when_redelivered(
    stack: Stack,
) -> None:
    code = new_code()
    now = clock_now()
    facts = [
        Fact(
            key=f"accepted:{uuid.uuid4()}",
            ref=str(uuid.uuid4()),
            fixmedins_code=code,
            region="440300",
            received_at=now,
            accepted=True,
            case_key=f"{code}:S{n}",
            lag_hours=30.0,
            findings=[("FMT_POSCODE", "warn", "规范性")] if n == 0 else [],
        )
        for n in range(4)
    ]

    class Crash(Exception):
        pass

    with pytest.raises(Crash):
        async with stack.pool.acquire() as conn, conn.transaction():
            assert await apply_facts(conn, facts) == 4
            raise Crash  # e.g. the process dies before the offsets are committed
    assert (await _rollups(stack.pool, code))["daily"] == []

    async with stack.pool.acquire() as conn, conn.transaction():
        assert await apply_facts(conn, facts) == 4
    async with stack.pool.acquire() as conn, conn.transaction():
        assert await apply_facts(conn, facts[1:] + facts[:2]) == 0
    (daily,) = (await _rollups(stack.pool, code))["daily"]
    assert daily["city"] == "440300"  # not registered: the treating region's city
    assert (daily["received"], daily["accepted"], daily["warned"]) == (4, 4, 1)
    assert daily["lag_hist"][1] == 4  # 30 h → the (24 h, 48 h] bucket
    last = await stack.pool.fetchval(
        "SELECT last_seen FROM quality_hospitals WHERE fixmedins_code = $1", code
    )
    assert abs(last - now) < timedelta(seconds=1)


# -- the /ops message browser and replays ---------------------------------------------------


def test_a_replayed_copy_counts_as_its_original_and_is_kept_under_its_position() -> None:
    """A dead letter replayed from /ops arrives at a new offset with the original's position
    in its header: counted and kept as the original, so a second copy adds nothing."""
    original = fact_of(_rejected_record(b'{"input": {}}'), "accepted")
    copy = fact_of(
        _rejected_record(
            b'{"input": {}}', 99, [(REPLAY_HEADER, replay_header("quality", "rejected", 0, 7))]
        ),
        "accepted",
    )
    assert original is not None and copy is not None
    assert copy.key == original.key == "rejected:rejected:0:7"
    assert copy.kept is not None and (copy.kept.topic, copy.kept.partition, copy.kept.offset) == (
        "rejected",
        0,
        7,
    )
    assert b"DEC_SHAPE" in copy.kept.errors and copy.kept.document == b'{"input": {}}'
    plain = fact_of(_rejected_record(b'{"input": {}}', 99), "accepted")
    assert plain is not None and plain.key == "rejected:rejected:0:99"


async def test_a_replayed_copy_reaches_only_the_worker_that_dead_lettered_it() -> None:
    """The other workers of the topic applied the original: they skip the copy."""
    for_sink = _rejected_record(b"null", 8, [(REPLAY_HEADER, b"sink/rejected/0/1")])
    for_quality = _rejected_record(b"null", 9, [(REPLAY_HEADER, b"quality/rejected/0/2")])
    forged = _rejected_record(b"null", 10, [(REPLAY_HEADER, b"not a position")])
    plain = _rejected_record(b"null", 11)
    applied: list[int] = []

    async def apply(records: list[ConsumerRecord[bytes, bytes]]) -> None:
        applied.extend(r.offset for r in records)

    pool: Any = None  # nothing fails: no dead letter is written
    assert (
        await apply_each_or_dead_letter(
            pool, "quality", [for_sink, for_quality, forged, plain], apply
        )
        == 0
    )
    assert applied == [9, 11]
    applied.clear()
    await apply_each_or_dead_letter(pool, "quality", [for_sink], apply)
    assert applied == []  # an empty batch is not applied at all


def test_the_gateway_writes_the_header_the_workers_read() -> None:
    from gateway.ops.messages import REPLAY_HEADER as WRITTEN

    assert WRITTEN == REPLAY_HEADER


@pytest.mark.integration
async def test_rejected_lists_are_kept_masked_once_and_pruned(stack: Stack) -> None:
    code = new_code()
    client = await register_hospital(stack, code, "440100")
    await push_mix(client, code)
    await wait_received(stack.pool, code, 9)
    rows = await stack.pool.fetch(
        """SELECT topic, city, rules, errors, document, case_key FROM rejected_messages
           WHERE fixmedins_code = $1 ORDER BY case_key""",
        code,
    )
    assert [r["case_key"] for r in rows] == [f"{code}:QR0", f"{code}:QR1"]
    for row in rows:
        assert row["topic"] == stack.settings.topics.rejected and row["city"] == "440100"
        assert row["rules"] == ["REQ_FIELD"] and "REQ_FIELD" in row["errors"]
        assert '"setl_id"' in row["document"] and "张三" not in row["document"]
    # Applied again (a redelivery): kept once.
    records = [r for r in await _replay(stack, code) if r.topic == stack.settings.topics.rejected]
    facts = [f for f in (fact_of(r, stack.settings.topics.accepted) for r in records) if f]
    async with stack.pool.acquire() as conn, conn.transaction():
        assert await apply_facts(conn, facts) == 0
    count = "SELECT count(*) FROM rejected_messages WHERE fixmedins_code = $1"
    assert await stack.pool.fetchval(count, code) == 2
    # Bounded retention: older than the kept days, gone; younger, kept.
    await stack.pool.execute(
        """UPDATE rejected_messages SET kept_at = now() - interval '31 days'
           WHERE fixmedins_code = $1 AND case_key = $2""",
        code,
        f"{code}:QR0",
    )
    assert await prune_rejected_messages(stack.pool, 30) >= 1
    assert await stack.pool.fetchval(count, code) == 1
