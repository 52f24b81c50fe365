"""What every command needs first: settings (with a clear message when bad) and logging."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from adapters.runtime.errors import DipgwError
from adapters.runtime.logs import configure_logging
from adapters.runtime.postgres import create_pool
from adapters.runtime.settings import Settings, SettingsError, load_settings
from contracts import set_display_zone
from gateway.localkafka import LocalKafka
from gateway.localpg import EmbeddedPostgres


class UsageError(DipgwError):
    """Bad usage or unreadable input: the command exits 2 with this message."""


def settings_from(args: argparse.Namespace) -> Settings:
    try:
        settings = load_settings(getattr(args, "config", None))
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    set_display_zone(settings.display.utc_offset)  # before anything is shown or logged
    configure_logging(settings.log.level, settings.log.format)
    return settings


def fail(message: str, code: int = 2) -> int:
    print(f"dipgw: {message}", file=sys.stderr)
    return code


T = TypeVar("T")


def with_pool(settings: Settings, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """Run `work` on a pool of the configured database, or of the embedded one.

    The embedded server is shared with a running `dipgw up` (same data directory) and is
    stopped afterwards only if this command started it.
    """

    async def run(dsn: str) -> T:
        pool = await create_pool(dsn, min_size=1, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    if settings.pg.dsn:
        return asyncio.run(run(settings.pg.dsn))
    pg = EmbeddedPostgres(settings.state_path / "pgdata")
    try:
        return asyncio.run(run(pg.start()))
    finally:
        pg.stop()


def kafka_bootstrap(settings: Settings) -> tuple[str, LocalKafka | None]:
    """The configured cluster; else the local broker: the one a running `dipgw up` started
    (used and left running), or one started for the command, returned to be stopped after."""
    if settings.kafka.bootstrap:
        return settings.kafka.bootstrap, None
    local = LocalKafka(
        settings.state_path / "kafka",
        version=settings.kafka.local_version,
        heap_mb=settings.kafka.local_heap_mb,
        cache_dir=settings.cache_dir,
    )
    if local.pid() is not None:
        return local.bootstrap, None
    return local.start(owned=True), local
