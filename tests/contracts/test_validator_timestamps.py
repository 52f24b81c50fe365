"""Records the strict types refuse (unreadable or unusual timestamps, refused text values):
`validate_json` against the lenient engine.

The lenient engine (`Validator.decode`: every field as text, `to_canonical` converting each
timestamp, then `validate_decoded`) is the reference for what such a record means. The hot
path reaches the same result other ways (issue 12: re-decoding only the failing fields, the
strict types with them unconstrained and the fast path's checks), so these tests pin it to
the reference *exactly*: same findings (rule, field, messages, severity) in the same order,
and the same record.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import RuleConfig, ValidationError, Validator
from contracts._fastpath import relaxed_decoder, relaxed_envelope_type
from contracts._fields import LIST_NODES, fields_of
from contracts._rulebook import Override
from contracts.samples import make_settlement
from tests.builders import golden, legacy_golden

V = Validator()
NOW = datetime(2026, 11, 24, 9, 30)

#: (node, field, kind) of every timestamp of the contract
TEMPORAL = [
    (node, s.field, s.type)
    for node in ("envelope", "setlinfo", *LIST_NODES)
    for s in fields_of(node)
    if s.type in ("date", "datetime")
]

#: texts a HIS sends in timestamp fields: national, RFC 3339, offsets, bare dates, and
#: the malformed ones (separators, impossible values, overflow in CST, full-width digits)
ODD_TEXTS = [
    "2026/11/12 10:30",
    "2026-11-12 10:30",
    "2026-13-01 00:00:00",
    "2026-11-31",
    "2026-11-12 25:00:00",
    "2026-11-12 10:30:60",
    "2026-11-12T10:30:00",
    "2026-11-12t10:30:00",
    "2026-11-12 10:30:00",
    "2026-11-12T10:30:00.250",
    "2026-11-12T10:30:00Z",
    "2026-11-12T02:30:00+00:00",
    "2026-11-12T10:30:00+08:00",
    "9999-12-31T23:00:00-08:00",
    "0001-01-01T00:00:00+08:00",
    "2026-11-12",
    "20261112",
    "２０２６-11-12",
    "2026-11-12 10:30:00 ",
    "x",
    "",
    " ",
]
VALUES: Any = st.one_of(
    st.sampled_from(ODD_TEXTS),
    st.none(),
    st.text(alphabet="0123456789-:T /Z+.", max_size=26),
    st.integers(min_value=-5, max_value=2_000_000_000),  # a wrong JSON type: DEC_TYPE
)


def _reference(
    v: Validator, raw: bytes, received_at: datetime | None
) -> tuple[Any, list[ValidationError]]:
    """The lenient engine: decode everything as text, convert, validate."""
    envelope, errors = v.decode(raw)
    if envelope is None:
        return None, errors
    return envelope, v.validate_decoded(envelope, errors, received_at=received_at)


def _same_as_lenient(
    raw: bytes, v: Validator = V, received_at: datetime | None = NOW
) -> list[ValidationError]:
    """`validate_json` gives the lenient engine's findings, in its order, and its record."""
    envelope, found = v.validate_json(raw, received_at=received_at)
    expected_env, expected = _reference(v, raw, received_at)
    assert found == expected
    assert msgspec.json.encode(envelope) == msgspec.json.encode(expected_env)
    return found


def _set(doc: dict[str, Any], node: str, index: int, field: str, value: Any) -> bool:
    """Put `value` in one timestamp field; False when the list has no such entry."""
    if node == "envelope":
        doc[field] = value
        return True
    if node == "setlinfo":
        doc["input"]["setlinfo"][field] = value
        return True
    entries = doc["input"].get(node) or []
    if not entries:
        return False
    entries[index % len(entries)][field] = value
    return True


def _base(seed: int) -> dict[str, Any]:
    if seed % 4 == 0:
        return golden()
    if seed % 4 == 1:
        return legacy_golden()
    rng = random.Random(seed)
    return make_settlement(rng, infno="4101" if seed % 3 == 0 else "4101A", now=NOW)


