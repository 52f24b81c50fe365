"""Schema migrations against the real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from adapters.runtime.postgres import migrate, migrations

pytestmark = pytest.mark.integration


def test_bundled_migrations_are_numbered_without_gaps() -> None:
    versions = [version for version, _, _ in migrations()]
    assert versions == list(range(1, len(versions) + 1)) and versions


async def test_migrate_applies_each_file_once(fresh_dsn: str) -> None:
    conn = await asyncpg.connect(fresh_dsn)
    try:
        first = await migrate(conn)
        second = await migrate(conn)
        assert first == [v for v, _, _ in migrations()]
        assert second == []
        tables = {
            r[0]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert {"receipts", "cases", "schema_migrations"} <= tables
    finally:
        await conn.close()


async def test_processes_starting_together_apply_migrations_exactly_once(fresh_dsn: str) -> None:
    conns = [await asyncpg.connect(fresh_dsn) for _ in range(4)]
    try:
        applied = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(map(len, applied)) == [0, 0, 0, len(migrations())]
        rows = await conns[0].fetchval("SELECT count(*) FROM schema_migrations")
        assert rows == len(migrations())
    finally:
        for conn in conns:
            await conn.close()
