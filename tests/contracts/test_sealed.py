"""The sealed fast path (no unknown key, no float into an integer: `strict_envelope_type(...,
sealed=True)`) spares a clean record the look for numbers out of range; whatever it lets
through must come out exactly as the path without sealing (`Validator._unsealed_json`: the
look, the strict decoder, the fast path's checks or the full engine) would give it: same
findings, same record."""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from contracts import Validator
from contracts._fieldrules import FieldRules
from contracts._fields import LIST_NODES, NODES, fields_of
from contracts.samples import make_envelope_bytes
from tests.builders import RECEIVED, golden, legacy_golden, mutate

V = Validator()
NOW = datetime(2026, 11, 24, 9, 30)


def _same_both_ways(raw: bytes, received_at: datetime | None = RECEIVED) -> list[Any]:
    """`validate_json` (sealed first) equals the unsealed path; returns the findings."""
    env, found = V.validate_json(raw, received_at=received_at)
    ref_env, expected = _unsealed(raw, received_at)
    assert found == expected
    assert msgspec.json.encode(env) == msgspec.json.encode(ref_env)
    return found


def _unsealed(raw: bytes, received_at: datetime | None) -> tuple[Any, list[Any]]:
    """`validate_json` as it was before sealing (the unsealed path plus its wrap-up)."""
    from contracts._followon import group_follow_ons

    try:
        env, errors = V._unsealed_json(raw, received_at)
    except ArithmeticError:
        from contracts._numbers import numbers_out_of_range

        return None, V._out_of_range(numbers_out_of_range(raw, always=True) or ["$"])
    if errors and env is not None:
        V._legacy(errors, env.input)
        group_follow_ons(errors, env.input)
    return env, errors


def _raw(doc: dict[str, Any], placeholder: str, value: bytes) -> bytes:
    """`doc` encoded, the JSON text `"placeholder"` replaced by `value` (any JSON text)."""
    raw = msgspec.json.encode(doc)
    assert raw.count(f'"{placeholder}"'.encode()) == 1
    return raw.replace(f'"{placeholder}"'.encode(), value)


def test_samples_take_the_sealed_path_with_the_same_findings() -> None:
    rng = random.Random(7)
    sealed = 0
    for _ in range(200):
        raw = make_envelope_bytes(rng, now=NOW)
        _same_both_ways(raw, NOW)
        try:
            V._sealed.decode(raw)
            sealed += 1
        except msgspec.ValidationError:
            pass
    assert sealed == 200  # the clean samples never need the unsealed path


NUMBERS = [b"1e-400", b"-1E-400", b"2.5e-320", b"1e400", b"0e-5", b"1.5e2", b"12", b"12.0"]


@pytest.mark.parametrize("number", NUMBERS)
@pytest.mark.parametrize(
    "path",
    [
        "input.setlinfo.lv1_nurscare_days",  # an integer
        "input.setlinfo.nwb_age",
        "input.setlinfo.acct_pay",  # money (Decimal)
        "input.setlinfo.age",  # a Decimal of units
        "input.setlinfo.not_a_field",  # unknown: the decoders skip it
        "input.diseinfo.0.not_a_field",
        "not_a_field",
    ],
)
def test_numbers_anywhere_same_both_ways(number: bytes, path: str) -> None:
    doc = golden()
    node: Any = doc
    *parents, last = path.split(".")
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    node[last] = "PLACEHOLDER"
    _same_both_ways(_raw(doc, "PLACEHOLDER", number))


@pytest.mark.parametrize(
    "text",
    [b'"-0"', b'"-00"', b'"-0.00"', b"-0", b"-0.0", b'"0"', b'"1.5"', b"1.5", b'"12"', b"12"],
)
@pytest.mark.parametrize("field", ["acct_pay", "psn_ownpay", "age", "lv1_nurscare_days"])
def test_zeros_and_text_numbers_same_both_ways(text: bytes, field: str) -> None:
    """A negative zero as text: the strict decoder reads `"-0"` as 0, the sealed one keeps
    the sign (the values guard hands it over); text into an integer field."""
    for doc in (golden(), legacy_golden()):
        _same_both_ways(_raw(mutate(doc, **{f"input__setlinfo__{field}": "PH"}), "PH", text))


def test_negative_zero_is_read_as_the_strict_decoder_reads_it() -> None:
    raw = _raw(mutate(golden(), input__setlinfo__acct_pay="PH"), "PH", b'"-0"')
    env, _found = V.validate_json(raw, received_at=RECEIVED)
    assert env is not None and env.input.setlinfo.acct_pay == Decimal(0)
    assert not env.input.setlinfo.acct_pay.is_signed()


def test_a_duration_seen_first_stays_on_the_sealed_path() -> None:
    """Only an unusual Decimal hands a record over: a duration not yet remembered by the
    guard (`duration_ok`) is checked in place."""
    doc = golden()
    doc["input"]["icuinfo"] = [
        {
            "scs_cutd_ward_type": "1",
            "scs_cutd_inpool_time": "2026-11-17 06:00:00",
            "scs_cutd_exit_time": "2026-11-17 08:11:00",
            "scs_cutd_sum_dura": "0/2/11",
        }
    ]
    doc["input"]["setlinfo"]["vent_used_dura"] = "0/1/59"
    raw = msgspec.json.encode(doc)
    from contracts import _fieldrules

    _fieldrules._DURATIONS_OK.discard("0/2/11")
    _fieldrules._DURATIONS_OK.discard("0/1/59")
    calls: list[bytes] = []
    unsealed = V._unsealed_json
    try:
        V._fast.__globals__["UNSEALED"] = lambda raw, at: calls.append(raw) or unsealed(raw, at)
        _same_both_ways(raw)
    finally:
        V._fast.__globals__["UNSEALED"] = unsealed
    assert calls == []