@pytest.mark.parametrize(("node", "field", "kind"), TEMPORAL)
@pytest.mark.parametrize("text", ["2026/11/12 10:30", "2026-11-12T10:30:00+08:00", ""])
def test_each_timestamp_field_alone(node: str, field: str, kind: str, text: str) -> None:
    """One odd timestamp in each field of the contract (every entry of a list node)."""
    del kind
    for seed in (0, 2, 3):
        entries = len(_base(seed)["input"].get(node) or [None]) if node in LIST_NODES else 1
        for i in range(entries):
            doc = _base(seed)
            if not _set(doc, node, i, field, text):
                continue
            found = _same_as_lenient(msgspec.json.encode(doc))
            if text == "2026/11/12 10:30":
                assert any(e.rule == "FMT_DATETIME" for e in found)


def test_the_bench_record_reports_one_unreadable_timestamp() -> None:
    """The bench's with-findings kind (`_bad_timestamp`): one FMT_DATETIME on its path."""
    doc = make_settlement(random.Random(7), now=NOW)
    doc["input"]["oprninfo"][1]["oprn_oprt_endtime"] = "2026/11/12 10:30"
    found = _same_as_lenient(msgspec.json.encode(doc))
    bad = [e for e in found if e.rule == "FMT_DATETIME"]
    assert [e.field for e in bad] == ["oprninfo[1].oprn_oprt_endtime"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=40),
    edits=st.lists(
        st.tuples(st.sampled_from(TEMPORAL), st.integers(min_value=0, max_value=7), VALUES),
        min_size=1,
        max_size=6,
    ),
    other=st.sampled_from(
        [None, ("medcasno", "B" * 41), ("adm_way", "x"), ("psn_name", ""), ("age", "many")]
    ),
)
def test_odd_timestamps_give_the_lenient_findings(
    seed: int, edits: list[tuple[tuple[str, str, str], int, Any]], other: tuple[str, str] | None
) -> None:
    """Any mix of odd timestamps (several fields, several entries, wrong JSON types), with
    or without another finding on the record, reports what the lenient engine reports."""
    doc = _base(seed)
    for (node, field, _kind), index, value in edits:
        _set(doc, node, index, field, value)
    if other is not None:
        doc["input"]["setlinfo"][other[0]] = other[1]
    _same_as_lenient(msgspec.json.encode(doc))


@pytest.mark.parametrize(
    "rules",
    [
        {"FMT_DATETIME": "off"},
        {"FMT_DATETIME@oprninfo.oprn_oprt_endtime": "off"},
        {"FMT_DATETIME": "warn"},
        {"REQ_FIELD@setlinfo.adm_time": "off"},
    ],
)
def test_configured_timestamp_rules(rules: dict[str, Override]) -> None:
    """A switched-off or softened FMT_DATETIME (whole or per field) is honoured the same
    way: an unreadable required timestamp is then a missing one (REQ_FIELD)."""
    v = Validator(RuleConfig(rules=rules))
    for seed in range(4):
        doc = _base(seed)
        _set(doc, "setlinfo", 0, "adm_time", "2026/11/10 08:00")
        _set(doc, "oprninfo", 1, "oprn_oprt_endtime", "2026/11/12 10:30")
        _set(doc, "envelope", 0, "inf_time", "2026-11-24T01:30:00Z")
        _same_as_lenient(msgspec.json.encode(doc), v)


@pytest.mark.parametrize("received", [None, NOW, NOW + timedelta(days=60)])
def test_converted_timestamps_take_part_in_the_date_rules(received: datetime | None) -> None:
    """A timestamp sent with an offset is converted to CST before the date rules compare it
    (here: a discharge before admission once converted)."""
    doc = golden()
    doc["input"]["setlinfo"]["dscg_time"] = "2026-11-01T00:30:00+09:00"  # 2026-10-31 23:30
    raw = msgspec.json.encode(doc)
    found = _same_as_lenient(raw, received_at=received)
    assert "setlinfo.dscg_time" in {e.field for e in found}
    envelope, _ = V.validate_json(raw, received_at=received)
    assert envelope is not None
    assert envelope.input.setlinfo.dscg_time == datetime(2026, 10, 31, 23, 30)


