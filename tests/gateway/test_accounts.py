"""The registry's per-process copies of hospitals and tokens: bounded, and stale for at most
`auth.cache_ttl_s` (the documented bound on how late a disable, rotation or revocation
reaches a process that already saw the hospital or token)."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest

from adapters.runtime.postgres import create_pool, migrate
from gateway.accounts import NEGATIVE_ENTRIES, POSITIVE_ENTRIES, Registry
from gateway.sealing import Sealer

pytestmark = pytest.mark.integration


class _Counting:
    """The pool, counting the queries that reach PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool, self.queries = pool, 0

    async def fetchrow(self, *args: object) -> object:
        self.queries += 1
        return await self.pool.fetchrow(*args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.pool, name)


@pytest.fixture
async def pool(fresh_dsn: str) -> asyncpg.Pool:
    pool = await create_pool(fresh_dsn, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await migrate(conn)
    yield pool
    await pool.close()


async def test_a_revocation_or_disable_reaches_another_process_within_the_ttl(
    pool: asyncpg.Pool,
) -> None:
    key = os.urandom(32)
    admin = Registry(pool, Sealer(key), cache_ttl_s=0)
    serving = Registry(pool, Sealer(key), cache_ttl_s=0.5)
    token = await admin.issue_token("ops", "ops-desk")
    await admin.add_hospital("H44010000001", "A", "440100", "3")
    assert await serving.token(token) is not None
    hospital = await serving.hospital("H44010000001")
    assert hospital is not None and hospital.status == "active"
    await admin.revoke_token("ops-desk")
    await admin.set_status("H44010000001", "disabled")
    await asyncio.sleep(0.6)  # past the bound: the change has arrived
    assert await serving.token(token) is None
    hospital = await serving.hospital("H44010000001")
    assert hospital is not None and hospital.status == "disabled"


async def test_random_tokens_and_codes_neither_grow_the_caches_nor_evict_real_callers(
    pool: asyncpg.Pool,
) -> None:
    counting = _Counting(pool)
    registry = Registry(counting, Sealer(os.urandom(32)), cache_ttl_s=60)  # type: ignore[arg-type]
    token = await registry.issue_token("ops", "ops-desk")
    assert await registry.token(token) is not None
    for i in range(NEGATIVE_ENTRIES + 500):  # a flood of made-up tokens and hospital codes
        assert await registry.token(f"dipgw_ops_{i}") is None
        assert await registry.hospital(f"H{i:011d}") is None
    assert len(registry._tokens_absent) <= NEGATIVE_ENTRIES
    assert len(registry._hospitals_absent) <= NEGATIVE_ENTRIES
    assert len(registry._tokens) <= POSITIVE_ENTRIES
    before = counting.queries
    assert await registry.token(token) is not None  # still cached: no query
    assert counting.queries == before
