"""Feeds the gateway pulls: a hospital's intermediate database, folder or SFTP account.

A `FeedRunner` in each gateway process runs every configured feed (`feed_sources`) that no
other process runs: one PostgreSQL advisory lock per feed, held on a connection of the
runner's own, so a process that dies frees its feeds at once and a second process takes them
over. For each batch a source reads, the runner

1. checks every item with the gateway's checker (a file in the file workers, off the loop),
2. refuses the lists of institutions the feed does not carry (FEED_FOREIGN),
3. hands the rest to `gateway.intake.take` — the HTTP upload's own path: receipts,
   idempotency, revisions, the rejected topic, the quality figures — and takes again, with
   backoff, whatever Kafka or PostgreSQL could not take yet,
4. tells the source how each item ended (`finish`: status write-back, done/ or failed/),
5. and only then stores the source's new position.

Dying anywhere before 5 reads the batch again: the same content comes back `duplicate`,
changed content is the next revision, so the end state is exactly-once per record.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
from tenacity import AsyncRetrying, RetryCallState, wait_exponential

from adapters.feeds import (
    SOURCE_KINDS,
    FeedConfig,
    FeedSource,
    ItemResult,
    ReadProblem,
    SourceBatch,
    SourceError,
)
from adapters.runtime.clock import Clock, system_clock
from adapters.runtime.errors import DipgwError, describe_error
from adapters.runtime.logs import get_logger
from adapters.runtime.metrics import (
    FEED_BACKLOG,
    FEED_ERRORS,
    FEED_ITEMS,
    FEED_LAG,
    FEED_LAST_POLL,
    FEED_UP,
)
from contracts import Problem, shown_or_none
from gateway import refusals
from gateway.accounts import Registry
from gateway.checks import Checked, Rejected
from gateway.ingest import consume_outcome
from gateway.intake import Outcome, foreign_positions, take
from gateway.services import Services

__all__ = ["FeedRow", "FeedRunner", "FeedStore", "FeedStoreError", "feed_status", "problem_of"]

log = get_logger("dipgw.feeds")

_PROBLEMS: dict[str, refusals.Refusal] = {
    "column_type": refusals.FEED_COLUMN_TYPE,
    "column_missing": refusals.FEED_COLUMN_MISSING,
    "encoding": refusals.FEED_ENCODING,
    "too_large": refusals.FEED_TOO_LARGE,
    "unreadable": refusals.FEED_UNREADABLE,
    "unknown_format": refusals.FEED_FORMAT,
}

_SLICE = 32
"""Database rows checked between two turns of the event loop (as `check_sliced`)."""


def problem_of(problem: ReadProblem) -> Problem:
    """A source's read problem as the catalogued refusal an integrator looks up."""
    return _PROBLEMS[problem.kind].problem(field=problem.field, detail=problem.detail)


class FeedStoreError(DipgwError, ValueError):
    """A feed configuration that cannot be stored: each problem names its field."""


# -- the feed_sources table ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedRow:
    config: FeedConfig
    origin: str
    position: str | None
    state: dict[str, Any]


