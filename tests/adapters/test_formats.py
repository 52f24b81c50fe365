"""One registry of feed formats (adapters.FORMATS): the file endpoint's content types, the
checker, `dipgw validate` and /openapi.json all follow it, and a new format is one entry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapters import FORMATS, FeedFormat, FormatRegistry, decode_envelope
from adapters._formats import _write_ndjson
from gateway import openapi, routes_ingest
from gateway.checks import Checked, Checker, Rejected
from tests.builders import DELETE, golden, mutate
from tests.commands import run

RECEIVED = "2026-11-24T09:30:00+08:00"
NOW = datetime.fromisoformat(RECEIVED)
CHECKER = Checker()


def _docs() -> list[dict[str, Any]]:
    second = golden()
    second["input"]["setlinfo"]["setl_id"] = "SETL000000000002"
    bad = mutate(golden(), input__setlinfo__setl_id="SETL000000000003", mdtrtarea_admvs=DELETE)
    return [golden(), bad, second]


def _everywhere(fmt: FeedFormat, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`fmt` is accepted by every consumer of the registry, and reads what it writes."""
    body = fmt.write(_docs())
    # the file endpoint's content-type table
    for media_type in fmt.media_types:
        assert routes_ingest._FILE_TYPES.by_media_type(media_type) is fmt
    # the checker the endpoint hands the body to
    checked = CHECKER.check_many(body, fmt.name, NOW, max_records=10)
    assert [type(c) for c in checked] == [Checked, Rejected, Checked]
    assert [c.upload.setl_id for c in checked if isinstance(c, Checked)] == [
        "SETL000000000001",
        "SETL000000000002",
    ]
    # /openapi.json: every media type of the format on the file endpoint
    spec = json.loads(openapi.document_bytes())
    content = spec["paths"]["/v1/settlements/file"]["post"]["requestBody"]["content"]
    for media_type in fmt.media_types:
        assert media_type in content
        assert content[media_type]["schema"]["type"] == "string"
    # `dipgw validate`: by each extension, and by --format
    for i, extension in enumerate(fmt.extensions):
        path = tmp_path / f"upload{i}{extension}"
        path.write_bytes(body)
        assert run(["validate", str(path), "--json", "--received-at", RECEIVED]) == 1
        report = json.loads(capsys.readouterr().out)
        assert [r["accepted"] for r in report["records"]] == [True, False, True]
        assert report["records"][1]["errors"]
    forced = tmp_path / "upload.unknown-extension"
    forced.write_bytes(body)
    args = ["validate", str(forced), "--json", "--format", fmt.name, "--received-at", RECEIVED]
    assert run(args) == 1
    assert json.loads(capsys.readouterr().out)["summary"]["records"] == 3


@pytest.mark.parametrize("name", FORMATS.names())
def test_every_registered_format_is_accepted_everywhere(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fmt = FORMATS.get(name)
    assert fmt is not None
    _everywhere(fmt, tmp_path, capsys)


def test_the_built_in_formats() -> None:
    assert set(FORMATS.names()) >= {"json", "ndjson", "csv", "xlsx"}
    spec = json.loads(openapi.document_bytes())
    content = spec["paths"]["/v1/settlements/file"]["post"]["requestBody"]["content"]
    # nothing on the endpoint the registry does not declare
    assert set(content) == set(FORMATS.media_types())
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert content[xlsx]["schema"]["format"] == "binary"


# -- a new format is one registry entry -----------------------------------------------------

RS = b"\x1e"


def _split_json_seq(data: bytes) -> Iterator[tuple[str, bytes]]:
    """RFC 7464 JSON text sequences: each record after an RS (0x1E)."""
    for number, part in enumerate(data.split(RS)[1:], start=1):
        if part.strip():
            yield f"record {number}", part.strip()


JSON_SEQ = FeedFormat(
    name="json-seq",
    media_types=("application/json-seq",),
    extensions=(".json-seq",),
    read=lambda data, validator, mapping=None: (
        decode_envelope(raw, position=pos, validator=validator)
        for pos, raw in _split_json_seq(data)
    ),
    write=lambda docs: b"".join(RS + line for line in _write_ndjson(docs).splitlines(True)),
    split=_split_json_seq,
    title="RFC 7464 JSON text sequence",
)


def test_adding_a_format_is_one_registry_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert FORMATS.get("json-seq") is None
    assert routes_ingest._FILE_TYPES.by_media_type("application/json-seq") is None
    with FORMATS.extended(JSON_SEQ):
        _everywhere(JSON_SEQ, tmp_path, capsys)
    # gone again: the endpoint, the checker and validate no longer know it
    assert routes_ingest._FILE_TYPES.by_media_type("application/json-seq") is None
    with pytest.raises(Rejected):
        CHECKER.check_many(RS + b"{}", "json-seq", NOW, max_records=10)
    spec = json.loads(openapi.document_bytes())
    assert (
        "application/json-seq"
        not in spec["paths"]["/v1/settlements/file"]["post"]["requestBody"]["content"]
    )


def test_the_registry_refuses_clashes_and_incomplete_formats() -> None:
    registry = FormatRegistry(FORMATS)
    ndjson = FORMATS.get("ndjson")
    assert ndjson is not None
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ndjson)
    with pytest.raises(ValueError, match="already belong to ndjson"):
        registry.register(FeedFormat("lines", ("application/jsonl",), (".lines",), ndjson.read,
                                     ndjson.write))  # fmt: skip
    with pytest.raises(ValueError, match="already belong to csv"):
        registry.register(FeedFormat("csv2", ("text/x-csv",), (".csv",), ndjson.read,
                                     ndjson.write))  # fmt: skip
    with pytest.raises(ValueError):
        FeedFormat("bare", (), (".bare",), ndjson.read, ndjson.write)
    with pytest.raises(ValueError, match="extensions"):
        FeedFormat("upper", ("text/x-upper",), ("UP",), ndjson.read, ndjson.write)


def test_media_types_are_matched_case_insensitively() -> None:
    assert routes_ingest._FILE_TYPES.by_media_type("Text/CSV") is FORMATS.get("csv")
