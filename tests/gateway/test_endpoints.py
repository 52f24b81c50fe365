"""The upload endpoints' contracts: batch, NDJSON, national envelope, limits, metrics, OpenAPI."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
import pytest

from gateway.runtime import LocalServices, Stack, running_stack
from tests.builders import document, wait_stored
from tests.clock import CLOCK
from tests.conftest import Client, register_hospital

pytestmark = pytest.mark.integration


async def test_batch_gives_a_result_per_record_and_one_bad_record_sinks_nothing(
    stack: Stack, hospital: Client
) -> None:
    run = uuid.uuid4().hex[:8]
    good = [document(f"B{run}{i}") for i in range(5)]
    bad: dict[str, Any] = document(f"B{run}bad")
    del bad["input"]["setlinfo"]["setl_id"]
    records = [*good[:2], bad, *good[2:], good[0]]  # one invalid, one duplicate of records[0]
    status, answer = await hospital.post("/v1/settlements/batch", {"records": records})
    assert status == 200, answer
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (5, 1, 0 + 1)
    statuses = [r["status"] for r in answer["results"]]
    assert statuses == [
        "accepted",
        "accepted",
        "rejected",
        "accepted",
        "accepted",
        "accepted",
        "duplicate",
    ]
    assert answer["results"][2]["position"] == "records[2]"
    assert ("REQ_FIELD", "setlinfo.setl_id") in {
        (e["rule"], e["field"]) for e in answer["results"][2]["errors"]
    }
    assert answer["results"][6]["receipt_id"] == answer["results"][0]["receipt_id"]
    await wait_stored(hospital, answer["results"][5]["receipt_id"])
    stored = await stack.pool.fetchval(
        "SELECT count(*) FROM cases WHERE setl_id LIKE $1", f"B{run}%"
    )
    assert stored == 5


async def test_batch_resent_after_a_failure_is_safe(hospital: Client) -> None:
    records = [document(f"R{uuid.uuid4().hex[:8]}") for _ in range(3)]
    first = await hospital.post("/v1/settlements/batch", {"records": records})
    again = await hospital.post("/v1/settlements/batch", {"records": records})
    assert [r["receipt_id"] for r in first[1]["results"]] == [
        r["receipt_id"] for r in again[1]["results"]
    ]
    assert again[1]["duplicate"] == 3


async def test_ndjson_upload_reports_lines(hospital: Client) -> None:
    lines = [msgspec.json.encode(document(f"L{uuid.uuid4().hex[:8]}")) for _ in range(2)]
    body = lines[0] + b"\n\n{broken\n" + lines[1] + b"\n"
    status, answer = await hospital.post(
        "/v1/settlements/file", body, content_type="application/x-ndjson"
    )
    assert status == 200
    assert [(r["position"], r["status"]) for r in answer["results"]] == [
        ("line 1", "accepted"),
        ("line 3", "rejected"),
        ("line 4", "accepted"),
    ]
    assert answer["results"][1]["errors"][0]["rule"] == "DEC_JSON"


async def test_national_envelope_answers_in_the_national_shape(hospital: Client) -> None:
    doc = document(f"G{uuid.uuid4().hex[:8]}")
    status, answer = await hospital.post("/fsi/api/4101A", doc)
    assert status == 200
    assert answer["infcode"] == 0 and answer["err_msg"] == ""
    assert len(answer["inf_refmsgid"]) == 30 and answer["inf_refmsgid"].startswith("440100")
    assert answer["output"]["data"]["revision"] == 1
    del doc["input"]["setlinfo"]["setl_id"]
    status, answer = await hospital.post("/fsi/api/4101A", doc)
    assert status == 200 and answer["infcode"] == -1
    assert "REQ_FIELD" in answer["err_msg"] and "setl_id" in answer["err_msg"]
    doc["infno"] = "4101"
    status, answer = await hospital.post("/fsi/api/4101A", doc)
    assert answer["infcode"] == -1 and "ENV_INFNO" in answer["err_msg"]
    status, _ = await hospital.post("/fsi/api/9999", doc)
    assert status == 404


async def test_content_type_and_size_limits(services: LocalServices) -> None:
    settings = msgspec.structs.replace(
        services.settings,
        http=msgspec.structs.replace(services.settings.http, max_body_bytes=64 * 1024),
        limits=msgspec.structs.replace(
            services.settings.limits, batch_max_records=3, rate_per_s=0.5, burst=2
        ),
    )
    async with running_stack(
        settings, services.bootstrap, services.dsn, workers=(), clock=CLOCK
    ) as small:
        client = await register_hospital(small, "H44010000031", "440100")
        doc = document(f"C{uuid.uuid4().hex[:8]}", code="H44010000031")
        status, answer = await client.post(
            "/v1/settlements", msgspec.json.encode(doc), content_type="text/plain"
        )
        assert (status, answer["errors"][0]["rule"]) == (415, "HTTP415")
        status, answer = await client.post(
            "/v1/settlements/file", b"x", content_type="application/pdf"
        )
        assert status == 415
        big = dict(doc, padding="x" * 70 * 1024)
        status, answer = await client.post("/v1/settlements", big)
        assert (status, answer["errors"][0]["rule"]) == (413, "HTTP413")
        status, answer = await client.post("/v1/settlements/batch", {"records": [doc] * 4})
        assert (status, answer["errors"][0]["rule"]) == (413, "BATCH_TOO_LARGE")
        # refusals before the body is read cost nothing; the batch took 1 of the burst of 2
        assert (await client.post("/v1/settlements", doc))[0] == 202
        status, answer, headers = await client.request(
            "POST", "/v1/settlements", msgspec.json.encode(doc)
        )
        assert (status, answer["errors"][0]["rule"]) == (429, "RATE_LIMITED")
        assert int(headers["Retry-After"]) >= 1


async def _metrics(stack: Stack) -> dict[str, float]:
    token = await stack.registry.issue_token("metrics", f"scraper-{uuid.uuid4().hex[:6]}")
    status, text, _ = await Client(stack, token=token).request("GET", "/metrics")
    assert status == 200
    body = text.decode() if isinstance(text, bytes) else str(text)
    series = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            series[name] = float(value)
    return series


async def test_metrics_count_records_and_rejections(hospital: Client) -> None:
    """Counted by this test's own uploads, whatever ran before it (hospital label off:
    `metrics.per_hospital`, tests/runtime/test_metrics_listener.py)."""
    accepted = 'dipgw_records_total{fixmedins_code="",outcome="accepted"}'
    rejected = 'dipgw_rejections_total{dimension="完整性",fixmedins_code="",rule="REQ_FIELD"}'
    before = await _metrics(hospital.stack)
    assert (await hospital.post("/v1/settlements", document(f"M{uuid.uuid4().hex[:9]}")))[0] == 202
    bad = document(f"M{uuid.uuid4().hex[:9]}")
    del bad["mdtrtarea_admvs"]
    assert (await hospital.post("/v1/settlements", bad))[0] == 422
    after = await _metrics(hospital.stack)
    assert after[accepted] - before.get(accepted, 0) == 1
    assert after[rejected] - before.get(rejected, 0) == 1
    assert after["dipgw_produce_seconds_count"] - before.get("dipgw_produce_seconds_count", 0) >= 1
    lag = "dipgw_upload_lag_seconds_count"
    assert after[lag] - before.get(lag, 0) == 1


async def test_openapi_document_describes_the_api_and_its_errors(stack: Stack) -> None:
    status, spec, _ = await Client(stack).request("GET", "/openapi.json")
    assert status == 200 and spec["openapi"] == "3.1.0"
    for path in (
        "/v1/settlements",
        "/v1/settlements/batch",
        "/fsi/api/{infno}",
        "/v1/receipts/{receipt_id}",
    ):
        assert path in spec["paths"]
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {
        "rule",
        "field",
        "dimension",
        "severity",
        "message",
        "message_en",
    }
    assert "422" in spec["paths"]["/v1/settlements"]["post"]["responses"]


async def test_rejections_reach_their_topic_with_personal_data_masked(
    stack: Stack, hospital: Client
) -> None:
    from aiokafka import AIOKafkaConsumer

    setl = f"J{uuid.uuid4().hex[:8]}"
    doc = document(setl, certno="110105194912310029")
    del doc["mdtrtarea_admvs"]
    consumer = AIOKafkaConsumer(
        stack.settings.topics.rejected,
        bootstrap_servers=stack.bootstrap,
        auto_offset_reset="latest",
        enable_auto_commit=False,
        group_id=f"t-{setl}",
    )
    await consumer.start()
    try:
        await asyncio.sleep(1.0)  # assigned at the end of the topic before we push
        status, _ = await hospital.post("/v1/settlements", doc)
        assert status == 422
        found = None
        for _ in range(20):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if record.key == f"H44010000001:{setl}".encode():
                        found = msgspec.json.decode(record.value)
            if found:
                break
    finally:
        await consumer.stop()
    assert found is not None
    assert found["errors"][0]["rule"] and found["fixmedins_code"] == "H44010000001"
    text = msgspec.json.encode(found).decode()
    assert "张三" not in text and "110105194912310029" not in text
    assert found["document"]["input"]["setlinfo"]["setl_id"] == setl


async def test_shutdown_finishes_requests_in_flight(services: LocalServices) -> None:
    settings = msgspec.structs.replace(services.settings)
    async with running_stack(
        settings, services.bootstrap, services.dsn, workers=(), clock=CLOCK
    ) as small:
        client = await register_hospital(small, "H44010000032", "440100")
        records = [document(f"S{uuid.uuid4().hex[:10]}", code="H44010000032") for _ in range(1000)]
        in_flight = asyncio.create_task(client.post("/v1/settlements/batch", {"records": records}))
        setls = [r["input"]["setlinfo"]["setl_id"] for r in records]
        reserved = "SELECT count(*) FROM receipts WHERE setl_id = ANY($1)"
        for _ in range(1000):  # until the handler has reserved them (not a timed guess)
            if in_flight.done() or await small.pool.fetchval(reserved, setls):
                break
            await asyncio.sleep(0.01)
        assert not in_flight.done()  # shutdown begins while the request is being handled
    status, answer = await in_flight  # the block exit above stopped the server gracefully
    assert status == 200 and answer["accepted"] == 1000, answer
    import asyncpg

    conn = await asyncpg.connect(services.dsn)
    try:
        stored = await conn.fetchval(
            "SELECT count(*) FROM receipts WHERE setl_id = ANY($1) AND status <> 'pending'", setls
        )
    finally:
        await conn.close()
    assert stored == 1000


def _flat_row(doc: dict[str, Any]) -> dict[str, str]:
    """A settlement list as one CSV row with path headers (docs/upload-format.md)."""
    row = {k: str(v) for k, v in doc.items() if k != "input"}
    row.update({f"setlinfo.{k}": str(v) for k, v in doc["input"]["setlinfo"].items()})
    for node in ("diseinfo", "oprninfo", "icuinfo"):
        for i, entry in enumerate(doc["input"].get(node, [])):
            row.update({f"{node}[{i}].{k}": str(v) for k, v in entry.items()})
    return row


async def test_csv_export_gives_a_result_per_row(stack: Stack, hospital: Client) -> None:
    import csv
    import io

    docs = [document(f"V{uuid.uuid4().hex[:8]}") for _ in range(2)]
    rows = [_flat_row(d) for d in docs]
    columns = sorted(set().union(*rows))
    broken = dict(rows[1], **{"setlinfo.setl_id": ""})
    out = io.StringIO()
    writer = csv.DictWriter(out, columns)
    writer.writeheader()
    writer.writerows([rows[0], broken, rows[1]])
    status, answer = await hospital.post(
        "/v1/settlements/file", out.getvalue().encode(), content_type="text/csv"
    )
    assert status == 200, answer
    assert [(r["position"], r["status"]) for r in answer["results"]] == [
        ("row 2", "accepted"),
        ("row 3", "rejected"),
        ("row 4", "accepted"),
    ]
    assert any(e["field"] == "setlinfo.setl_id" for e in answer["results"][1]["errors"])


async def test_a_connection_that_never_finishes_its_headers_is_closed(
    services: LocalServices,
) -> None:
    """Slowloris: partial headers held a connection (and its memory) for minutes (issue 11)."""
    settings = msgspec.structs.replace(
        services.settings,
        http=msgspec.structs.replace(services.settings.http, header_timeout_s=1.0, port=0),
    )
    async with running_stack(
        settings, services.bootstrap, services.dsn, workers=(), clock=CLOCK
    ) as small:
        host, port = small.url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /v1/settlements HTTP/1.1\r\nHost: x\r\nX-Dipgw-Hospital: H4")
        await writer.drain()
        started = asyncio.get_running_loop().time()
        for _ in range(20):  # trickle a byte a while: data must not keep it open
            await asyncio.sleep(0.2)
            if reader.at_eof():
                break
            try:
                writer.write(b"4")
                await writer.drain()
            except ConnectionError:
                break
        closed = await asyncio.wait_for(reader.read(), timeout=5)
        elapsed = asyncio.get_running_loop().time() - started
        writer.close()
        assert closed == b"" or closed.startswith(b"HTTP/1.1 4")
        assert elapsed < 3.5, elapsed


@pytest.mark.integration
async def test_metrics_are_for_ops_and_metrics_tokens_only(stack: Stack) -> None:
    """/metrics listed hospital codes, volumes and rejection rules to anyone (issue 11)."""
    scraper = Client(stack, token=await stack.registry.issue_token("metrics", "prometheus-1"))
    city = Client(stack, token=await stack.registry.issue_token("city", "gz-1", "440100"))
    ops = Client(stack, token=await stack.registry.issue_token("ops", "ops-metrics"))
    assert (await Client(stack).request("GET", "/metrics"))[0] == 401
    status, body, _ = await city.request("GET", "/metrics")
    assert (status, body["errors"][0]["rule"]) == (403, "FORBIDDEN_ROLE")
    assert (await ops.request("GET", "/metrics"))[0] == 200
    status, text, _ = await scraper.request("GET", "/metrics")
    assert status == 200 and b"dipgw_http_requests_total" in text
    # and a scraper's token reads nothing else
    for path in ("/v1/scored", "/v1/scored/stream", "/v1/quality/report", "/v1/quality/dashboard"):
        status, body, _ = await scraper.request("GET", path)
        assert status == 403, (path, status)


async def test_budgets_by_cost_records_bytes_and_address(services: LocalServices) -> None:
    """Limits counted requests only (issue 11): 160 small requests of 1,000 empty records
    each kept a gateway busy, unauthenticated and bearer traffic was not limited at all, and
    a body was read before its size was checked."""
    settings = msgspec.structs.replace(
        services.settings,
        limits=msgspec.structs.replace(
            services.settings.limits,
            records_per_s=1,
            records_burst=5,
            source_rate_per_s=1,
            source_burst=40,
        ),
    )
    async with running_stack(
        settings, services.bootstrap, services.dsn, workers=(), clock=CLOCK
    ) as small:
        client = await register_hospital(small, "H44010000032", "440100")
        empty = {"records": [{} for _ in range(5)]}
        status, answer = await client.post("/v1/settlements/batch", empty)
        assert status == 200 and answer["rejected"] == 5  # checked: it cost 5 records
        status, answer, headers = await client.request(
            "POST", "/v1/settlements/batch", msgspec.json.encode(empty)
        )
        assert (status, answer["errors"][0]["rule"]) == (429, "RATE_LIMITED")
        assert "records" in answer["errors"][0]["message_en"] and int(headers["Retry-After"]) >= 1
        # a body declared larger than the limit is refused before a byte of it is read
        host, port = small.url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /v1/settlements HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        writer.close()
        assert head.startswith(b"HTTP/1.1 413")
        # anyone at all, signed or not, is held to the address's budget
        statuses = [
            (await Client(small, token="dipgw_ops_made_up").request("GET", "/v1/scored"))[0]
            for _ in range(60)
        ]
        assert statuses[:30] == [401] * 30 and statuses[-1] == 429


async def test_a_push_is_timed_stage_by_stage(hospital: Client) -> None:
    """Each stage of a single push is observed once (issue 17: where a slow request spends
    its time); a list refused by the contract never reaches the ingestor, so it has no
    reservation, produce, ack or response of a push."""
    stages = ("auth", "validation", "reservation", "produce", "ack", "response")

    def counts(series: dict[str, float]) -> dict[str, float]:
        return {s: series.get(f'dipgw_push_stage_seconds_count{{stage="{s}"}}', 0) for s in stages}

    before = counts(await _metrics(hospital.stack))
    assert (await hospital.post("/v1/settlements", document(f"T{uuid.uuid4().hex[:9]}")))[0] == 202
    after = counts(await _metrics(hospital.stack))
    assert {s: after[s] - before[s] for s in stages} == dict.fromkeys(stages, 1)

    bad = document(f"T{uuid.uuid4().hex[:9]}")
    del bad["mdtrtarea_admvs"]
    assert (await hospital.post("/v1/settlements", bad))[0] == 422
    again = counts(await _metrics(hospital.stack))
    assert {s: again[s] - after[s] for s in stages} == {
        "auth": 1,
        "validation": 1,
        "reservation": 0,
        "produce": 0,
        "ack": 0,
        "response": 0,
    }
