"""Kafka or PostgreSQL away: the gateway answers 503 + Retry-After, keeps nothing half-way,
and takes records again by itself when they return. Real broker, real server."""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.parse
import uuid

import asyncpg
import msgspec
import pytest

from gateway.runtime import LocalServices, running_stack
from tests.conftest import register_hospital
from tests.test_e2e_walking_skeleton import document

pytestmark = pytest.mark.integration


async def test_kafka_paused_means_503_then_recovery(services: LocalServices) -> None:
    if services.kafka is None or services.kafka.pid() is None:
        pytest.skip("needs the local broker (it is paused with SIGSTOP)")
    settings = msgspec.structs.replace(
        services.settings,
        kafka=msgspec.structs.replace(services.settings.kafka, request_timeout_ms=2000),
    )
    async with running_stack(settings, services.bootstrap, services.dsn) as stack:
        client = await register_hospital(stack, "H44010000041", "440100")
        doc = document(f"K{uuid.uuid4().hex[:8]}", code="H44010000041")
        pid = services.kafka.pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            status, answer, headers = await client.request(
                "POST", "/v1/settlements", msgspec.json.encode(doc)
            )
        finally:
            os.kill(pid, signal.SIGCONT)
        assert status == 503, answer
        assert answer["errors"][0]["rule"] == "SYS_UNAVAILABLE"
        assert int(headers["Retry-After"]) > 0
        setl = doc["input"]["setlinfo"]["setl_id"]
        # Nothing acknowledged: the only trace is a reservation whose outcome is unknown.
        rows = await stack.pool.fetch("SELECT status FROM receipts WHERE setl_id = $1", setl)
        assert [r["status"] for r in rows] in ([], ["pending"])
        for _ in range(60):  # the producer reconnects by itself; the retry resolves
            status, answer = await client.post("/v1/settlements", doc)
            if status == 202:
                break
            assert status == 503
            await asyncio.sleep(0.5)
        assert status == 202 and answer["revision"] == 1, answer
        # exactly one receipt and one stored case for the list, however many tries it took
        assert (
            await stack.pool.fetchval("SELECT count(*) FROM receipts WHERE setl_id = $1", setl) == 1
        )
        fresh = document(f"K{uuid.uuid4().hex[:8]}", code="H44010000041")
        assert (await client.post("/v1/settlements", fresh))[0] == 202


async def test_postgres_unreachable_means_503_then_recovery(
    services: LocalServices, fresh_dsn: str
) -> None:
    async with running_stack(services.settings, services.bootstrap, fresh_dsn, workers=()) as stack:
        client = await register_hospital(stack, "H44010000042", "440100")
        assert (await client.post("/v1/settlements", document("P1", code="H44010000042")))[0] == 202
        database = urllib.parse.urlsplit(fresh_dsn).path.lstrip("/")
        admin = await asyncpg.connect(services.dsn)
        try:
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                database,
            )
            status, answer, headers = await client.request(
                "POST", "/v1/settlements", msgspec.json.encode(document("P2", code="H44010000042"))
            )
            assert status == 503, answer
            assert answer["errors"][0]["rule"] == "SYS_UNAVAILABLE"
            assert "Retry-After" in headers
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        finally:
            await admin.close()
        status, answer = await client.post("/v1/settlements", document("P2", code="H44010000042"))
        assert status == 202, answer
