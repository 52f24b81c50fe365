"""`POST /v1/settlements/validate` and `GET /v1/dictionaries` on the running stack (issue 14,
point 3): the verdict an upload would give, with nothing stored, reserved, sent or counted;
the upload's signature, budgets and refusals; the code sets DICT_VALUE points to."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from gateway.runtime import LocalServices, Stack, running_stack
from gateway.signing import signed_headers
from tests.builders import document
from tests.clock import CLOCK
from tests.conftest import Client, city_client, register_hospital

pytestmark = pytest.mark.integration

VALIDATE = "/v1/settlements/validate"


def _setl() -> str:
    return f"V{uuid.uuid4().hex[:10]}"


def _bad(setl_id: str) -> dict[str, Any]:
    """Two findings: a dictionary value, and a discharge time typed days early with an
    operation after it (a follow-on grouped under the discharge time)."""
    doc = document(setl_id, gend="7")
    sl = doc["input"]["setlinfo"]
    sl["dscg_time"] = sl["adm_time"]  # discharged at admission: the stay's times fall outside
    return doc


async def _messages(stack: Stack) -> dict[str, int]:
    """How many messages the accepted and rejected topics hold (0: not created yet)."""
    topics = [stack.settings.topics.accepted, stack.settings.topics.rejected]
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.bootstrap, group_id=None, enable_auto_commit=False
    )
    await admin.start()
    await consumer.start()
    try:
        out = {}
        for described in await admin.describe_topics(topics):
            partitions = [
                TopicPartition(described["topic"], p["partition"]) for p in described["partitions"]
            ]
            ends = await consumer.end_offsets(partitions) if partitions else {}
            out[described["topic"]] = sum(ends.values())
        assert set(out) == set(topics), out
        return out
    finally:
        await consumer.stop()
        await admin.close()


async def _metrics(stack: Stack) -> dict[str, float]:
    token = await stack.registry.issue_token("metrics", f"scraper-{uuid.uuid4().hex[:6]}")
    status, text, _ = await Client(stack, token=token).request("GET", "/metrics")
    assert status == 200
    body = text.decode() if isinstance(text, bytes) else str(text)
    return {
        name: float(value)
        for line in body.splitlines()
        if line and not line.startswith("#")
        for name, _, value in [line.rpartition(" ")]
    }


def _records(series: dict[str, float]) -> float:
    return sum(v for k, v in series.items() if k.startswith("dipgw_records_total{"))


async def _receipts(stack: Stack, *setl_ids: str) -> int:
    count: int = await stack.pool.fetchval(
        "SELECT count(*) FROM receipts WHERE setl_id = ANY($1::text[])", list(setl_ids)
    )
    return count


async def test_validate_answers_as_an_upload_and_stores_sends_and_counts_nothing(
    stack: Stack, hospital: Client
) -> None:
    bad_id, good_id = _setl(), _setl()
    bad, good = _bad(bad_id), document(good_id)
    sent, metrics = await _messages(stack), await _metrics(stack)

    status, verdict = await hospital.post(VALIDATE, bad)
    assert status == 200, verdict
    assert verdict["valid"] is False and verdict["warnings"] == []
    assert verdict["case_key"] == f"H44010000001:{bad_id}"
    rules = [(e["rule"], e["field"], e.get("caused_by", "")) for e in verdict["errors"]]
    assert ("DICT_VALUE", "setlinfo.gend", "") in rules
    assert "允许值：0 未知的性别、1 男、2 女、9 未说明性别" in verdict["errors"][0]["message"]
    assert any(c == "setlinfo.dscg_time" for _, _, c in rules), rules  # grouped follow-ons
    status, clean = await hospital.post(VALIDATE, good)
    assert status == 200 and clean == {
        "valid": True,
        "case_key": f"H44010000001:{good_id}",
        "errors": [],
        "warnings": [],
    }

    # nothing stored or reserved, nothing sent to either topic, no list counted
    assert await _receipts(stack, bad_id, good_id) == 0
    assert await _messages(stack) == sent
    assert _records(await _metrics(stack)) == _records(metrics)

    # ... and the upload, of the same bodies, says the same, and is seen by the same means
    status, upload = await hospital.post("/v1/settlements", bad)
    assert status == 422 and upload["errors"] == verdict["errors"]
    status, receipt = await hospital.post("/v1/settlements", good)
    assert status == 202 and receipt["case_key"] == clean["case_key"]
    assert "warnings" not in receipt
    assert await _receipts(stack, bad_id, good_id) == 1
    after = await _messages(stack)
    topics = stack.settings.topics
    assert after[topics.accepted] == sent[topics.accepted] + 1
    assert after[topics.rejected] == sent[topics.rejected] + 1
    assert _records(await _metrics(stack)) == _records(metrics) + 2


async def test_warnings_are_the_uploads_warnings(hospital: Client) -> None:
    doc = document(_setl())
    doc["insuplc_admdvs"] = "440100"  # differs from setlinfo.insuplc: INSUPLC_MATCH, a warning
    status, verdict = await hospital.post(VALIDATE, doc)
    assert status == 200 and verdict["valid"] is True, verdict
    assert [w["rule"] for w in verdict["warnings"]] == ["INSUPLC_MATCH"]
    status, receipt = await hospital.post("/v1/settlements", doc)
    assert status == 202 and receipt["warnings"] == verdict["warnings"]


async def test_a_batch_gets_a_verdict_per_record_as_the_batch_upload_would(
    stack: Stack, hospital: Client
) -> None:
    good_id, bad_id = _setl(), _setl()
    records = [document(good_id), _bad(bad_id)]
    status, verdict = await hospital.post(VALIDATE, {"records": records})
    assert status == 200, verdict
    assert (verdict["valid"], verdict["records"], verdict["invalid"]) == (False, 2, 1)
    first, second = verdict["results"]
    assert (first["position"], first["valid"], first["errors"]) == ("records[0]", True, [])
    assert (second["position"], second["valid"]) == ("records[1]", False)
    assert await _receipts(stack, good_id, bad_id) == 0
    status, upload = await hospital.post("/v1/settlements/batch", {"records": records})
    assert status == 200
    assert upload["results"][1]["errors"] == second["errors"]
    assert upload["results"][0]["case_key"] == first["case_key"]


async def test_validate_is_refused_as_an_upload_is(stack: Stack, hospital: Client) -> None:
    doc = document(_setl())
    assert (await Client(stack).post(VALIDATE, doc))[0] == 401
    city = await city_client(stack, "440100")
    status, answer = await city.post(VALIDATE, doc)
    assert (status, answer["errors"][0]["rule"]) == (403, "FORBIDDEN_ROLE")
    foreign = document(_setl(), code="H44030000001", area="440300")
    status, answer = await hospital.post(VALIDATE, foreign)
    assert (status, answer["errors"][0]["rule"]) == (403, "FORBIDDEN_INSTITUTION")
    status, answer = await hospital.post(VALIDATE, doc, content_type="text/csv")
    assert status == 415
    status, answer = await hospital.post(VALIDATE, b"[" * 5000 + b"]" * 5000)
    assert (status, answer["errors"][0]["rule"]) == (422, "JSON_TOO_DEEP")
    status, answer = await hospital.post(VALIDATE, {"records": []})
    assert (status, answer["errors"][0]["rule"]) == (422, "BATCH_EMPTY")
    # one body that is not JSON is a verdict on a list, as the upload's 422 is
    status, answer = await hospital.post(VALIDATE, b"{not json")
    assert status == 200 and answer["valid"] is False
    assert answer["errors"][0]["rule"] == "DEC_JSON"


async def test_a_signed_validate_cannot_be_replayed(stack: Stack, hospital: Client) -> None:
    assert hospital.hospital is not None and hospital.secret is not None
    body = msgspec.json.encode(document(_setl()))
    headers = signed_headers(hospital.hospital, hospital.secret.encode(), "POST", VALIDATE, body)
    headers["Content-Type"] = "application/json"
    statuses = []
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            async with http.post(stack.url + VALIDATE, data=body, headers=headers) as resp:
                statuses.append((resp.status, resp.headers.get("X-Dipgw-Reason")))
    assert statuses == [(200, None), (401, "AUTH_NONCE_REUSED")]


async def test_validating_costs_the_hospitals_budgets(services: LocalServices) -> None:
    """A validate spam is not free: records are charged as for an upload."""
    settings = msgspec.structs.replace(
        services.settings,
        limits=msgspec.structs.replace(services.settings.limits, records_per_s=1, records_burst=5),
    )
    async with running_stack(
        settings, services.bootstrap, services.dsn, workers=(), clock=CLOCK
    ) as small:
        client = await register_hospital(small, "H44010000033", "440100")
        status, answer = await client.post(VALIDATE, {"records": [{} for _ in range(5)]})
        assert status == 200 and answer["invalid"] == 5
        status, answer, headers = await client.request(
            "POST", VALIDATE, msgspec.json.encode(document(_setl(), code="H44010000033"))
        )
        assert (status, answer["errors"][0]["rule"]) == (429, "RATE_LIMITED")
        assert "records" in answer["errors"][0]["message_en"] and int(headers["Retry-After"]) >= 1


async def test_dictionaries_list_their_codes_for_any_caller_who_signs_in(
    stack: Stack, hospital: Client
) -> None:
    status, listing = await hospital.get("/v1/dictionaries")
    assert status == 200
    names = {d["name"]: d for d in listing["dictionaries"]}
    assert names["gend"] == {"name": "gend", "title": "性别", "values": 4}
    assert names["dept"]["values"] > 200 and listing["version"].startswith("1901-")
    city = await city_client(stack, "440300")
    status, gend = await city.get("/v1/dictionaries/gend")
    assert status == 200
    assert gend["values"] == [
        {"value": "0", "label": "未知的性别"},
        {"value": "1", "label": "男"},
        {"value": "2", "label": "女"},
        {"value": "9", "label": "未说明性别"},
    ]
    status, answer = await hospital.get("/v1/dictionaries/no_such_set")
    assert (status, answer["errors"][0]["rule"]) == (404, "NOT_FOUND")
    assert "no_such_set" not in msgspec.json.encode(answer).decode()
    assert (await Client(stack).get("/v1/dictionaries/gend"))[0] == 401
