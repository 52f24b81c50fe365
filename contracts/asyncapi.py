"""The AsyncAPI 3.0 document of every topic dipgw writes, generated from the message types.

One channel per topic (the per-city scored topics are one channel whose address has the
`{admdvs}` parameter), one message per topic with its payload schema (the types'
components, the same generation as `contracts.schemas`), its headers (schema id and version,
content type) and its Kafka key; one `send` operation per channel. Served at
`GET /asyncapi.json` and kept in docs/asyncapi.json (tests keep the file equal to this).

The payload schemas follow the AsyncAPI schema format (a JSON Schema draft-07 superset):
msgspec's fixed-length arrays (`prefixItems`, draft 2020-12) are written as draft-07 tuples.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from contracts.messages import CONTRACT_VERSION, TOPIC_TYPES
from contracts.schemas import (
    CONTENT_TYPE,
    CONTENT_TYPE_HEADER,
    SCHEMA_ID_HEADER,
    SCHEMA_VERSION_HEADER,
    SCHEMA_VERSIONS,
    schema_id,
    schema_type,
    snapshot_name,
)

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"

_CASE_KEY = "the case key `<fixmedins_code>:<setl_id>`: every revision of a case in one partition"

_TOPICS: dict[str, tuple[str, str, str]] = {
    "accepted": (
        "Settlement lists accepted",
        "Every list accepted at the door, with its provenance and the normalised document "
        "(personal fields included: internal to dipgw's workers).",
        _CASE_KEY,
    ),
    "rejected": (
        "Settlement lists rejected",
        "Every list refused at the door, with every rejecting finding and the document "
        "redacted (personal fields masked), for the quality worker and ops.",
        "the case key, or the hospital code (`fixmedins_code`) when no case key was readable",
    ),
    "grouped": (
        "Cases grouped",
        "Accepted cases mapped to their DIP facts and grouped under the treating city's "
        "rules, or marked `unscored` with why (internal).",
        _CASE_KEY,
    ),
    "scored": (
        "Scored cases of one city",
        "One city bureau's scored cases: those treated in the city (role `treating`) and "
        "those of its insured treated elsewhere in the province (role `insured`).",
        _CASE_KEY,
    ),
    "scored_all": (
        "Every scored case",
        "Every scored case once, in its treating role: what the scored sink and "
        "`dipgw rescore` read (internal).",
        _CASE_KEY,
    ),
    "out_of_province": (
        "Out-of-province cases",
        "Copies of the scored cases whose patient is insured in another province (异地就医).",
        _CASE_KEY,
    ),
    "quality_alerts": (
        "Ingestion-quality alerts",
        "One message per ingestion-quality threshold crossed (reject rate, timeliness, "
        "silent hospital, consumer lag).",
        "the hospital code (`fixmedins_code`), or the alert kind for a pipeline alert",
    ),
}


def document(addresses: Mapping[str, str]) -> dict[str, Any]:
    """The AsyncAPI document for these topic names (`TopicSettings` field -> name, the
    scored one with `{admdvs}`)."""
    missing = [t for t in TOPIC_TYPES if t not in _TOPICS]
    if missing:
        raise KeyError(f"topics without a description in contracts.asyncapi: {missing}")
    _, schemas = msgspec.json.schema_components(
        [schema_type(t) for t in sorted(set(TOPIC_TYPES.values()), key=lambda t: t.__name__)],
        ref_template="#/components/schemas/{name}",
    )
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic, kind in TOPIC_TYPES.items():
        title, description, key = _TOPICS[topic]
        messages[topic] = _message(topic, kind.__name__, title, key)
        channel: dict[str, Any] = {
            "address": addresses[topic],
            "title": title,
            "description": description,
            "messages": {topic: {"$ref": f"#/components/messages/{topic}"}},
        }
        if "{admdvs}" in addresses[topic]:
            channel["parameters"] = {
                "admdvs": {
                    "description": "the city's region code (行政区划代码), six digits; "
                    "`all` and `out_of_province` are channels of their own",
                    "examples": ["440100", "440300"],
                }
            }
        channels[topic] = channel
        operations[f"send_{topic}"] = {
            "action": "send",
            "title": f"dipgw writes: {title}",
            "channel": {"$ref": f"#/channels/{topic}"},
            "messages": [{"$ref": f"#/channels/{topic}/messages/{topic}"}],
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:dipgw:asyncapi",
        "info": {
            "title": "dipgw topics",
            "version": CONTRACT_VERSION,
            "description": "The Kafka topics of dipgw, the provincial DIP data-exchange gateway. "
            "Every record is JSON (Decimal as text) keyed as each message says, and carries "
            f"the headers `{SCHEMA_ID_HEADER}` and `{SCHEMA_VERSION_HEADER}` naming its "
            "payload's JSON Schema (contracts/data/schemas/<topic>.v<version>.json) and "
            f"`{CONTENT_TYPE_HEADER}: {CONTENT_TYPE}`. Addresses are the topic names "
            "configured in `[topics]`.",
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"schemas": _draft07(schemas), "messages": messages},
    }


def _message(topic: str, type_name: str, title: str, key: str) -> dict[str, Any]:
    version = SCHEMA_VERSIONS[topic]
    return {
        "name": type_name,
        "title": title,
        "contentType": CONTENT_TYPE,
        "headers": {
            "type": "object",
            "required": [SCHEMA_ID_HEADER, SCHEMA_VERSION_HEADER, CONTENT_TYPE_HEADER],
            "properties": {
                SCHEMA_ID_HEADER: {"type": "string", "const": schema_id(topic)},
                SCHEMA_VERSION_HEADER: {
                    "type": "string",
                    "const": str(version),
                    "description": "the schema version, an integer written in decimal",
                },
                CONTENT_TYPE_HEADER: {"type": "string", "const": CONTENT_TYPE},
            },
        },
        "payload": {"$ref": f"#/components/schemas/{type_name}"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": key},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "externalDocs": {
            "description": f"JSON Schema {schema_id(topic)}:v{version} "
            f"(contracts/data/schemas/{snapshot_name(topic, version)})",
            "url": f"{schema_id(topic)}:v{version}",
        },
    }


def _draft07(node: Any) -> Any:
    """A msgspec schema in draft-07 terms: `prefixItems` + `items: false` become a tuple
    (`items: [...]`, `additionalItems: false`)."""
    if isinstance(node, list):
        return [_draft07(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _draft07(value) for key, value in node.items()}
    if "prefixItems" in out:
        out["additionalItems"] = out.pop("items", True)
        out["items"] = out.pop("prefixItems")
    return out
