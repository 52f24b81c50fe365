"""The registry's per-process copies of hospitals and tokens: bounded, and stale for at most
`auth.cache_ttl_s` (the documented bound on how late a disable, rotation or revocation
reaches a process that already saw the hospital or token); tokens' expiry, judged by the
registry's clock (a hand-moved one here, never the date of the run), listing and revocation."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta

import asyncpg
import pytest

from adapters.runtime.postgres import create_pool, migrate, migrations
from gateway import refusals
from gateway.accounts import (
    NEGATIVE_ENTRIES,
    POSITIVE_ENTRIES,
    Principal,
    Registry,
    RegistryError,
    token_id,
)
from gateway.runtime import Stack
from gateway.sealing import Sealer
from tests.clock import START
from tests.conftest import Client

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


class _Clock:
    """A clock the test moves by hand (tokens' expiry is judged by the registry's clock)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


async def test_a_token_expires_after_the_default_90_days_even_when_cached(
    pool: asyncpg.Pool,
) -> None:
    clock = _Clock(START)
    registry = Registry(pool, Sealer(os.urandom(32)), cache_ttl_s=60, clock=clock)
    token = await registry.issue_token("city", "gz-bureau", "440100")
    listed = next(t for t in await registry.list_tokens() if t["id"] == token_id(token))
    assert (listed["created_at"], listed["expires_at"]) == (START, START + timedelta(days=90))
    assert listed["state"] == "active"
    clock.now = START + timedelta(days=90) - timedelta(seconds=1)
    principal = await registry.check_token(token)
    assert isinstance(principal, Principal) and principal.admdvs == "440100"
    session = await registry.open_session(token, timedelta(hours=8))
    assert session is not None and await registry.token(session) is not None
    clock.now = START + timedelta(days=90)  # still in the process's copy: refused all the same
    assert await registry.open_session(token, timedelta(hours=8)) is None
    assert await Registry(pool, Sealer(os.urandom(32)), clock=clock).token(session) is None
    assert await registry.check_token(token) == "expired"
    assert await Registry(pool, Sealer(os.urandom(32)), clock=clock).check_token(token) == (
        "expired"
    )
    assert await registry.check_token("dipgw_city_made-up") == "unknown"
    listed = next(t for t in await registry.list_tokens() if t["id"] == token_id(token))
    assert listed["state"] == "expired"
    short = await registry.issue_token("ops", "contractor", ttl=timedelta(days=7))
    assert next(t for t in await registry.list_tokens() if t["id"] == token_id(short))[
        "expires_at"
    ] == clock.now + timedelta(days=7)


async def test_the_listing_never_holds_a_token_and_records_its_last_use(
    pool: asyncpg.Pool,
) -> None:
    clock = _Clock(START)
    registry = Registry(pool, Sealer(os.urandom(32)), cache_ttl_s=0, clock=clock)
    token = await registry.issue_token("ops", "ops-desk")
    assert [t["last_used_at"] for t in await registry.list_tokens()] == [None]
    clock.now = START + timedelta(days=3)
    assert await registry.token(token) is not None
    (listed,) = await registry.list_tokens()
    assert listed["last_used_at"] == START + timedelta(days=3)
    assert set(listed) == {
        "id", "label", "role", "admdvs", "created_at", "expires_at", "last_used_at",
        "revoked_at", "state",
    }  # fmt: skip
    # the random part whole: token_urlsafe may hold "_", so the text after the last one can
    # be a character or two, found by chance in a label or a date (a CI run failed so)
    secret = token.removeprefix("dipgw_ops_")
    assert len(secret) == 43
    assert all(secret not in str(value) for value in listed.values())


async def test_a_token_revoked_by_id_is_refused_by_another_process_within_the_ttl(
    pool: asyncpg.Pool,
) -> None:
    key = os.urandom(32)
    admin = Registry(pool, Sealer(key), cache_ttl_s=0)
    serving = Registry(pool, Sealer(key), cache_ttl_s=0.5)
    token = await admin.issue_token("metrics", "prometheus")
    other = await admin.issue_token("metrics", "prometheus")  # same label, kept
    assert await serving.token(token) is not None
    assert await admin.revoke_token_id(token_id(token)) == 1
    assert await admin.revoke_token_id(token_id(token)) == 0  # already revoked
    with pytest.raises(RegistryError, match="no token has id"):
        await admin.revoke_token_id("0123456789ab")
    with pytest.raises(RegistryError, match="12 hex digits"):
        await admin.revoke_token_id("prometheus")
    await asyncio.sleep(0.6)  # past the bound (auth.cache_ttl_s): the revocation has arrived
    assert await serving.check_token(token) == "unknown"
    assert await serving.token(other) is not None
    states = {t["id"]: t["state"] for t in await admin.list_tokens()}
    assert states == {token_id(token): "revoked", token_id(other): "active"}


async def test_tokens_issued_before_expiry_existed_get_90_days_from_the_migration(
    fresh_dsn: str,
) -> None:
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await conn.execute(
            """CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        for version, name, sql in migrations():
            if version < 13:
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", version, name)
        await conn.execute(
            "INSERT INTO api_tokens (token_sha256, role, label) VALUES ('\\x01', 'ops', 'old')"
        )
        assert 13 in await migrate(conn)
        lifetime = await conn.fetchval(
            """SELECT expires_at - applied_at FROM api_tokens, schema_migrations
               WHERE version = 13"""
        )
        assert lifetime == timedelta(days=90)  # from the migration's moment
    finally:
        await conn.close()


async def test_an_expired_token_is_refused_401_with_its_own_reason(stack: Stack) -> None:
    """Issued by a registry whose clock stood 91 days before the tests' clock: expired by
    the gateway's clock, whichever date the run is on (time only moves on)."""
    past = Registry(stack.pool, Sealer(os.urandom(32)), clock=lambda: START - timedelta(days=91))
    expired = Client(stack, token=await past.issue_token("city", "gz-expired", "440100"))
    status, payload, headers = await expired.request("GET", "/v1/quality/alerts")
    assert status == 401 and headers["X-Dipgw-Reason"] == refusals.AUTH_TOKEN_EXPIRED.rule
    assert payload["errors"][0]["rule"] == refusals.AUTH_TOKEN_EXPIRED.rule
    assert payload["errors"][0]["field"] == "Authorization"
    status, payload, _ = await Client(stack, token="dipgw_city_never-issued").request(
        "GET", "/v1/quality/alerts"
    )
    assert (status, payload["errors"][0]["rule"]) == (401, refusals.AUTH_TOKEN.rule)
    live = Client(stack, token=await stack.registry.issue_token("city", "gz-live", "440100"))
    assert (await live.get("/v1/quality/alerts"))[0] == 200
