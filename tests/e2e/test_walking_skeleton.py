"""A settlement list from a signed HTTP push through real Kafka into a real PostgreSQL row."""

from __future__ import annotations

import asyncio
import copy
import uuid

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.messages import ACCEPTED_DECODER
from gateway.runtime import Stack
from tests.builders import document, wait_stored
from tests.conftest import Client

pytestmark = pytest.mark.integration


async def test_push_reaches_kafka_and_the_case_store(stack: Stack, hospital: Client) -> None:
    setl_id = f"E2E{uuid.uuid4().hex[:10]}"
    status, body = await hospital.post("/v1/settlements", document(setl_id))
    assert status == 202, body
    assert body["case_key"] == f"H44010000001:{setl_id}"
    assert body["revision"] == 1 and body["status"] == "accepted"

    receipt = await wait_stored(hospital, body["receipt_id"])
    assert receipt["kafka_topic"] == stack.settings.topics.accepted

    row = await stack.pool.fetchrow(
        "SELECT revision, receipt_id, mdtrtarea_admvs, insuplc_admdvs, record"
        " FROM cases WHERE fixmedins_code = $1 AND setl_id = $2",
        "H44010000001",
        setl_id,
    )
    assert row is not None
    assert (row["revision"], str(row["receipt_id"])) == (1, body["receipt_id"])
    assert (row["mdtrtarea_admvs"], row["insuplc_admdvs"]) == ("440100", "440300")
    assert msgspec.json.decode(row["record"])["input"]["setlinfo"]["setl_id"] == setl_id

    # The record really is in the broker, keyed by the case key, at the receipt's offset.
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(receipt["kafka_topic"], receipt["kafka_partition"])
        consumer.assign([tp])
        consumer.seek(tp, receipt["kafka_offset"])
        record = await asyncio.wait_for(consumer.getone(), 10)
    finally:
        await consumer.stop()
    assert record.key == f"H44010000001:{setl_id}".encode()
    message = ACCEPTED_DECODER.decode(record.value)
    assert (message.receipt_id, message.revision) == (body["receipt_id"], 1)


async def test_identical_resend_returns_the_original_receipt(
    stack: Stack, hospital: Client
) -> None:
    setl_id = f"DUP{uuid.uuid4().hex[:10]}"
    first = document(setl_id)
    status1, body1 = await hospital.post("/v1/settlements", first)
    resend = copy.deepcopy(first)
    resend["msgid"] = "H44010000001" + "9" * 18  # a new message id, same settlement list
    status2, body2 = await hospital.post("/v1/settlements", resend)
    assert (status1, status2) == (202, 202)
    assert body2["receipt_id"] == body1["receipt_id"]
    assert body2["status"] == "duplicate" and body2["revision"] == 1
    count = await stack.pool.fetchval("SELECT count(*) FROM receipts WHERE setl_id = $1", setl_id)
    assert count == 1


async def test_changed_content_becomes_the_next_revision_and_wins(
    stack: Stack, hospital: Client
) -> None:
    setl_id = f"REV{uuid.uuid4().hex[:10]}"
    _, first = await hospital.post("/v1/settlements", document(setl_id, medcasno="A1"))
    _, second = await hospital.post("/v1/settlements", document(setl_id, medcasno="A2"))
    assert (first["revision"], second["revision"]) == (1, 2)
    assert first["receipt_id"] != second["receipt_id"]
    await wait_stored(hospital, second["receipt_id"])
    row = await stack.pool.fetchrow(
        "SELECT revision, record FROM cases WHERE setl_id = $1", setl_id
    )
    assert row["revision"] == 2
    assert msgspec.json.decode(row["record"])["input"]["setlinfo"]["medcasno"] == "A2"


async def test_concurrent_identical_pushes_resolve_to_one_receipt(hospital: Client) -> None:
    doc = document(f"CON{uuid.uuid4().hex[:10]}")
    results = await asyncio.gather(*(hospital.post("/v1/settlements", doc) for _ in range(8)))
    assert {status for status, _ in results} == {202}
    assert len({body["receipt_id"] for _, body in results}) == 1
    assert sum(body["status"] == "accepted" for _, body in results) == 1


@pytest.mark.parametrize(
    ("body", "rule", "field"),
    [
        (b"{not json", "DEC_JSON", ""),
        (b"[1, 2]", "DEC_SHAPE", ""),
        (
            b'{"fixmedins_code": "H44010000001", "mdtrtarea_admvs": "440100"}',
            "REQ_FIELD",
            "setlinfo.setl_id",
        ),
    ],
)
async def test_bad_uploads_get_422_naming_rule_and_field(
    hospital: Client, body: bytes, rule: str, field: str
) -> None:
    status, answer = await hospital.post("/v1/settlements", body)
    assert status == 422
    errors = answer["errors"]
    assert {(e["rule"], e["field"]) for e in errors} >= {(rule, field)}
    assert all(e["message"] and e["message_en"] and e["severity"] == "reject" for e in errors)


async def test_unknown_receipt_is_404(hospital: Client) -> None:
    for rid in (str(uuid.uuid4()), "not-a-uuid"):
        status, answer = await hospital.get(f"/v1/receipts/{rid}")
        assert status == 404
        assert answer["errors"][0]["rule"] == "NOT_FOUND"
