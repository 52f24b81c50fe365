"""NDJSON files and streams: positions are line numbers; a bad line is one record."""

from __future__ import annotations

import io

import msgspec

from adapters import iter_ndjson
from tests.builders import RECEIVED, golden, mutate


def _lines() -> bytes:
    good = msgspec.json.encode(golden())
    bad = msgspec.json.encode(mutate(golden(), input__setlinfo__gend="x"))
    return b"\n".join([good, b"", b"{broken", bad, b"\xff\xfe", good]) + b"\n"


def test_stream_of_bytes() -> None:
    records = list(iter_ndjson(io.BytesIO(_lines())))
    assert [r.position for r in records] == ["line 1", "line 3", "line 4", "line 5", "line 6"]
    assert [r.envelope is not None for r in records] == [True, False, True, False, True]
    assert [e.rule for e in records[1].errors] == ["DEC_JSON"]
    assert [e.rule for e in records[3].errors] == ["DEC_JSON"]  # not UTF-8


def test_lines_of_text_and_validation() -> None:
    text = _lines().decode("utf-8", "replace").splitlines()
    records = list(iter_ndjson(text, validate=True, received_at=RECEIVED))
    assert [r.accepted for r in records] == [True, False, False, False, True]
    assert [e.field for e in records[2].errors] == ["setlinfo.gend"]


def test_empty_input() -> None:
    assert list(iter_ndjson([])) == []
    assert list(iter_ndjson(io.BytesIO(b"\n\n"))) == []