def test_items_and_payments_with_odd_amounts_same_both_ways() -> None:
    """The list nodes' values guards hand a record over as the summary's does."""
    for text in (b'"-0"', b"1e-400", b'"1.5"', b"1.5", b'"abc"'):
        doc = legacy_golden()
        doc["input"]["iteminfo"][0]["amt"] = "PH"
        _same_both_ways(_raw(doc, "PH", text))
        doc = legacy_golden()
        doc["input"]["payinfo"][0]["fund_payamt"] = "PH"
        _same_both_ways(_raw(doc, "PH", text))


def test_every_decimal_of_the_sealed_types_is_behind_a_values_guard() -> None:
    """What sealing rests on: a JSON number the sealed decoder lets through sits in a
    Decimal, and every Decimal field is guarded on the fast path (a guard that fails hands
    the record to the unsealed path), in the summary and in each list node with values."""
    fields = V._fields
    assert isinstance(fields, FieldRules)
    for node in NODES:
        decimals = {s.field for s in fields_of(node) if s.type == "decimal"}
        guarded = {name for name, *_rest in fields._python[node].decimals}
        assert decimals == guarded
        if decimals:
            assert node == "setlinfo" or (node in LIST_NODES and fields.has_values(node, True))
    source = V._fast.__doc__ or ""
    assert source.count("return UNSEALED(raw, received_at)") == 1 + sum(
        1 for n in LIST_NODES if fields._python[n].decimals
    )


def test_decoded_types_hold_no_float_and_no_untyped_value() -> None:
    """No field of the sealed types takes a float or anything untyped (where a number out
    of range could hide without a Decimal's guard)."""
    seen: set[int] = set()

    def walk(t: Any) -> None:
        if id(t) in seen:
            return
        seen.add(id(t))
        for f in msgspec.structs.fields(t):
            text = repr(f.type)
            assert "float" not in text and "Any" not in text, (t, f.name, text)
            for arg in getattr(f.type, "__args__", ()):
                if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
                    walk(arg)
            if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct):
                walk(f.type)

    walk(V._sealed.type)
    assert len(seen) == 10  # envelope, settlement, setlinfo and the seven list nodes


def test_refused_records_same_both_ways() -> None:
    """A document the sealed decoder refuses is decoded again only when sealing alone
    refused it (`_refused_json`): the findings are the unsealed path's either way."""
    from gateway.bench.validate import findings_documents

    rng = random.Random(11)
    for raw in findings_documents(rng, 60, NOW):
        assert _same_both_ways(raw, NOW)
    for change in (
        {"input__setlinfo__adm_way": "x"},
        {"input__setlinfo__psn_name": ""},
        {"input__setlinfo__psn_name": 5},
        {"input__setlinfo__medcasno": "B" * 41},
        {"input__setlinfo__lv1_nurscare_days": "2"},
        {"input__setlinfo__lv1_nurscare_days": 2.0},
        {"input__setlinfo__lv1_nurscare_days": -1},
        {"input__setlinfo__adm_time": 5},
        {"input__setlinfo__adm_time": "2026-11-16T17:30:00+08:00"},
        {"input__setlinfo__foo": 1, "input__setlinfo__adm_way": "x"},
        {"input__setlinfo__adm_way": "x", "input__setlinfo__foo": 1e-400},
        {"input__setlinfo__dscg_way": "x", "input__setlinfo__lv1_nurscare_days": "3"},
        {"infno": "9999"},
    ):
        _same_both_ways(msgspec.json.encode(mutate(golden(), **change)))
    for raw in (b"{", b"[]", b'{"infno": "4101A", "input": 1}', b'{"a": 1e-400, "b": [}'):
        _same_both_ways(raw)


@pytest.mark.parametrize(
    "text",
    [b"", b"-", b"e", b"e-", b"E-", b"-e", b"x-e-", b'{"a":1e-5}', b'{"a":"2026-11-24"}', b"E"],
)
def test_the_look_for_negative_exponents_finds_what_two_substring_tests_find(text: bytes) -> None:
    from contracts._numbers import _NEGATIVE_EXPONENT

    found = _NEGATIVE_EXPONENT.search(text) is not None
    assert found == (b"e-" in text or b"E-" in text)


def test_the_look_agrees_on_sample_lists() -> None:
    from contracts._numbers import _NEGATIVE_EXPONENT

    rng = random.Random(3)
    for _ in range(100):
        raw = make_envelope_bytes(rng, now=NOW)
        for text in (raw, raw.replace(b"-", b"e-", 1), raw.replace(b"-", b"E-", 3)):
            found = _NEGATIVE_EXPONENT.search(text) is not None
            assert found == (b"e-" in text or b"E-" in text)
