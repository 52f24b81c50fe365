"""Every topic's messages validate against their published JSON Schema (issue 14, point 1):
a run through the real gateway, Kafka, workers and PostgreSQL that writes to every topic —
accepted, rejected, grouped, two cities' scored topics (one case scored, one cross-city, one
without rules: unscored), scored_all, out_of_province and quality_alerts — read back with a
plain aiokafka consumer (not dipgw's consumer code) and each message checked with the
`jsonschema` library against contracts/data/schemas/<topic>.v<version>.json, named by its
headers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer
from jsonschema import Draft202012Validator

from adapters.runtime.settings import QualitySettings
from contracts.schemas import (
    SCHEMA_ID_HEADER,
    SCHEMA_VERSION_HEADER,
    message_headers,
    snapshot,
)
from gateway.runtime import Stack
from tests.builders import (
    dip_document,
    document,
    new_code,
    push,
    wait_received,
    wait_scored,
)
from tests.clock import now as clock_now
from tests.conftest import register_hospital
from workers.quality_alerts import evaluate_once

pytestmark = pytest.mark.integration


async def _read(
    bootstrap: str, topic: str, mine: Callable[[str], bool], expect: int
) -> list[tuple[bytes, list[tuple[str, bytes]]]]:
    """(value, headers) of the records of `topic` whose key is this run's, from the start,
    until `expect` are seen (or 30 s pass: the count is then asserted by the caller)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[tuple[bytes, list[tuple[str, bytes]]]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while len(found) < expect and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for record in records:
                    if record.key is not None and mine(record.key.decode()):
                        found.append((record.value or b"", list(record.headers)))
    finally:
        await consumer.stop()
    return found


async def test_every_topic_message_validates_against_its_published_schema(
    stack: Stack, rules: dict[str, Any]
) -> None:
    gz_code, zh_code = new_code(), "H4404" + new_code()[5:]
    gz = await register_hospital(stack, gz_code, "440100")
    zh = await register_hospital(stack, zh_code, "440400")  # 440400 has no DIP rules
    same = dip_document(code=gz_code)
    same["input"]["setlinfo"]["poscode"] = "5100"  # FMT_POSCODE: accepted with a warning
    cross = dip_document(code=gz_code, insured="440300", total="25000.00", insutype="390")
    away = dip_document(code=gz_code, insured="110105", diag="J18.900", oprn=None)
    unruled = dip_document(code=zh_code, area="440400", insured="440100")
    await push(gz, same, cross, away)
    await push(zh, unruled)
    refused = document(f"SR{gz_code[-7:]}", code=gz_code, medfee_sumamt=None)
    status, body = await gz.post("/v1/settlements", refused)
    assert status == 422, body
    cases = {(gz_code, d["input"]["setlinfo"]["setl_id"]): 1 for d in (same, cross, away)}
    cases[(zh_code, unruled["input"]["setlinfo"]["setl_id"])] = 1
    await wait_scored(stack.pool, cases)
    # One rejected list of four: a reject-rate alert for this hospital.
    await wait_received(stack.pool, gz_code, 4)
    limits = QualitySettings(min_records=2, reject_rate_max=0.1)
    topic = stack.settings.topics.quality_alerts
    raised = await evaluate_once(stack.pool, stack.producer, topic, limits, clock_now())
    assert any(a["fixmedins_code"] == gz_code for a in raised)

    t = stack.settings.topics

    def ours(key: str) -> bool:
        return key.startswith((gz_code, zh_code))

    expected: list[tuple[str, str, int]] = [  # (topic field, topic name, messages of this run)
        ("accepted", t.accepted, 4),
        ("rejected", t.rejected, 1),
        ("grouped", t.grouped, 4),
        ("scored", t.scored.format(admdvs="440100"), 3),  # treating
        ("scored", t.scored.format(admdvs="440300"), 1),  # insured (cross-city)
        ("scored", t.scored.format(admdvs="440400"), 1),  # unscored: no rules
        ("scored_all", t.scored_all, 4),
        ("out_of_province", t.out_of_province, 1),
        ("quality_alerts", t.quality_alerts, 1),
    ]
    checked: dict[str, int] = {}
    statuses: set[str] = set()
    warnings: list[dict[str, str]] = []
    for field, name, count in expected:
        published = snapshot(field)
        assert published is not None, field
        validator = Draft202012Validator(
            published, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        records = await _read(stack.bootstrap, name, ours, count)
        assert len(records) >= count, (name, len(records))
        for value, headers in records:
            assert headers == message_headers(field), (name, headers)
            named = dict(headers)  # the file a consumer would pick by the headers
            version = named[SCHEMA_VERSION_HEADER].decode()
            assert published["$id"] == f"{named[SCHEMA_ID_HEADER].decode()}:v{version}"
            message = msgspec.json.decode(value)
            errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(message)]
            assert errors == [], (name, errors)
            if field == "scored_all":
                statuses.add(message["status"])
            if field == "accepted":  # a finding of its own leaves caused_by out, as errors do
                warnings.extend(message["warnings"])
        checked[name] = len(records)
    assert statuses == {"scored", "unscored"}, "both shapes of a scored case were checked"
    assert warnings and all(w.get("caused_by", "-") for w in warnings), warnings
    assert len(checked) == len(expected)
