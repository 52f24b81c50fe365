"""The obvious peer of the benches (gateway.bench.peer): its model accepts the lists dipgw's
benches send and refuses what it can see is wrong, and its app, started as the bench starts
it, checks dipgw's signatures, writes each accepted list to Kafka and a receipt row to its
table, and answers in dipgw's shapes."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from contracts.samples import make_envelope_bytes, make_settlement
from gateway.bench.common import count_records
from gateway.bench.peer.ingest_app import SECRET_ENV
from gateway.bench.peer.model import validate_json
from gateway.bench.validate import FINDINGS
from gateway.localkafka import free_ports
from gateway.runtime import LocalServices
from gateway.signing import signed_headers

NOW = datetime(2026, 11, 24, 9, 30)
HOSPITAL = "H44010000001"
SECRET = b"peer-test-secret-0123456789"


def _clean(seed: int = 7) -> dict[str, Any]:
    return make_settlement(random.Random(seed), now=NOW, fixmedins_code=HOSPITAL)


def test_the_model_accepts_the_benches_clean_lists() -> None:
    rng = random.Random(20261124)
    for _ in range(50):
        validate_json(make_envelope_bytes(rng, now=NOW))


@pytest.mark.parametrize(
    "finding",
    [f for f in FINDINGS if f.__name__ not in ("_unknown_diagnosis", "_unknown_operation")],
    ids=lambda f: f.__name__.strip("_"),
)
def test_the_model_refuses_what_it_can_see(finding: Any) -> None:
    """Each finding of the validate bench but the unknown codes (the obvious peer has no code
    tables): a dictionary value, a required field, a length, a timestamp format."""
    doc = _clean()
    finding(doc)
    with pytest.raises(ValidationError):
        validate_json(msgspec.json.encode(doc))


def test_the_model_checks_formats_and_cross_fields() -> None:
    changes: list[Callable[[dict[str, Any]], None]] = [
        lambda d: d["input"]["diseinfo"][0].update(diag_code="M17-900"),
        lambda d: d.update(fixmedins_code="44010000001"),
        lambda d: d["input"]["setlinfo"].update(adm_time="2026-11-30 08:00:00"),
        lambda d: d["input"]["diseinfo"][1].update(maindiag_flag="1"),
        lambda d: d["input"].update(diseinfo=[]),
        lambda d: d["input"]["setlinfo"].update(medfee_sumamt="12.345"),
    ]
    for change in changes:
        doc = _clean()
        change(doc)
        with pytest.raises(ValidationError):
            validate_json(msgspec.json.encode(doc))


@pytest.fixture
async def peer_app(
    services: LocalServices, fresh_dsn: str, tmp_path: Path
) -> AsyncIterator[tuple[str, str, str]]:
    """The peer as `dipgw bench ingest --peer` starts it: (url, topic, dsn)."""
    port, topic = free_ports(1)[0], f"peer.test.{uuid.uuid4().hex[:8]}"
    log = tmp_path / "peer.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.bench.peer.ingest_app",
                *("--port", str(port), "--dsn", fresh_dsn, "--bootstrap", services.bootstrap),
                *("--topic", topic, "--hospital", HOSPITAL),
            ],
            env={**os.environ, SECRET_ENV: SECRET.decode()},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while True:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                try:
                    async with http.get(url + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        yield url, topic, fresh_dsn
    finally:
        proc.terminate()
        proc.wait(20)


async def _post(url: str, path: str, body: bytes, secret: bytes = SECRET) -> tuple[int, Any]:
    headers = {
        "Content-Type": "application/json",
        **signed_headers(HOSPITAL, secret, "POST", path, body),
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(url + path, data=body, headers=headers) as r,
    ):
        return r.status, await r.json()


@pytest.mark.integration
async def test_the_peer_app_writes_kafka_and_its_table(
    peer_app: tuple[str, str, str], services: LocalServices
) -> None:
    url, topic, dsn = peer_app
    one = _clean(1)
    status, answer = await _post(url, "/v1/settlements", msgspec.json.encode(one))
    assert status == 202 and answer["status"] == "accepted", answer
    invalid = _clean(3)
    invalid["input"]["setlinfo"]["adm_way"] = "x"
    records = [_clean(2), invalid]
    status, answer = await _post(
        url, "/v1/settlements/batch", msgspec.json.encode({"records": records})
    )
    assert status == 200
    counts = count_records(status, answer, 2)  # counted as the bench counts dipgw's answers
    assert (counts["accepted"], counts["rejected"]) == (1, 1)
    rejected = answer["results"][1]
    assert any(e["path"].endswith("adm_way") for e in rejected["errors"])
    assert "x" not in {str(e.get("input")) for e in rejected["errors"]}  # no value echoed
    status, _ = await _post(url, "/v1/settlements", msgspec.json.encode(one), b"wrong")
    assert status == 401  # dipgw's signature, checked with gateway.signing

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=services.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        values: list[bytes | None] = []
        deadline = time.monotonic() + 30
        while len(values) < 2 and time.monotonic() < deadline:
            got = await consumer.getmany(timeout_ms=1000)
            values += [r.value for batch in got.values() for r in batch]
    finally:
        await consumer.stop()
    sent = {msgspec.json.decode(v)["input"]["setlinfo"]["setl_id"] for v in values if v}
    assert sent == {one["input"]["setlinfo"]["setl_id"], records[0]["input"]["setlinfo"]["setl_id"]}

    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT setl_id, kafka_offset FROM peer_receipts")
    finally:
        await connection.close()
    assert {r["setl_id"] for r in rows} == sent
    assert {r["kafka_offset"] for r in rows} <= {0, 1}
