"""Every topic's published JSON Schema (issue 14, point 1): one per topic, versioned, kept as a
snapshot in contracts/data/schemas/, and the code may not drift from it in a way that breaks
consumers: such a change fails here until the topic's version is raised and the new version's
snapshot written (`dipgw schemas write`). A compatible change (a new optional field) passes;
`dipgw schemas write` publishes it in the snapshot (and docs/asyncapi.json, whose own test in
tests/gateway/test_asyncapi.py does ask for it)."""

from __future__ import annotations

from importlib import resources

import msgspec
import pytest
from jsonschema import Draft202012Validator

from contracts.messages import ENCODER, TOPIC_TYPES
from contracts.schemas import (
    JSON_SCHEMA_DIALECT,
    SCHEMA_VERSIONS,
    breaking_changes,
    message_headers,
    schema_id,
    snapshot,
    snapshot_name,
    topic_schema,
)
from tests.contracts.test_messages import SAMPLES

TOPICS = sorted(TOPIC_TYPES)
FORMAT_CHECKER = Draft202012Validator.FORMAT_CHECKER  # date-time: rfc3339-validator
REWRITE = "run `dipgw schemas write` (then review and commit contracts/data/schemas/)"


def test_every_topic_has_a_schema_version() -> None:
    assert set(SCHEMA_VERSIONS) == set(TOPIC_TYPES)
    assert all(isinstance(v, int) and v >= 1 for v in SCHEMA_VERSIONS.values())


@pytest.mark.parametrize("topic", TOPICS)
def test_the_code_does_not_break_the_published_schema(topic: str) -> None:
    published = snapshot(topic)
    assert published is not None, f"no {snapshot_name(topic)}: {REWRITE}"
    breaks = breaking_changes(published, topic_schema(topic))
    assert not breaks, (
        f"{topic}: the message type breaks its published schema {snapshot_name(topic)}:\n  "
        + "\n  ".join(map(str, breaks))
        + f"\nraise SCHEMA_VERSIONS[{topic!r}] in contracts/schemas.py and {REWRITE}"
    )


@pytest.mark.parametrize("topic", TOPICS)
def test_every_earlier_version_is_kept(topic: str) -> None:
    for version in range(1, SCHEMA_VERSIONS[topic] + 1):
        assert snapshot(topic, version) is not None, snapshot_name(topic, version)


def test_no_snapshot_is_of_an_unknown_topic_or_version() -> None:
    names = {p.name for p in resources.files("contracts").joinpath("data/schemas").iterdir()}
    expected = {snapshot_name(t, v) for t in TOPIC_TYPES for v in range(1, SCHEMA_VERSIONS[t] + 1)}
    assert names == expected


@pytest.mark.parametrize("topic", TOPICS)
def test_a_snapshot_is_a_2020_12_schema_named_by_its_id_and_version(topic: str) -> None:
    published = snapshot(topic)
    assert published is not None
    assert published["$schema"] == JSON_SCHEMA_DIALECT
    assert published["$id"] == f"urn:dipgw:schema:{topic}:v{SCHEMA_VERSIONS[topic]}"
    Draft202012Validator.check_schema(published)


@pytest.mark.parametrize("topic", TOPICS)
def test_messages_validate_against_their_snapshot_and_broken_ones_do_not(topic: str) -> None:
    published = snapshot(topic)
    assert published is not None
    validator = Draft202012Validator(published, format_checker=FORMAT_CHECKER)
    message = msgspec.json.decode(ENCODER.encode(SAMPLES[topic]))
    assert list(validator.iter_errors(message)) == []
    moment = "received_at" if "received_at" in message else "raised_at"
    naive = {**message, moment: message[moment][:19]}  # a moment without its offset
    assert [e.validator for e in validator.iter_errors(naive)] == ["format"]
    first_required = published["$defs"][TOPIC_TYPES[topic].__name__]["required"][0]
    del message[first_required]
    assert [e.validator for e in validator.iter_errors(message)] == ["required"]


def test_the_headers_name_the_schema() -> None:
    assert message_headers("scored") == [
        ("dipgw-schema-id", b"urn:dipgw:schema:scored"),
        ("dipgw-schema-version", str(SCHEMA_VERSIONS["scored"]).encode()),
        ("content-type", b"application/json"),
    ]
    assert schema_id("quality_alerts") == "urn:dipgw:schema:quality_alerts"
    with pytest.raises(KeyError, match="no topic 'nope'"):
        schema_id("nope")
