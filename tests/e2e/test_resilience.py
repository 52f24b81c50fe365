"""Kafka or PostgreSQL away: the gateway answers 503 + Retry-After, keeps nothing half-way,
and takes records again by itself when they return. Real broker, real server."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from adapters.runtime.kafka import ensure_topics
from gateway.localkafka import LocalKafkaCluster
from gateway.runtime import LocalServices, running_stack
from tests.builders import document, wait_stored
from tests.clock import CLOCK
from tests.conftest import Client, register_hospital

pytestmark = pytest.mark.integration


async def _topic_records(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every message of a topic, decoded (a plain consumer, as a city bureau would use)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        found: list[dict[str, Any]] = []
        while batch := await consumer.getmany(timeout_ms=2000):
            found += [msgspec.json.decode(r.value) for part in batch.values() for r in part]
        return found
    finally:
        await consumer.stop()


async def test_a_send_stalled_past_its_timeout_is_stored_and_counted_once(
    services: LocalServices, scratch_dir: Path, fresh_dsn: str
) -> None:
    """The uncertain send: the broker is stalled (SIGSTOP) across the Kafka timeout, so the
    upload answers 503 although the record may still be appended when the broker resumes.
    The retry takes the reservation over and sends the same receipt again: afterwards the
    topic holds only that receipt, and there is one receipt, one stored case and one
    "received" in quality. The same signed request cannot be replayed; a re-signed one can."""
    broker = LocalKafkaCluster(scratch_dir / "kafka", heap_mb=256)
    bootstrap = broker.start(owned=True)
    settings = msgspec.structs.replace(
        services.settings,
        kafka=msgspec.structs.replace(services.settings.kafka, request_timeout_ms=2000),
    )
    try:
        async with running_stack(
            settings, bootstrap, fresh_dsn, workers=("sink", "quality"), clock=CLOCK
        ) as stack:
            code = "H44010000041"
            client = await register_hospital(stack, code, "440100")
            warm = document(f"K{uuid.uuid4().hex[:8]}", code=code)
            assert (await client.post("/v1/settlements", warm))[0] == 202
            doc = document(f"K{uuid.uuid4().hex[:8]}", code=code)
            body = msgspec.json.encode(doc)
            signed = client.headers("POST", "/v1/settlements", body)
            pid = broker.pid()
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
            try:
                status, answer, headers = await client.request(
                    "POST", "/v1/settlements", body, headers=signed
                )
                await asyncio.sleep(1)  # stalled well past the 2 s timeout
            finally:
                os.kill(pid, signal.SIGCONT)
            assert status == 503, answer
            assert answer["errors"][0]["rule"] == "SYS_UNAVAILABLE"
            assert int(headers["Retry-After"]) > 0
            status, answer, _ = await client.request(
                "POST", "/v1/settlements", body, headers=signed
            )
            assert status == 401 and answer["errors"][0]["rule"] == "AUTH_NONCE_REUSED"
            assert "fresh nonce" in answer["errors"][0]["message_en"]
            for _ in range(60):  # re-signed each time, as documented
                status, answer = await client.post("/v1/settlements", doc)
                if status == 202:
                    break
                assert status == 503
                await asyncio.sleep(0.5)
            assert status == 202, answer
            receipt = answer["receipt_id"]
            await wait_stored(client, receipt)
            setl = doc["input"]["setlinfo"]["setl_id"]
            case_key = f"{code}:{setl}"
            copies = [
                r
                for r in await _topic_records(bootstrap, settings.topics.accepted)
                if r["case_key"] == case_key
            ]
            assert copies and {(r["receipt_id"], r["revision"]) for r in copies} == {
                (receipt, 1)
            }, copies
            pool = stack.pool
            receipts = await pool.fetch("SELECT status FROM receipts WHERE setl_id = $1", setl)
            assert [r["status"] for r in receipts] == ["stored"]
            assert await pool.fetchval("SELECT count(*) FROM cases WHERE setl_id = $1", setl) == 1
            for _ in range(100):
                received = await pool.fetchval(
                    "SELECT sum(received) FROM quality_daily WHERE fixmedins_code = $1", code
                )
                if received == 2:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1)  # a late second copy would be counted by now
            received = await pool.fetchval(
                "SELECT sum(received) FROM quality_daily WHERE fixmedins_code = $1", code
            )
            assert received == 2  # the warm-up list and this one, once each
    finally:
        broker.stop()


async def test_postgres_unreachable_means_503_then_recovery(
    services: LocalServices, fresh_dsn: str
) -> None:
    async with running_stack(
        services.settings, services.bootstrap, fresh_dsn, workers=(), clock=CLOCK
    ) as stack:
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


async def _steady_uploads(
    client: Client, stop: asyncio.Event, per_s: float, answers: list[tuple[float, int]]
) -> None:
    """A hospital uploading new lists at a steady rate, recording (time, status) of each."""
    n = 0
    while not stop.is_set():
        n += 1
        doc = document(f"R{uuid.uuid4().hex[:10]}", code=client.hospital or "")
        try:
            status, _ = await asyncio.wait_for(client.post("/v1/settlements", doc), timeout=30)
        except TimeoutError:
            status = 0
        answers.append((time.monotonic(), status))
        await asyncio.sleep(1 / per_s)


async def test_broker_restart_under_load_recovers_without_a_gateway_restart(
    services: LocalServices, scratch_dir: Path, fresh_dsn: str
) -> None:
    """A broker stopped for a while under load and started again: uploads answer 202 again
    within seconds, with no restart of the gateway (its producer is renewed if it died)."""
    broker = LocalKafkaCluster(scratch_dir / "kafka", heap_mb=256)
    bootstrap = broker.start(owned=True)
    try:
        async with running_stack(
            services.settings, bootstrap, fresh_dsn, workers=(), clock=CLOCK
        ) as stack:
            client = await register_hospital(stack, "H44010000043", "440100")
            answers: list[tuple[float, int]] = []
            stop = asyncio.Event()
            load = [
                asyncio.create_task(_steady_uploads(client, stop, 4, answers)) for _ in range(3)
            ]
            try:
                await asyncio.sleep(2)
                assert answers and answers[-1][1] == 202, answers
                pid = broker.pid()
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                await asyncio.to_thread(broker.stop)
                await asyncio.sleep(20)
                assert answers[-1][1] == 503, answers[-5:]
                await asyncio.to_thread(broker.start, owned=True)
                back = time.monotonic()
                deadline = back + 45
                while time.monotonic() < deadline:
                    recent = [s for t, s in answers if t > back]
                    if recent[-3:] == [202, 202, 202]:
                        break
                    await asyncio.sleep(0.5)
                recent = [s for t, s in answers if t > back]
                assert recent[-3:] == [202, 202, 202], f"still failing after restart: {recent}"
            finally:
                stop.set()
                await asyncio.gather(*load)
    finally:
        broker.stop()


async def test_a_producer_that_can_no_longer_deliver_is_renewed(
    services: LocalServices, fresh_dsn: str
) -> None:
    """The state a broker outage can leave: a batch failed after taking its sequence number,
    so the broker refuses every later batch (OutOfOrderSequence) and aiokafka's sender stops.
    The gateway answers 503 for that upload, then renews its producer and answers 202."""
    async with running_stack(
        services.settings, services.bootstrap, fresh_dsn, workers=(), clock=CLOCK
    ) as stack:
        client = await register_hospital(stack, "H44010000044", "440100")
        producer = stack.producer.producer
        topic = services.settings.topics.accepted
        partitions = [TopicPartition(topic, p) for p in range(services.settings.topics.partitions)]
        while not all(producer._txn_manager.sequence_number(tp) for tp in partitions):
            doc = document(f"Q{uuid.uuid4().hex[:9]}", code="H44010000044")
            status, _ = await client.post("/v1/settlements", doc)
            assert status == 202
        for tp in partitions:  # the spent numbers
            producer._txn_manager.increment_sequence_number(tp, 7)
        statuses = []
        for _ in range(20):
            doc = document(f"Q{uuid.uuid4().hex[:9]}", code="H44010000044")
            status, _ = await client.post("/v1/settlements", doc)
            statuses.append(status)
            if status == 202:
                break
            await asyncio.sleep(0.5)
        assert statuses[0] == 503 and statuses[-1] == 202, statuses
        assert stack.producer.producer is not producer, "the producer was not renewed"
        assert [s for s in statuses[1:] if s != 202] == statuses[1:-1]


async def test_a_rejection_that_cannot_be_recorded_is_not_answered_422(
    services: LocalServices, fresh_dsn: str
) -> None:
    """Quality counts rejections from their topic: a 422 whose record never reached it would
    be a rejection that no report shows. Until it can be recorded, the answer is 503."""
    topics = msgspec.structs.replace(
        services.settings.topics, rejected=f"test.rejected.{uuid.uuid4().hex[:8]}"
    )
    settings = msgspec.structs.replace(
        services.settings,
        topics=topics,
        kafka=msgspec.structs.replace(services.settings.kafka, request_timeout_ms=2000),
    )
    async with running_stack(
        settings, services.bootstrap, fresh_dsn, workers=(), clock=CLOCK
    ) as stack:
        client = await register_hospital(stack, "H44010000045", "440100")
        bad = document(f"J{uuid.uuid4().hex[:8]}", code="H44010000045", insutype="999")
        admin = AIOKafkaAdminClient(bootstrap_servers=services.bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([topics.rejected])
            for _ in range(100):
                if topics.rejected not in await admin.list_topics():
                    break
                await asyncio.sleep(0.1)
            status, answer, headers = await client.request(
                "POST", "/v1/settlements", msgspec.json.encode(bad)
            )
            assert status == 503, answer
            assert answer["errors"][0]["rule"] == "SYS_UNAVAILABLE" and "Retry-After" in headers
            await ensure_topics(settings, services.bootstrap, [topics.rejected])
        finally:
            await admin.close()
        for _ in range(20):
            status, answer = await client.post("/v1/settlements", bad)
            if status == 422:
                break
            await asyncio.sleep(0.5)
        assert status == 422, answer
        consumer = AIOKafkaConsumer(
            topics.rejected, bootstrap_servers=services.bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=5000)
        finally:
            await consumer.stop()
        recorded = [msgspec.json.decode(r.value) for part in batch.values() for r in part]
        assert [r["case_key"] for r in recorded] == [
            f"H44010000045:{bad['input']['setlinfo']['setl_id']}"
        ]


async def test_a_request_cut_off_by_its_time_limit_does_not_hold_its_reservation(
    services: LocalServices, scratch_dir: Path, fresh_dsn: str
) -> None:
    """The HTTP time limit (503 SYS_TIMEOUT) cancels the request, not its submission: the
    send runs to its own Kafka timeout and ends the reservation's lease, so once the broker
    is back a retry takes over at once instead of waiting out the lease of a request that is
    gone. (No sink runs here: nothing else would resolve the reservation.)"""
    broker = LocalKafkaCluster(scratch_dir / "kafka", heap_mb=256)
    bootstrap = broker.start(owned=True)
    settings = msgspec.structs.replace(
        services.settings,
        kafka=msgspec.structs.replace(services.settings.kafka, request_timeout_ms=2000),
        http=msgspec.structs.replace(services.settings.http, request_timeout_s=1.0),
    )
    try:
        async with running_stack(settings, bootstrap, fresh_dsn, workers=(), clock=CLOCK) as stack:
            client = await register_hospital(stack, "H44010000046", "440100")
            assert (await client.post("/v1/settlements", document("T0", code="H44010000046")))[
                0
            ] == 202
            doc = document(f"T{uuid.uuid4().hex[:8]}", code="H44010000046")
            pid = broker.pid()
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
            try:
                status, answer = await client.post("/v1/settlements", doc)
                assert status == 503 and answer["errors"][0]["rule"] == "SYS_TIMEOUT", answer
                await asyncio.sleep(3)  # past the submission's own 2 s Kafka timeout
            finally:
                os.kill(pid, signal.SIGCONT)
            started = time.monotonic()
            for _ in range(40):
                status, answer = await client.post("/v1/settlements", doc)
                if status == 202:
                    break
                await asyncio.sleep(0.25)
            assert status == 202, answer
            assert time.monotonic() - started < 20  # not the 60 s lease
            setl = doc["input"]["setlinfo"]["setl_id"]
            count = "SELECT count(*) FROM receipts WHERE setl_id = $1"
            assert await stack.pool.fetchval(count, setl) == 1
    finally:
        broker.stop()
