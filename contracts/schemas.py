"""The published JSON Schema of every topic's messages, versioned, with the Kafka headers
that name it.

Each topic (by its `TopicSettings` field, as in `contracts.messages.TOPIC_TYPES`) has a schema
id (`urn:dipgw:schema:<topic>`) and an integer version. The schema is generated from the
topic's message type (msgspec, JSON Schema 2020-12); each version's schema is kept as a
snapshot in `contracts/data/schemas/<topic>.v<version>.json` (`$id`: the id with
`:v<version>`), the file a consumer validates with. tests/contracts/test_schemas.py fails when
the generated schema breaks its version's snapshot (`contracts._schemacompat`): such a change
needs the next version and a new snapshot (`dipgw schemas write`). Every record dipgw
produces carries the id and version in its headers (`adapters.runtime.kafka.new_producer`).
"""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Annotated, Any

import msgspec

from contracts._schemacompat import Break, BreakKind, breaking_changes
from contracts.messages import TOPIC_TYPES

__all__ = [
    "CONTENT_TYPE",
    "CONTENT_TYPE_HEADER",
    "JSON_SCHEMA_DIALECT",
    "SCHEMA_ID_HEADER",
    "SCHEMA_VERSIONS",
    "SCHEMA_VERSION_HEADER",
    "Break",
    "BreakKind",
    "breaking_changes",
    "message_headers",
    "schema_id",
    "schema_json",
    "schema_type",
    "snapshot",
    "snapshot_name",
    "topic_schema",
]

SCHEMA_VERSIONS: dict[str, int] = {
    "accepted": 1,
    "rejected": 1,
    "grouped": 1,
    "scored": 1,
    "scored_all": 1,
    "out_of_province": 1,
    "quality_alerts": 1,
}
"""The schema version in force for each topic: raise it (and write its snapshot) for a
change that breaks consumers; the older snapshots stay for those still reading them."""

SCHEMA_ID_HEADER = "dipgw-schema-id"
SCHEMA_VERSION_HEADER = "dipgw-schema-version"
CONTENT_TYPE_HEADER = "content-type"
CONTENT_TYPE = "application/json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_id(topic: str) -> str:
    """The id of a topic's schema, the same for all its versions."""
    if topic not in TOPIC_TYPES:
        raise KeyError(f"no topic {topic!r}: one of {', '.join(TOPIC_TYPES)}")
    return f"urn:dipgw:schema:{topic}"


def snapshot_name(topic: str, version: int | None = None) -> str:
    """The file name of a version's snapshot (the version in force by default)."""
    return f"{topic}.v{SCHEMA_VERSIONS[topic] if version is None else version}.json"


MOMENT = Annotated[datetime, msgspec.Meta(extra_json_schema={"format": "date-time"})]
"""A moment as the schemas describe it: msgspec writes a datetime as a bare string; every
moment on a topic is RFC 3339 with its offset (`contracts.messages`), so it says so."""


def schema_type(kind: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """`kind` as the schemas describe it, a twin with the same name, fields, order and
    docstring: a field carrying raw JSON (`msgspec.Raw`, any JSON value) has a Raw default,
    which msgspec's schema generation cannot write, so the twin has `Any` there and the
    default decoded; a moment (`datetime`) is a `date-time` string."""
    fields = msgspec.structs.fields(kind)
    twin_fields: list[tuple[str, Any, Any]] = []
    for f in fields:
        default: Any = msgspec.NODEFAULT
        if isinstance(f.default, msgspec.Raw):
            default = msgspec.field(default=msgspec.json.decode(f.default))
        elif f.default is not msgspec.NODEFAULT:
            default = msgspec.field(default=f.default)
        elif f.default_factory is not msgspec.NODEFAULT:
            default = msgspec.field(default_factory=f.default_factory)
        kind_of: Any = Any if isinstance(f.default, msgspec.Raw) else f.type
        if f.type is datetime:
            kind_of = MOMENT
        elif f.type == datetime | None:
            kind_of = MOMENT | None
        twin_fields.append((f.encode_name, kind_of, default))
    if all(t is f.type for (_, t, _), f in zip(twin_fields, fields, strict=True)):
        return kind
    twin = msgspec.defstruct(
        kind.__name__,
        [(name, tp) if d is msgspec.NODEFAULT else (name, tp, d) for name, tp, d in twin_fields],
        kw_only=True,
    )
    twin.__doc__ = kind.__doc__
    return twin


def topic_schema(topic: str) -> dict[str, Any]:
    """The JSON Schema of a topic's messages as the code writes them now."""
    generated = msgspec.json.schema(schema_type(TOPIC_TYPES[topic]))
    schema = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{schema_id(topic)}:v{SCHEMA_VERSIONS[topic]}",
        **generated,
    }
    plain: dict[str, Any] = json.loads(json.dumps(schema))  # as read back (a tuple default)
    return plain


def schema_json(schema: dict[str, Any]) -> str:
    """How a snapshot is written: stable, readable, Chinese kept as is."""
    return json.dumps(schema, ensure_ascii=False, indent=2) + "\n"


def snapshot(topic: str, version: int | None = None) -> dict[str, Any] | None:
    """A committed snapshot (the version in force by default); None when there is none."""
    path = resources.files("contracts").joinpath("data/schemas", snapshot_name(topic, version))
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def message_headers(topic: str) -> list[tuple[str, bytes]]:
    """The Kafka headers of every record of a topic: its schema id and version, and JSON."""
    return [
        (SCHEMA_ID_HEADER, schema_id(topic).encode()),
        (SCHEMA_VERSION_HEADER, str(SCHEMA_VERSIONS[topic]).encode()),
        (CONTENT_TYPE_HEADER, CONTENT_TYPE.encode()),
    ]
