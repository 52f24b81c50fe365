"""The workers a process can run, by name: what each consumes and how it handles a batch.

`dipgw up --workers a,b` and the tests pick from here; adding a worker is adding a spec.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from gateway.settings import Settings
from workers._runner import Handler
from workers.sink import Sink


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """What a worker's handler may use: settings, the database pool, the shared producer."""

    settings: Settings
    pool: asyncpg.Pool
    producer: Any
    bootstrap: str


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    name: str
    topics: Callable[[Settings], list[str]]
    make_handler: Callable[[WorkerContext], Handler]


WORKERS: dict[str, WorkerSpec] = {
    spec.name: spec
    for spec in (
        WorkerSpec("sink", lambda s: [s.topics.accepted], lambda ctx: Sink(ctx.pool).handle),
    )
}
DEFAULT_WORKERS: tuple[str, ...] = ("sink",)
