"""The AsyncAPI 3.0 document of the topics (issue 14, point 1): generated from the message
types, kept equal to docs/asyncapi.json, valid against the official AsyncAPI 3.0.0 JSON
Schema, and served at GET /asyncapi.json without credentials.

asyncapi-3.0.0.schema.json beside this file is `schemas/3.0.0-without-$id.json` of the npm
package @asyncapi/specs 6.11.1 (Apache-2.0), the AsyncAPI Initiative's own JSON Schema of
the 3.0.0 document (no PyPI package carries it); kept here so the check runs offline.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest
from jsonschema import Draft7Validator

from contracts.messages import ENCODER, TOPIC_TYPES
from contracts.schemas import message_headers, snapshot_name
from gateway import asyncapi
from gateway.commands import schemas as schemas_command
from gateway.runtime import Stack
from tests.conftest import Client
from tests.contracts.test_messages import SAMPLES

ROOT = Path(__file__).parents[2]
OFFICIAL = Path(__file__).with_name("asyncapi-3.0.0.schema.json")


def official() -> Draft7Validator:
    return Draft7Validator(json.loads(OFFICIAL.read_text(encoding="utf-8")))


def test_docs_asyncapi_json_is_the_generated_document() -> None:
    committed = (ROOT / "docs" / "asyncapi.json").read_text(encoding="utf-8")
    assert committed == asyncapi.document_text(), "run `dipgw schemas write` and commit docs/"


def test_the_document_is_valid_asyncapi_3() -> None:
    document = asyncapi.document()
    assert document["asyncapi"] == "3.0.0"
    assert [e.message for e in official().iter_errors(document)] == []


def test_the_official_schema_refuses_a_broken_document() -> None:
    """The validation above can fail: an AsyncAPI 2 verb and an address that is not text."""
    document = asyncapi.document()
    document["operations"]["send_accepted"]["action"] = "publish"
    document["channels"]["grouped"]["address"] = 5
    assert len(list(official().iter_errors(document))) == 2


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_reference_resolves() -> None:
    """The official schema checks shapes, not that a `$ref` leads anywhere."""
    document = asyncapi.document()
    refs = _refs(document)
    assert refs
    for ref in refs:
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict), ref


def test_every_topic_is_a_channel_with_its_message_headers_and_key() -> None:
    document = asyncapi.document()
    assert set(document["channels"]) == set(TOPIC_TYPES)
    assert set(document["operations"]) == {f"send_{t}" for t in TOPIC_TYPES}
    for topic, kind in TOPIC_TYPES.items():
        message = document["components"]["messages"][topic]
        assert message["payload"] == {"$ref": f"#/components/schemas/{kind.__name__}"}
        headers = message["headers"]["properties"]
        assert {name: headers[name]["const"].encode() for name in headers} == dict(
            message_headers(topic)
        )
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        assert snapshot_name(topic) in message["externalDocs"]["description"]
    scored = document["channels"]["scored"]
    assert scored["address"] == "dip.case.scored.{admdvs}.v1"
    assert set(scored["parameters"]) == {"admdvs"}
    assert [t for t, c in document["channels"].items() if "parameters" in c] == ["scored"]
    assert document["channels"]["scored_all"]["address"] == "dip.case.scored.all.v1"


def _payload_validator(document: dict[str, Any], topic: str) -> Draft7Validator:
    """The message's payload schema, its references resolved within the document."""
    payload = document["components"]["messages"][topic]["payload"]
    return Draft7Validator({"components": document["components"], **payload})


@pytest.mark.parametrize("topic", sorted(TOPIC_TYPES))
def test_the_payload_schemas_validate_messages_as_draft_07(topic: str) -> None:
    document = asyncapi.document()
    validator = _payload_validator(document, topic)
    message = msgspec.json.decode(ENCODER.encode(SAMPLES[topic]))
    assert list(validator.iter_errors(message)) == []
    message["received_at" if "received_at" in message else "raised_at"] = 20260301
    assert [e.validator for e in validator.iter_errors(message)] == ["type"]


def test_fixed_length_pairs_are_draft_07_tuples() -> None:
    """msgspec writes (code, class) pairs as 2020-12 `prefixItems`; the AsyncAPI schema
    format is draft-07, where they must be `items: [...]` with `additionalItems: false`."""
    document = asyncapi.document()
    operations = document["components"]["schemas"]["CaseFacts"]["properties"]["operations"]
    assert operations["items"]["additionalItems"] is False
    validator = _payload_validator(document, "grouped")
    message = msgspec.json.decode(ENCODER.encode(SAMPLES["grouped"]))
    assert message["facts"]["operations"], "the sample must carry a pair"
    message["facts"]["operations"][0].append("extra")
    (error,) = validator.iter_errors(message)  # facts: CaseFacts or null
    assert "additionalItems" in {cause.validator for cause in error.context}


def _schemas_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="dipgw")
    schemas_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["schemas", *argv])
    return int(args.func(args))


def test_schemas_write_refuses_a_breaking_change_unless_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for part in ("contracts/data/schemas", "docs"):
        shutil.copytree(ROOT / part, tmp_path / part)
    published = tmp_path / "contracts/data/schemas" / snapshot_name("quality_alerts")
    schema = json.loads(published.read_text(encoding="utf-8"))
    schema["$defs"]["QualityAlert"]["properties"]["severity"] = {"type": "string"}
    published.write_text(json.dumps(schema), encoding="utf-8")
    (tmp_path / "docs" / "asyncapi.json").write_text("{}", encoding="utf-8")

    assert _schemas_cli("check", "--root", str(tmp_path)) == 1
    out = capsys.readouterr().out
    assert "$.severity: removed: field removed" in out
    assert "docs/asyncapi.json: out of date" in out

    assert _schemas_cli("write", "--root", str(tmp_path)) == 1
    assert "severity" in published.read_text(encoding="utf-8")  # left as it is
    assert (tmp_path / "docs/asyncapi.json").read_text() == asyncapi.document_text()

    assert _schemas_cli("write", "--rewrite", "--root", str(tmp_path)) == 0
    assert "severity" not in published.read_text(encoding="utf-8")
    assert _schemas_cli("check", "--root", str(tmp_path)) == 0


@pytest.mark.integration
async def test_get_asyncapi_json_is_public_and_described_in_openapi(stack: Stack) -> None:
    status, body, headers = await Client(stack).request("GET", "/asyncapi.json")
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    assert body == json.loads(asyncapi.document_text())
    status, spec, _ = await Client(stack).request("GET", "/openapi.json")
    assert status == 200
    operation = spec["paths"]["/asyncapi.json"]["get"]
    assert operation["operationId"] == "getAsyncApi" and operation["security"] == []


async def test_the_served_document_names_the_configured_topics() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from adapters.runtime.settings import TopicSettings

    renamed = TopicSettings(
        accepted="gd.settlement.accepted.v1", scored="gd.case.scored.{admdvs}.v1"
    )
    app = web.Application()
    asyncapi.add_routes(app, renamed)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/asyncapi.json")
        assert resp.status == 200
        served = await resp.json()
    addresses = {c["address"] for c in served["channels"].values()}
    assert {"gd.settlement.accepted.v1", "gd.case.scored.{admdvs}.v1"} <= addresses
    assert "dip.settlement.accepted.v1" not in addresses
    assert "dip.settlement.rejected.v1" in addresses  # not renamed: the default
