"""PostgreSQL plumbing shared by every process: the pool and versioned schema migrations.

Migrations are the numbered `migrations/NNNN_name.sql` files, applied in order at start, each
in its own transaction, under an advisory lock so that several processes starting at once
apply each file exactly once.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import asyncpg

_MIGRATION_LOCK = 0x6469_7067  # "dipg"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every bundled migration, in order."""
    found = []
    for entry in resources.files("adapters.runtime.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migration numbers must run 1..n without gaps, got {versions}")
    return found


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply the pending migrations; returns the versions applied now."""
    applied_now: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migrations():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            applied_now.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied_now


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, command_timeout_s: float = 60.0
) -> asyncpg.Pool:
    """A pool on a migrated database; its statements time out after `command_timeout_s`."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool: Any = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        reset=_keep_session,
        command_timeout=command_timeout_s,
        timeout=10,  # connecting
    )
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """No reset round trip on release: dipgw keeps no session state (no SET, LISTEN, cursors
    or session locks outside transactions), and every hot path is a single statement."""
