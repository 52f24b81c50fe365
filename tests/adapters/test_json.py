"""National JSON envelopes: one document, or a batch; one bad record never sinks the rest."""

from __future__ import annotations

import msgspec

from adapters import decode_and_validate, decode_batch, decode_envelope, split_batch
from contracts import Envelope
from tests.builders import RECEIVED, golden, mutate


def _raw(doc: object) -> bytes:
    return msgspec.json.encode(doc)


def test_single_envelope() -> None:
    rec = decode_envelope(_raw(golden()))
    assert rec.position == "document" and isinstance(rec.envelope, Envelope) and rec.errors == []
    assert rec.accepted


def test_single_bad_json() -> None:
    rec = decode_envelope(b'{"infno": ')
    assert rec.envelope is None and [e.rule for e in rec.errors] == ["DEC_JSON"]
    assert not rec.accepted


def test_decode_and_validate_is_the_hot_path() -> None:
    ok = decode_and_validate(_raw(golden()), received_at=RECEIVED)
    assert ok.accepted and ok.errors == []
    bad = decode_and_validate(
        _raw(mutate(golden(), input__setlinfo__gend="x")), received_at=RECEIVED
    )
    assert not bad.accepted and [e.field for e in bad.errors] == ["setlinfo.gend"]


def test_batch_array_with_bad_records_in_the_middle() -> None:
    good = golden()
    raw = (
        b"["
        + b",".join(
            [
                _raw(good),
                b'"not an object"',
                _raw(mutate(good, input__setlinfo__nwb_age="x")),
                _raw(good),
            ]
        )
        + b"]"
    )
    records = decode_batch(raw)
    assert [r.position for r in records] == ["records[0]", "records[1]", "records[2]", "records[3]"]
    assert [r.envelope is not None for r in records] == [True, False, False, True]
    assert [e.rule for e in records[1].errors] == ["DEC_SHAPE"]
    assert [(e.rule, e.field) for e in records[2].errors] == [("DEC_TYPE", "setlinfo.nwb_age")]


def test_batch_wrapped_in_records() -> None:
    raw = _raw({"records": [golden(), golden()]})
    assert [r.position for r in decode_batch(raw)] == ["records[0]", "records[1]"]
    assert [pos for pos, _ in split_batch(raw)] == ["records[0]", "records[1]"]


def test_unreadable_batch() -> None:
    [rec] = decode_batch(b"[{")
    assert rec.position == "batch" and [e.rule for e in rec.errors] == ["DEC_JSON"]
    [rec] = decode_batch(b'{"other": 1}')
    assert rec.position == "batch" and [e.rule for e in rec.errors] == ["DEC_SHAPE"]


def test_timestamps_keep_their_error_when_decoding() -> None:
    rec = decode_envelope(_raw(mutate(golden(), input__setlinfo__adm_time="yesterday")))
    assert rec.envelope is not None and rec.envelope.input.setlinfo.adm_time is None
    assert [(e.rule, e.field) for e in rec.errors] == [("FMT_DATETIME", "setlinfo.adm_time")]