class FeedStore:
    """The configured feeds and what the runners last saw of them (`feed_sources`)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, config: FeedConfig, *, origin: str = "cli", replace: bool = False) -> None:
        """Store a feed after checking it whole (kind, options, hospitals registered).

        Re-adding (`replace`) changes its configuration and keeps its position and counters;
        a feed declared in settings is re-declared at every start."""
        problems = SOURCE_KINDS.check(config)
        known = {
            row["fixmedins_code"]
            for row in await self._pool.fetch(
                "SELECT fixmedins_code FROM hospitals WHERE fixmedins_code = ANY($1)",
                config.hospitals,
            )
        }
        problems += [
            f"hospitals: {code} is not a registered hospital (dipgw hospitals add)"
            for code in config.hospitals
            if code not in known
        ]
        if problems:
            raise FeedStoreError(f"feed {config.name!r}:\n  " + "\n  ".join(problems))
        stored = msgspec.json.encode(_without_state(config)).decode()
        conflict = (
            """DO UPDATE SET kind = EXCLUDED.kind, hospitals = EXCLUDED.hospitals,
                   config = EXCLUDED.config, origin = EXCLUDED.origin, updated_at = now()"""
            if replace
            else "DO NOTHING"
        )
        done = await self._pool.execute(
            f"""INSERT INTO feed_sources (name, kind, hospitals, config, origin, paused)
                VALUES ($1, $2, $3, $4::jsonb, $5, $6)
                ON CONFLICT (name) {conflict}""",
            config.name,
            config.kind,
            config.hospitals,
            stored,
            origin,
            config.paused,
        )
        if done.endswith(" 0"):
            raise FeedStoreError(f"feed {config.name!r} exists (use --replace to change it)")

    async def remove(self, name: str) -> bool:
        return (
            await self._pool.execute("DELETE FROM feed_sources WHERE name = $1", name)
        ).endswith(" 1")

    async def set_paused(self, name: str, paused: bool) -> bool:
        done = await self._pool.execute(
            "UPDATE feed_sources SET paused = $2, updated_at = now() WHERE name = $1",
            name,
            paused,
        )
        return done.endswith(" 1")

    async def rows(self, name: str | None = None) -> list[FeedRow]:
        records = await self._pool.fetch(
            """SELECT * FROM feed_sources WHERE $1::text IS NULL OR name = $1 ORDER BY name""",
            name,
        )
        return [_row(record) for record in records]

    async def commit(
        self, name: str, position: str | None, counts: dict[str, int], at: datetime
    ) -> None:
        """A batch is durable and finished at its source: its position and counts, at once."""
        await self._pool.execute(
            """UPDATE feed_sources SET
                   position = COALESCE($2, position),
                   rows_read = rows_read + $3, accepted = accepted + $4,
                   duplicate = duplicate + $5, rejected = rejected + $6,
                   last_batch_at = $7, last_poll_at = $7, last_error = NULL,
                   failing_since = NULL
               WHERE name = $1""",
            name,
            position,
            counts["read"],
            counts["accepted"],
            counts["duplicate"],
            counts["rejected"],
            at,
        )

    async def polled(
        self, name: str, at: datetime, backlog: int | None, oldest: datetime | None
    ) -> None:
        await self._pool.execute(
            """UPDATE feed_sources SET last_poll_at = $2, backlog_items = $3,
                   backlog_oldest = $4, last_error = NULL, failing_since = NULL
               WHERE name = $1""",
            name,
            at,
            backlog,
            oldest,
        )

    async def failed(self, name: str, error: str, at: datetime) -> None:
        await self._pool.execute(
            """UPDATE feed_sources SET errors = errors + 1, last_error = $2,
                   failing_since = COALESCE(failing_since, $3)
               WHERE name = $1""",
            name,
            error,
            at,
        )


_STATE = (
    "rows_read",
    "accepted",
    "duplicate",
    "rejected",
    "errors",
    "backlog_items",
    "backlog_oldest",
    "last_poll_at",
    "last_batch_at",
    "last_error",
    "failing_since",
    "created_at",
    "updated_at",
)


def _without_state(config: FeedConfig) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(config)
    out.pop("paused", None)  # the row's own column: an operator's pause outlives a redeclaration
    return out


def _row(record: Any) -> FeedRow:
    config = msgspec.json.decode(record["config"], type=FeedConfig)
    config = msgspec.structs.replace(config, paused=record["paused"])
    return FeedRow(
        config=config,
        origin=record["origin"],
        position=record["position"],
        state={key: record[key] for key in _STATE},
    )


def feed_status(row: FeedRow) -> dict[str, Any]:
    """A feed's state as `dipgw feeds status` and /ops show it: counts since it was added, its
    backlog at the last poll, moments in the display zone, the last error (never a secret:
    sources name host and table, not credentials)."""
    state = row.state
    health = "paused" if row.config.paused else ("failing" if state["last_error"] else "ok")
    return {
        "name": row.config.name,
        "kind": row.config.kind,
        "hospitals": row.config.hospitals,
        "state": health,
        **{k: state[k] for k in ("rows_read", "accepted", "duplicate", "rejected", "errors")},
        "backlog_items": state["backlog_items"],
        "backlog_oldest": shown_or_none(state["backlog_oldest"]),
        "last_poll_at": shown_or_none(state["last_poll_at"]),
        "last_batch_at": shown_or_none(state["last_batch_at"]),
        "failing_since": shown_or_none(state["failing_since"]),
        "last_error": state["last_error"],
    }


# -- the runner -----------------------------------------------------------------------------


class _NotYetDurable(DipgwError):
    """Some items could not be taken yet (Kafka or PostgreSQL away): taken again later."""


@dataclass
class _Running:
    config: FeedConfig
    task: asyncio.Task[None]
    stop: asyncio.Event


class FeedRunner:
    """Runs the configured feeds this process holds the lock of, until `stop`."""

    def __init__(
        self,
        services: Services,
        registry: Registry,
        dsn: str,
        *,
        declared: Sequence[FeedConfig] = (),
        clock: Clock = system_clock,
        file_max_records: int = 100_000,
        reload_s: float = 5.0,
        backlog_every_s: float = 10.0,
    ) -> None:
        self._services = services
        self._store = FeedStore(services.pool)
        self._registry = registry
        self._dsn = dsn
        self._declared = list(declared)
        self._clock = clock
        self._file_max_records = file_max_records
        self._reload_s = reload_s
        self._backlog_every_s = backlog_every_s
        self._running: dict[str, _Running] = {}
        self._locks: asyncpg.Connection | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Start and stop feeds as the table changes, until `stop`; then let each finish the
        batch it is on (its position is stored only if the batch ended)."""
        for config in self._declared:
            try:
                await self._store.add(config, origin="settings", replace=True)
            except FeedStoreError as exc:
                log.error("feed.declared_refused", feed=config.name, problems=str(exc))
        try:
            while not stop.is_set():
                try:
                    await self._reconcile()
                except Exception as exc:  # PostgreSQL away: the feeds keep running
                    log.warning("feed.reconcile_failed", error=describe_error(exc))
                    await self._drop_locks()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._reload_s)
        finally:
            await self._stop_all()
            await self._drop_locks()

    async def _reconcile(self) -> None:
        rows = {row.config.name: row for row in await self._store.rows()}
        for name, running in list(self._running.items()):
            row = rows.get(name)
            if row is None or row.config != running.config or running.task.done():
                await self._stop_one(name)
        for name, row in rows.items():
            if name in self._running:
                continue
            if not await self._lock(name):
                continue  # another gateway process runs it
            feed_stop = asyncio.Event()
            task = asyncio.create_task(self._run_feed(row.config, feed_stop), name=f"feed:{name}")
            self._running[name] = _Running(row.config, task, feed_stop)
            log.info("feed.started", feed=name, kind=row.config.kind)

    async def _lock(self, name: str) -> bool:
        if self._locks is None or self._locks.is_closed():
            self._locks = await asyncpg.connect(self._dsn)
        held: bool = await self._locks.fetchval(
            "SELECT pg_try_advisory_lock(hashtext('dipgw-feed'), hashtext($1))", name
        )
        return held

    async def _unlock(self, name: str) -> None:
        if self._locks is not None and not self._locks.is_closed():
            with contextlib.suppress(Exception):
                await self._locks.execute(
                    "SELECT pg_advisory_unlock(hashtext('dipgw-feed'), hashtext($1))", name
                )

    async def _drop_locks(self) -> None:
        """The lock connection is gone or going: without it no feed is ours any more."""
        await self._stop_all()
        if self._locks is not None:
            with contextlib.suppress(Exception):
                await self._locks.close()
            self._locks = None

    async def _stop_one(self, name: str) -> None:
        running = self._running.pop(name)
        running.stop.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
            await asyncio.wait_for(running.task, 30)
        FEED_UP.labels(name).set(0)
        await self._unlock(name)
        log.info("feed.stopped", feed=name)

    async def _stop_all(self) -> None:
        for name in list(self._running):
            await self._stop_one(name)

    # -- one feed ------------------------------------------------------------------------

    async def _run_feed(self, config: FeedConfig, stop: asyncio.Event) -> None:
        feed = _Feed(self, config)
        try:
            await feed.run(stop)
        finally:
            await feed.close()


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when told to stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@dataclass(frozen=True, slots=True)
class _Ready:
    """A batch read and checked, waiting for its turn to be taken."""

    batch: SourceBatch
    checked: list[Checked | Rejected]
    received_at: datetime
    read_s: float
    check_s: float


