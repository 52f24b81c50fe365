"""One way to store a city-year document as its next version: rule sets and settlement
policies are both imported this way (`dipgw rules import`)."""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg
import msgspec


async def store_next_version(
    pool: asyncpg.Pool,
    *,
    table: str,
    returning: str,
    lock: int,
    city: str,
    year: int,
    document: bytes,
    sources: list[dict[str, str]],
    values: dict[str, Any],
) -> tuple[asyncpg.Record, bool]:
    """The row in force after storing `document` (encoded; its SHA-256 is the version's
    content hash) with the files it came from and the other columns in `values`, and True
    when it already was in force (the same content again is a no-op, not a new version).

    Imports of one city-year are serialised by an advisory lock (`lock`, city ^ year), so two
    at once cannot take the same seq. `table` and `values`' keys are the caller's constants,
    never input. `returning` is read from the latest row too, so it must not name new
    columns only."""
    digest = hashlib.sha256(document).hexdigest()
    values = {
        **values,
        "document": document.decode(),
        "sources": msgspec.json.encode(sources).decode(),
    }
    columns = ["city", "clearing_year", "seq", "content_sha256", *values]
    placeholders = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", lock, int(city) ^ year)
        latest = await conn.fetchrow(
            f"""SELECT {returning}, content_sha256 AS _digest FROM {table}
                WHERE city = $1 AND clearing_year = $2 ORDER BY seq DESC LIMIT 1""",
            city,
            year,
        )
        if latest is not None and latest["_digest"] == digest:
            return latest, True
        row: asyncpg.Record = await conn.fetchrow(
            f"""INSERT INTO {table} ({", ".join(columns)}) VALUES ({placeholders})
                RETURNING {returning}""",
            city,
            year,
            1 if latest is None else latest["seq"] + 1,
            digest,
            *values.values(),
        )
    return row, False
