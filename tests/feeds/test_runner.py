"""The feed runner (`gateway.feeds`) in the session's gateway: a source's items reach the same
receipts, revisions and rejections as an HTTP upload, and its position moves only after
`finish`.

The source here is a scripted one registered for these tests (a list of rows and a log of
what the runner told it); Kafka, PostgreSQL and the gateway's runner are the real ones. The
database and file sources are tested against real servers in their own files, and end to end
in tests/feeds/test_feeds_e2e.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from adapters.feeds import (
    SOURCE_KINDS,
    Backlog,
    FeedConfig,
    ItemResult,
    ReadProblem,
    SourceBatch,
    SourceError,
    SourceKind,
    SourceRecord,
)
from adapters.runtime.metrics import FEED_ITEMS
from gateway.feeds import FeedStore, FeedStoreError
from gateway.runtime import Stack
from tests.builders import document
from tests.conftest import Client, register_hospital

pytestmark = pytest.mark.integration


class ScriptedOptions(msgspec.Struct, forbid_unknown_fields=True):
    script: str


class Scripted:
    """Rows by key, read in key order after the position; what `finish` was told."""

    def __init__(self) -> None:
        self.rows: dict[str, SourceRecord] = {}
        self.finished: list[list[ItemResult]] = []
        self.fail_reads = 0
        self.fail_finishes = 0
        self.reads = 0

    def put(self, key: str, doc: dict[str, Any] | None, *problems: ReadProblem) -> None:
        body = None if doc is None else msgspec.json.encode(doc)
        self.rows[key] = SourceRecord(key=key, document=body, problems=problems)

    async def read(self, position: str | None, limit: int) -> SourceBatch | None:
        self.reads += 1
        if self.fail_reads:
            self.fail_reads -= 1
            raise SourceError("scripted source: host his-db.example:5432 refused the connection")
        keys = sorted(k for k in self.rows if position is None or k > position)[:limit]
        if not keys:
            return None
        return SourceBatch(records=tuple(self.rows[k] for k in keys), position=keys[-1])

    async def finish(self, batch: SourceBatch, results: Sequence[ItemResult]) -> None:
        if self.fail_finishes:
            self.fail_finishes -= 1
            raise SourceError("scripted source: the status write-back failed")
        self.finished.append(list(results))

    async def backlog(self, position: str | None) -> Backlog:
        return Backlog(sum(1 for k in self.rows if position is None or k > position))

    async def close(self) -> None:
        pass


SCRIPTS: dict[str, Scripted] = {}
if "scripted" not in SOURCE_KINDS.names():
    SOURCE_KINDS.register(
        SourceKind(
            name="scripted",
            options=ScriptedOptions,
            build=lambda config: SCRIPTS[config.options["script"]],
        )
    )


async def _feed(stack: Stack, hospitals: list[str], **config: Any) -> tuple[str, Scripted]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    SCRIPTS[name] = Scripted()
    await FeedStore(stack.pool).add(
        FeedConfig(
            name=name,
            kind="scripted",
            hospitals=hospitals,
            options={"script": name},
            poll_interval_s=0.1,
            **config,
        )
    )
    return name, SCRIPTS[name]


async def _until(check: Any, timeout: float = 30.0) -> Any:
    for _ in range(int(timeout / 0.1)):
        if got := await check():
            return got
        await asyncio.sleep(0.1)
    raise AssertionError("not within the time")


async def _row(stack: Stack, name: str) -> Any:
    return await stack.pool.fetchrow("SELECT * FROM feed_sources WHERE name = $1", name)


async def _finished(script: Scripted, count: int) -> list[ItemResult]:
    async def enough() -> list[ItemResult] | None:
        done = [r for batch in script.finished for r in batch]
        return done if len(done) >= count else None

    return list(await _until(enough))


async def test_rows_end_as_receipts_and_the_position_moves_after_finish(
    stack: Stack, hospital: Client
) -> None:
    name, script = await _feed(stack, ["H44010000001"], batch_size=2)
    script.put("001", document("FEED-A1"))
    script.put("002", document("FEED-A2", poscode="12"))  # accepted with a warning
    script.put("003", document("FEED-A3", medfee_sumamt=None))  # rejected
    results = await _finished(script, 3)
    by_key = {r.position: r for r in results}
    assert [by_key[k].status for k in ("001", "002", "003")] == ["accepted", "accepted", "rejected"]
    assert by_key["002"].warnings and not by_key["002"].errors
    assert by_key["003"].errors and by_key["003"].errors[0]["field"].endswith("medfee_sumamt")
    receipt = await stack.pool.fetchrow(
        "SELECT status, revision FROM receipts WHERE receipt_id = $1",
        uuid.UUID(by_key["001"].receipt_id),
    )
    assert receipt["revision"] == 1
    row = await _until(
        lambda: _row_when(stack, name, lambda r: r["position"] == "003" and r["rows_read"] == 3)
    )
    assert (row["accepted"], row["rejected"], row["duplicate"]) == (2, 1, 0)
    assert FEED_ITEMS.labels(name, "accepted")._value.get() == 2
    # two batches of at most two rows: the position was stored after each
    assert [len(batch) for batch in script.finished] == [2, 1]


async def _row_when(stack: Stack, name: str, ok: Any) -> Any:
    row = await _row(stack, name)
    return row if row is not None and ok(row) else None


async def test_a_row_changed_at_the_source_is_the_next_revision_and_a_reread_a_duplicate(
    stack: Stack, hospital: Client
) -> None:
    _, script = await _feed(stack, ["H44010000001"])
    doc = document("FEED-REV")
    script.put("001", doc)
    (first,) = await _finished(script, 1)
    assert (first.status, first.revision) == ("accepted", 1)
    # the HIS updates the row: it comes back after the position with new content
    script.put(
        "002",
        {
            **doc,
            "input": {
                **doc["input"],
                "setlinfo": {**doc["input"]["setlinfo"], "medcasno": "MC-NEW"},
            },
        },
    )
    # and the same content again (a re-export): a duplicate, never a second record
    script.put("003", doc)
    results = await _finished(script, 3)
    assert (results[1].status, results[1].revision, results[1].case_key) == (
        "accepted",
        2,
        first.case_key,
    )
    assert results[2].status == "duplicate"
    count = await stack.pool.fetchval(
        "SELECT count(*) FROM receipts WHERE fixmedins_code = 'H44010000001' AND setl_id = $1",
        "FEED-REV",
    )
    assert count == 2


async def test_another_hospitals_list_and_an_unreadable_row_are_refused_per_record(
    stack: Stack, hospital: Client
) -> None:
    await register_hospital(stack, "H44030000001", "440300")
    _, script = await _feed(stack, ["H44010000001"])
    script.put("001", document("FEED-F1", code="H44030000001", area="440300"))
    script.put(
        "002", None, ReadProblem("column_type", "setlinfo.psn_name", "bytea cannot be read as text")
    )
    script.put("003", document("FEED-F3"))
    results = await _finished(script, 3)
    assert [r.status for r in results] == ["rejected", "rejected", "accepted"]
    assert results[0].errors[0]["rule"] == "FEED_FOREIGN"
    assert "H44010000001" in results[0].errors[0]["message"]
    assert results[1].errors[0]["rule"] == "FEED_COLUMN_TYPE"
    assert results[1].errors[0]["field"] == "setlinfo.psn_name"
    # nothing of the other hospital was stored
    assert not await stack.pool.fetchval("SELECT count(*) FROM receipts WHERE setl_id = 'FEED-F1'")


async def test_a_failing_source_is_retried_and_recorded_and_recovers(
    stack: Stack, hospital: Client
) -> None:
    name, script = await _feed(stack, ["H44010000001"])
    script.fail_reads = 2
    script.put("001", document("FEED-E1"))
    failing = await _until(lambda: _row_when(stack, name, lambda r: r["errors"] >= 1))
    assert "refused the connection" in failing["last_error"]
    assert failing["failing_since"] is not None
    (result,) = await _finished(script, 1)
    assert result.status == "accepted"
    healed = await _until(lambda: _row_when(stack, name, lambda r: r["rows_read"] == 1))
    assert healed["last_error"] is None and healed["failing_since"] is None
    assert healed["errors"] == 2


async def test_a_failed_finish_keeps_the_position_and_the_reread_is_a_duplicate(
    stack: Stack, hospital: Client
) -> None:
    name, script = await _feed(stack, ["H44010000001"])
    script.fail_finishes = 1
    script.put("001", document("FEED-W1"))
    (result,) = await _finished(script, 1)
    # the first finish failed: the batch was read again and its record is the same one
    assert result.status == "duplicate"
    row = await _until(lambda: _row_when(stack, name, lambda r: r["position"] == "001"))
    assert (row["rows_read"], row["duplicate"], row["accepted"]) == (1, 1, 0)
    assert await stack.pool.fetchval("SELECT count(*) FROM receipts WHERE setl_id = 'FEED-W1'") == 1


async def test_a_paused_feed_reads_nothing_until_resumed(stack: Stack, hospital: Client) -> None:
    name, script = await _feed(stack, ["H44010000001"], paused=True)
    script.put("001", document("FEED-P1"))
    await asyncio.sleep(1.0)
    assert script.reads == 0
    assert await FeedStore(stack.pool).set_paused(name, False)
    (result,) = await _finished(script, 1)
    assert result.status == "accepted"


async def test_a_feed_of_an_unregistered_hospital_or_kind_is_refused_naming_the_field(
    stack: Stack,
) -> None:
    store = FeedStore(stack.pool)
    with pytest.raises(FeedStoreError, match=r"hospitals: H44019999999 is not a registered"):
        await store.add(
            FeedConfig(
                name="bad-1", kind="scripted", hospitals=["H44019999999"], options={"script": "x"}
            )
        )
    with pytest.raises(FeedStoreError, match=r"kind: unknown feed kind 'oracle'"):
        await store.add(FeedConfig(name="bad-2", kind="oracle", hospitals=["H44010000001"]))
    with pytest.raises(FeedStoreError, match=r"options: .*script"):
        await store.add(FeedConfig(name="bad-3", kind="scripted", hospitals=["H44010000001"]))


async def test_each_feed_has_its_series_on_metrics(
    stack: Stack, hospital: Client, ops: Client
) -> None:
    """Rows read and how they ended, errors, backlog, lag, last poll and up: one series each
    per feed, as Prometheus scrapes them."""
    name, script = await _feed(stack, ["H44010000001"])
    script.fail_reads = 1
    script.put("001", document("FEED-M1"))
    script.put("002", document("FEED-M2", medfee_sumamt=None))
    await _finished(script, 2)
    await _until(lambda: _row_when(stack, name, lambda r: r["backlog_items"] == 0))
    status, text, _ = await ops.request("GET", "/metrics")
    assert status == 200
    body = text.decode() if isinstance(text, bytes) else str(text)
    for line in (
        f'dipgw_feed_items_total{{feed="{name}",outcome="read"}} 2.0',
        f'dipgw_feed_items_total{{feed="{name}",outcome="accepted"}} 1.0',
        f'dipgw_feed_items_total{{feed="{name}",outcome="rejected"}} 1.0',
        f'dipgw_feed_errors_total{{feed="{name}"}} 1.0',
        f'dipgw_feed_backlog_items{{feed="{name}"}} 0.0',
        f'dipgw_feed_lag_seconds{{feed="{name}"}} 0.0',
        f'dipgw_feed_up{{feed="{name}"}} 1.0',
    ):
        assert line in body, line
    assert f'dipgw_feed_last_poll_timestamp_seconds{{feed="{name}"}}' in body