class _Counting:
    """A decoder that counts its calls (to see which tier took a record)."""

    def __init__(self, decoder: Any) -> None:
        self.decoder, self.calls = decoder, 0

    def decode(self, raw: bytes) -> Any:
        self.calls += 1
        return self.decoder.decode(raw)


@pytest.mark.parametrize(
    ("edits", "lenient"),
    [
        ([("oprninfo", 1, "oprn_oprt_endtime", "2026/11/12 10:30")], False),  # the bench's
        ([("setlinfo", 0, "adm_time", "2026-11-10T08:00:00+08:00")], False),
        ([("setlinfo", 0, "brdy", ""), ("envelope", 0, "inf_time", "x")], False),
        ([("oprninfo", 0, "oprn_oprt_date", "2026-11-12 10:00:00"),
          ("oprninfo", 1, "anst_begntime", "2026/11/12"), ("setlinfo", 0, "dcla_time", ""),
          ("setlinfo", 0, "setl_time", "2026-11-24T01:00:00Z")], False),  # four fields
        ([("setlinfo", 0, f, "?") for f in ("adm_time", "dscg_time", "dcla_time", "setl_time")]
         + [("oprninfo", 0, "oprn_oprt_endtime", "?"), ("envelope", 0, "inf_time", "")], False),
        ([("oprninfo", 1, "oprn_oprt_endtime", 5)], True),  # a wrong type: DEC_TYPE
        ([("setlinfo", 0, "adm_time", "?"), ("setlinfo", 0, "age", "many")], True),
    ],
)  # fmt: skip
def test_only_failing_timestamps_are_read_again(
    edits: list[tuple[str, int, str, Any]], lenient: bool
) -> None:
    """A record whose only trouble is timestamps skips the lenient decoder (and the rebuild
    of every node): the field that failed is read as text and converted alone (from a
    second one on, the timestamps of the nodes that failed). A wrong JSON type, in a
    timestamp or elsewhere, is the lenient decoder's."""
    v = Validator()
    spy = _Counting(v._lenient)
    v._lenient = spy  # type: ignore[assignment]
    doc = golden()
    for node, index, field, value in edits:
        assert _set(doc, node, index, field, value)
    _same_as_lenient(msgspec.json.encode(doc), v)
    assert spy.calls == (2 if lenient else 1)  # the reference's own decode is one


def test_relaxed_decoders_are_few() -> None:
    """Whatever timestamps a sender gets wrong, the decoders built stay among the 31 sets
    (one field, or whole nodes): no combination builds a new one for each record."""
    rng = random.Random(12)
    for _ in range(150):
        doc = golden()
        for node, field, _kind in rng.sample(TEMPORAL, rng.randint(1, 8)):
            _set(doc, node, rng.randint(0, 3), field, rng.choice(ODD_TEXTS[:6]))
        _same_as_lenient(msgspec.json.encode(doc))
    assert relaxed_decoder.cache_info().currsize <= len(TEMPORAL) + 15
    assert relaxed_envelope_type.cache_info().currsize <= len(TEMPORAL) + 16  # + the typed


