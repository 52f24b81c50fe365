"""The workers a process can run, by name: what each consumes and how it handles a batch.

`dipgw up --workers a,b` and the tests pick from here; adding a worker is adding a spec.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from adapters.runtime.clock import Clock, system_clock
from adapters.runtime.settings import Settings
from workers._runner import Handler
from workers.grouping import Grouper
from workers.quality import Quality
from workers.scored_sink import ScoredSink
from workers.scoring import Scorer
from workers.sink import Sink


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """What a worker's handler may use: settings, the database pool, the shared producer, and
    the stack's clock (`adapters.runtime.clock`: when a case was grouped or scored, the quality
    evaluator's "now")."""

    settings: Settings
    pool: asyncpg.Pool
    producer: Any
    bootstrap: str
    clock: Clock = field(default=system_clock)


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    name: str
    topics: Callable[[Settings], list[str]]
    make_handler: Callable[[WorkerContext], Handler]


WORKERS: dict[str, WorkerSpec] = {
    spec.name: spec
    for spec in (
        WorkerSpec("sink", lambda s: [s.topics.accepted], lambda ctx: Sink(ctx.pool).handle),
        WorkerSpec("grouping", lambda s: [s.topics.accepted], lambda ctx: Grouper(ctx).handle),
        WorkerSpec("scoring", lambda s: [s.topics.grouped], lambda ctx: Scorer(ctx).handle),
        WorkerSpec(
            "scored_sink", lambda s: [s.topics.scored_all], lambda ctx: ScoredSink(ctx).handle
        ),
        WorkerSpec(
            "quality",
            lambda s: [s.topics.accepted, s.topics.rejected],
            lambda ctx: Quality(ctx).handle,
        ),
    )
}
DEFAULT_WORKERS: tuple[str, ...] = ("sink", "grouping", "scoring", "scored_sink", "quality")