class _Feed:
    """One feed's loop: read → check → take → finish → commit, with backoff on errors."""

    def __init__(self, runner: FeedRunner, config: FeedConfig) -> None:
        self.runner = runner
        self.config = config
        self.name = config.name
        self.source: FeedSource | None = None
        self._backlog_at = 0.0
        self._allowed: dict[str, str | None] | None = None
        # A cursor source's next batch, read and checked while this one goes to Kafka.
        self._prefetch: tuple[str, asyncio.Task[_Ready | None]] | None = None

    async def close(self) -> None:
        self._drop_prefetch()
        if self.source is not None:
            with contextlib.suppress(Exception):
                await self.source.close()
            self.source = None

    async def run(self, stop: asyncio.Event) -> None:
        async def on_error(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            FEED_ERRORS.labels(self.name).inc()
            FEED_UP.labels(self.name).set(0)
            text = str(error) if isinstance(error, SourceError | DipgwError) else ""
            described = f"{describe_error(error)}: {text}" if text else describe_error(error)
            log.warning(
                "feed.poll_failed",
                feed=self.name,
                error=described,
                retry_in_s=round(state.upcoming_sleep, 1),
            )
            await self._record_failure(described)

        while not stop.is_set():
            retrying = AsyncRetrying(
                wait=wait_exponential(multiplier=0.5, max=60),
                before_sleep=on_error,
                sleep=lambda seconds: _pause(stop, seconds),
                retry=lambda state: not stop.is_set() and _retryable(state),
                reraise=True,
            )
            more = False
            async for attempt in retrying:
                with attempt:
                    more = await self.poll(stop)
            if not more:
                await _pause(stop, self.config.poll_interval_s)

    async def _record_failure(self, described: str) -> None:
        with contextlib.suppress(Exception):
            await self.runner._store.failed(self.name, described, self.runner._clock())

    async def poll(self, stop: asyncio.Event) -> bool:
        """One batch made durable and finished; False when there was nothing to read."""
        runner = self.runner
        (row,) = await runner._store.rows(self.name) or [None]
        if row is None or row.config.paused:
            self._drop_prefetch()
            return False
        if self.source is None:
            self.source = SOURCE_KINDS.build(self.config)
        if self._allowed is None:
            self._allowed = await self._institutions()
        ready = await self._next(self.source, row.position)
        now = runner._clock()
        FEED_LAST_POLL.labels(self.name).set(time.time())
        FEED_UP.labels(self.name).set(1)
        if ready is None:
            await self._backlog(row.position, now, force=True)
            return False
        batch = ready.batch
        if batch.position is not None:
            # A cursor source: read and check the next batch while this one goes to Kafka
            # (the checks run while this batch waits for acknowledgements and commits).
            self._prefetch = (
                batch.position,
                asyncio.create_task(self._prepare(self.source, batch.position)),
            )
        started = time.perf_counter()
        results = await self._take(ready, stop)
        if results is None:  # told to stop before every item was durable: read again later
            return False
        take_s = time.perf_counter() - started
        await self.source.finish(batch, results)
        finish_s = time.perf_counter() - started - take_s
        counts = {"read": len(results), "accepted": 0, "duplicate": 0, "rejected": 0}
        for result in results:
            counts[result.status] += 1
        await runner._store.commit(self.name, batch.position, counts, runner._clock())
        for outcome, count in counts.items():
            if count:
                FEED_ITEMS.labels(self.name, outcome).inc(count)
        log.info(
            "feed.batch",
            feed=self.name,
            **counts,
            read_ms=round(ready.read_s * 1000, 1),
            check_ms=round(ready.check_s * 1000, 1),
            take_ms=round(take_s * 1000, 1),
            finish_ms=round(finish_s * 1000, 1),
        )
        await self._backlog(batch.position or row.position, now, force=False)
        return True

    async def _next(self, source: FeedSource, position: str | None) -> _Ready | None:
        """The batch after `position`, checked: the one prepared ahead if it was read from
        there."""
        if self._prefetch is not None:
            ahead, task = self._prefetch
            self._prefetch = None
            if ahead == position:
                return await task
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        return await self._prepare(source, position)

    async def _prepare(self, source: FeedSource, position: str | None) -> _Ready | None:
        started = time.perf_counter()
        batch = await source.read(position, self.config.batch_size)
        if batch is None:
            return None
        read_s = time.perf_counter() - started
        received_at = self.runner._clock()
        checked = await self._check(batch, received_at)
        return _Ready(batch, checked, received_at, read_s, time.perf_counter() - started - read_s)

    def _drop_prefetch(self) -> None:
        if self._prefetch is not None:
            _, task = self._prefetch
            self._prefetch = None
            task.cancel()
            task.add_done_callback(consume_outcome)

    async def _institutions(self) -> dict[str, str | None]:
        allowed: dict[str, str | None] = {}
        for code in self.config.hospitals:
            hospital = await self.runner._registry.hospital(code)
            if hospital is None:
                raise SourceError(f"hospital {code} of feed {self.name} is not registered")
            allowed[code] = hospital.admdvs
        return allowed

    async def _backlog(self, position: str | None, now: datetime, *, force: bool) -> None:
        if self.source is None:
            return
        if not force and time.monotonic() - self._backlog_at < self.runner._backlog_every_s:
            return
        self._backlog_at = time.monotonic()
        backlog = await self.source.backlog(position)
        FEED_BACKLOG.labels(self.name).set(backlog.items)
        lag = (now - backlog.oldest_at).total_seconds() if backlog.oldest_at else 0.0
        FEED_LAG.labels(self.name).set(max(0.0, lag))
        await self.runner._store.polled(self.name, now, backlog.items, backlog.oldest_at)

    # -- checking and taking -------------------------------------------------------------

    async def _check(self, batch: SourceBatch, received_at: datetime) -> list[Checked | Rejected]:
        services = self.runner._services
        if batch.file is not None:
            file = batch.file
            if file.problems:
                return [Rejected("$", [problem_of(p) for p in file.problems])]
            try:
                return await services.files.check(
                    file.body,
                    file.format,
                    received_at,
                    max_records=self.runner._file_max_records,
                )
            except Rejected as whole:
                return [whole]
        checked: list[Checked | Rejected] = []
        for start in range(0, len(batch.records), _SLICE):
            if start:
                await asyncio.sleep(0)
            for record in batch.records[start : start + _SLICE]:
                if record.problems or record.document is None:
                    problems = [problem_of(p) for p in record.problems] or [
                        refusals.FEED_UNREADABLE.problem(detail="no document")
                    ]
                    checked.append(Rejected(record.key, problems))
                else:
                    checked.append(
                        services.checker.check_raw(record.document, record.key, received_at)
                    )
        return checked

    async def _take_chunks(
        self,
        todo: list[int],
        checked: list[Checked | Rejected],
        outcomes: list[Outcome | None],
        sender: str,
        received_at: datetime,
    ) -> None:
        gate = asyncio.Semaphore(_CHUNKS_AT_ONCE)

        async def one(chunk: list[int]) -> None:
            async with gate:
                taken = await take(
                    self.runner._services, sender, [checked[i] for i in chunk], received_at
                )
            for i, outcome in zip(chunk, taken, strict=True):
                outcomes[i] = outcome

        await asyncio.gather(*(one(chunk) for chunk in _chunks(todo)))

    async def _take(self, ready: _Ready, stop: asyncio.Event) -> list[ItemResult] | None:
        batch, checked, received_at = ready.batch, ready.checked, ready.received_at
        assert self._allowed is not None
        if batch.file is not None and [c.position for c in checked] == ["$"]:
            # A file refused whole (unreadable, too large, …) is the file's verdict, as an
            # upload refused whole is the request's: no list was read, none is counted.
            (whole,) = checked
            assert isinstance(whole, Rejected)
            return [_result(Outcome("$", None, errors=whole.errors))]
        foreign = set(foreign_positions(self._allowed, checked))
        outcomes: list[Outcome | None] = [None] * len(checked)
        for i, item in enumerate(checked):
            if item.position in foreign:
                problem = refusals.FEED_FOREIGN.problem(hospitals="、".join(self._allowed))
                key = item.upload.case_key if isinstance(item, Checked) else item.case_key
                outcomes[i] = Outcome(item.position, key, errors=[problem])
        sender = self.config.hospitals[0]
        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=0.2, max=10),
            sleep=lambda seconds: _pause(stop, seconds),
            retry=lambda state: not stop.is_set() and _retryable(state),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    todo = [i for i, o in enumerate(outcomes) if o is None or o.unavailable]
                    await self._take_chunks(todo, checked, outcomes, sender, received_at)
                    if any(o is not None and o.unavailable for o in outcomes):
                        raise _NotYetDurable(f"{sum(1 for o in outcomes if o and o.unavailable)}")
        except _NotYetDurable:
            if stop.is_set():
                return None
            raise
        return [_result(o) for o in outcomes if o is not None]


_CHUNK = 250
"""Items handed to the ingestor at once: a file of 100,000 lines is a hundred reservations
and Kafka batches, four at a time, not one statement of 100,000 rows."""
_CHUNKS_AT_ONCE = 4


def _retryable(state: RetryCallState) -> bool:
    if state.outcome is None or not state.outcome.failed:
        return False
    error = state.outcome.exception()
    return isinstance(error, Exception) and not isinstance(error, asyncio.CancelledError)


def _chunks(todo: list[int]) -> list[list[int]]:
    return [todo[start : start + _CHUNK] for start in range(0, len(todo), _CHUNK)]


def _result(outcome: Outcome) -> ItemResult:
    body = outcome.as_json()
    for key in ("errors", "warnings"):
        if key in body:
            body[key] = msgspec.to_builtins(body[key])
    return msgspec.convert(body, ItemResult)