@pytest.mark.parametrize(
    ("other", "value"),
    [
        (None, None),
        ("setlinfo.medfee_sumamt", "1E+999999999"),  # a number no sum can hold
        ("setlinfo.medfee_sumamt", 1e300),
        ("setlinfo.adm_time", None),  # a required timestamp left empty
        ("setlinfo.adm_time", "?"),  # ... or unreadable
        ("setlinfo.brdy", ""),
        ("setlinfo.medcasno", "B" * 41),  # one refused text field as well
        ("setlinfo.medcasno setlinfo.adm_way", "x" * 41),  # two: the typed decoder
        ("setlinfo.age", "many"),  # a wrong type: the typed decoder, then the lenient one
    ],
)
def test_strict_apart_from_timestamps_takes_the_fast_checks(other: str | None, value: Any) -> None:
    """A record the strict types refuse only for an unreadable optional timestamp (and at
    most one text field) is decoded strictly with those fields unconstrained: the typed
    decoder is not needed (the fast path's checks run). Anything the full engine reports
    differently is left to it; the findings are the lenient engine's either way."""
    v = Validator()
    typed = _Counting(v._typed)
    v._typed = typed  # type: ignore[assignment]
    doc = make_settlement(random.Random(3), now=NOW)
    doc["input"]["oprninfo"][1]["oprn_oprt_endtime"] = "2026/11/12 10:30"
    for path in (other or "").split():
        node, field = path.split(".")
        doc["input"][node][field] = value
    raw = msgspec.json.encode(doc).replace(b'"1E+999999999"', b"1E+999999999")  # a number
    _same_as_lenient(raw, v)
    assert typed.calls == (1 if other and (" " in other or value == "many") else 0)


# -- one refused value: the strict types with that field relaxed ----------------------------

#: (node, field) of the text fields a strict type constrains (length, dictionary, required)
TEXTS = [
    (node, s.field)
    for node in ("setlinfo", *LIST_NODES)
    for s in fields_of(node)
    if s.type in ("str", "duration")
]
TEXT_VALUES: Any = st.one_of(
    st.sampled_from(["", "x", "9", "1", "B" * 41, "B" * 501, "１", "2/3/4", "99/99/99"]),
    st.none(),
    st.text(max_size=8),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=40),
    values=st.lists(
        st.tuples(st.sampled_from(TEXTS), st.integers(min_value=0, max_value=7), TEXT_VALUES),
        min_size=1,
        max_size=3,
    ),
    times=st.lists(
        st.tuples(st.sampled_from(TEMPORAL), st.integers(min_value=0, max_value=7), VALUES),
        max_size=2,
    ),
)
def test_refused_values_give_the_full_engines_findings(
    seed: int,
    values: list[tuple[tuple[str, str], int, Any]],
    times: list[tuple[tuple[str, str, str], int, Any]],
) -> None:
    """Values the strict types refuse (dictionary, length, empty required field), alone or
    with others and odd timestamps: the full engine's findings, in its order, and its record."""
    doc = _base(seed)
    for (node, field), index, value in values:
        _set(doc, node, index, field, value)
    for (node, field, _kind), index, value in times:
        _set(doc, node, index, field, value)
    _same_as_lenient(msgspec.json.encode(doc))


#: what only sealing refuses, or a values guard stops, placed after a refused value: the
#: sealed decoder with that field relaxed (tried first) must hand the record over, as the
#: clean path does (raw JSON text, put in place of a placeholder string)
_AFTER_REFUSAL = {
    "unknown key": (("oprninfo", "zz_unknown"), b'"yes"'),
    "float into an integer": (("setlinfo", "act_ipt_days"), b"3.0"),
    "digit string into an integer": (("setlinfo", "act_ipt_days"), b'"3"'),
    "negative zero": (("setlinfo", "acct_pay"), b"-0.0"),
    "rounded to zero": (("setlinfo", "acct_pay"), b"1E-999"),
    "past float's range": (("setlinfo", "acct_pay"), b"1E+999999999"),
}


@pytest.mark.parametrize("after", sorted(_AFTER_REFUSAL))
@pytest.mark.parametrize(
    "refused",
    [
        ("setlinfo", "psn_name", ""),
        ("setlinfo", "adm_way", "x"),
        ("oprninfo", "oprn_oprt_endtime", "2026/11/12 10:30"),
    ],
)
def test_a_refused_value_then_what_sealing_hands_over(
    refused: tuple[str, str, str], after: str
) -> None:
    """A value refused early, and later in the record what the sealed decoder refuses or a
    values guard stops: the lenient engine's findings and record, whichever way it went."""
    for seed in (0, 2, 3):
        doc = _base(seed)
        node, field, value = refused
        _set(doc, node, 0, field, value)
        (where, name), text = _AFTER_REFUSAL[after]
        _set(doc, where, 1, name, "PLACEHOLDER")
        raw = msgspec.json.encode(doc).replace(b'"PLACEHOLDER"', text)
        found = _same_as_lenient(raw)
        assert found, (after, refused)


@pytest.mark.parametrize(
    "refused",
    [
        ("setlinfo", "psn_name", ""),
        ("setlinfo", "adm_way", "x"),
        ("oprninfo", "oprn_oprt_endtime", "2026/11/12 10:30"),
    ],
)
def test_a_refused_value_comes_back_in_the_sealed_classes(refused: tuple[str, str, str]) -> None:
    """Whichever field was relaxed, the record the checks see (and the caller gets) is of the
    sealed decoder's classes, node by node, as a clean record is: one class per node keeps
    CPython's attribute reads specialised on the findings path."""
    clean, _ = V.validate_json(msgspec.json.encode(_base(2)), received_at=NOW)
    doc = _base(2)
    node, field, value = refused
    _set(doc, node, 0, field, value)
    _same_as_lenient(msgspec.json.encode(doc))
    envelope, found = V.validate_json(msgspec.json.encode(doc), received_at=NOW)
    assert found and envelope is not None and clean is not None
    assert type(envelope) is type(clean)
    assert type(envelope.input) is type(clean.input)
    assert type(envelope.input.setlinfo) is type(clean.input.setlinfo)
    for entry, clean_entry in zip(envelope.input.oprninfo, clean.input.oprninfo, strict=True):
        assert type(entry) is type(clean_entry)


@pytest.mark.parametrize(("node", "field"), TEXTS)
def test_each_text_field_refused_alone(node: str, field: str) -> None:
    """Each constrained text field alone, empty and too long, in every entry."""
    for seed in (0, 1, 2):
        entries = len(_base(seed)["input"].get(node) or [None]) if node in LIST_NODES else 1
        for i in range(min(entries, 3)):
            for value in ("", "Z" * 501, "?"):
                doc = _base(seed)
                if _set(doc, node, i, field, value):
                    _same_as_lenient(msgspec.json.encode(doc))


def test_shown_writes_every_moment_in_china_standard_time_with_its_offset() -> None:
    from datetime import UTC, datetime

    from contracts import shown

    assert shown(datetime(2026, 11, 30, 16, 15, 10, 123456, tzinfo=UTC)) == (
        "2026-12-01T00:15:10+08:00"  # UTC 16:15 is already the next day in the province
    )
    assert shown(datetime(2026, 11, 30, 16, 15, 10, 123456, tzinfo=UTC), "milliseconds") == (
        "2026-12-01T00:15:10.123+08:00"
    )
    with pytest.raises(ValueError, match="without a UTC offset"):
        shown(datetime(2026, 11, 30, 15, 15, 10))


def test_the_display_zone_is_one_setting_for_every_moment_written() -> None:
    from datetime import UTC, datetime

    from contracts import in_display_zone, set_display_zone, shown
    from contracts.messages import QualityAlert

    moment = datetime(2026, 11, 30, 16, 15, 10, tzinfo=UTC)
    try:
        set_display_zone("+09:00")
        assert shown(moment) == "2026-12-01T01:15:10+09:00"
        assert in_display_zone(moment).utcoffset() == timedelta(hours=9)
        alert = QualityAlert(
            alert_key="k",
            kind="silent",
            city=None,
            fixmedins_code=None,
            value=1.0,
            threshold=1.0,
            message="m",
            message_en="m",
            raised_at=moment,
        )
        assert b'"raised_at":"2026-12-01T01:15:10+09:00"' in msgspec.json.encode(alert)
        with pytest.raises(ValueError, match=r"\+HH:MM"):
            set_display_zone("UTC+8")
    finally:
        set_display_zone("+08:00")
    assert shown(moment) == "2026-12-01T00:15:10+08:00"
