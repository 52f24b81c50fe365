"""The Structs: national names, types and lengths; the canonical record; the envelope."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import (
    CST,
    Envelope,
    Input4101,
    Input4101A,
    Response,
    Setlinfo,
    Setlinfo4101,
    Setlinfo4101A,
    Settlement,
    ValidationError,
    Validator,
    field_specs,
    fields_of,
    normalise,
    parse_date,
    parse_duration,
    parse_time,
)
from contracts._model import Diseinfo, Oprninfo
from tests.builders import golden, legacy_golden, mutate

_PY = {
    "str": str,
    "duration": str,
    "date": date,
    "datetime": datetime,
    "decimal": Decimal,
    "int": int,
}


def _field_types(cls: type) -> dict[str, object]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    return {f.name: f.type for f in info.fields}


@pytest.mark.parametrize(
    ("node", "cls"),
    [("setlinfo", Setlinfo), ("diseinfo", Diseinfo), ("oprninfo", Oprninfo)],
)
def test_canonical_nodes_follow_the_field_table(node: str, cls: type) -> None:
    types = _field_types(cls)
    specs = fields_of(node)
    assert list(types) == [s.field for s in specs]
    for spec in specs:
        t = types[spec.field]
        assert isinstance(t, msgspec.inspect.UnionType)
        inner = [x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)]
        expected = _PY[spec.type]
        kind = {str: msgspec.inspect.StrType, date: msgspec.inspect.DateType,
                datetime: msgspec.inspect.DateTimeType, Decimal: msgspec.inspect.DecimalType,
                int: msgspec.inspect.IntType}[expected]  # fmt: skip
        assert isinstance(inner[0], kind), spec.field


def test_canonical_setlinfo_carries_identity_and_summary() -> None:
    names = set(_field_types(Setlinfo))
    identity = {"psn_name", "gend", "brdy", "age", "nwb_age", "naty", "patn_cert_type", "certno",
                "hi_type", "insuplc"}  # fmt: skip
    summary = {"insutype", "medfee_sumamt", "fund_pay_sumamt", "hifp_pay", "acct_pay",
               "psn_cash_pay", "psn_selfpay", "psn_ownpay"}  # fmt: skip
    assert identity | summary <= names


def test_national_4101a_has_no_identity_fields_and_the_spec_lengths() -> None:
    types = _field_types(Setlinfo4101A)
    assert "psn_name" not in types and "certno" not in types and "medfee_sumamt" not in types
    spec = {s.field: s for s in fields_of("setlinfo")}
    for name, t in types.items():
        if isinstance(t, msgspec.inspect.UnionType):
            inner = [x for x in t.types if isinstance(x, msgspec.inspect.StrType)]
            if inner and spec[name].type in ("str", "duration"):
                assert inner[0].max_length == spec[name].length, name
    assert "psn_name" in _field_types(Setlinfo4101)
    with pytest.raises(msgspec.ValidationError, match="length <= 30"):
        msgspec.json.decode(b'{"setlinfo": {"setl_id": "' + b"9" * 31 + b'"}}', type=Input4101A)


def test_national_shapes_accept_a_canonical_record() -> None:
    sample = legacy_golden()["input"]
    national = msgspec.convert(sample, Input4101)
    assert national.payinfo[0].fund_pay_type == "310100"
    assert msgspec.convert(golden()["input"], Input4101A, strict=False).setlinfo.setl_id


def test_field_table_is_consistent() -> None:
    specs = field_specs()
    keys = [(s.node, s.field) for s in specs]
    assert len(keys) == len(set(keys))
    for s in specs:
        assert s.req_A in "YNC" and s.req_L in "YNC"
        if s.type in ("str", "duration"):
            assert s.length, s.field


def test_envelope_decode_and_types() -> None:
    v = Validator()
    env, errors = v.validate_json(msgspec.json.encode(golden()))
    assert errors == [] and isinstance(env, Envelope) and isinstance(env.input, Settlement)
    sl = env.input.setlinfo
    assert sl.adm_time == datetime(2026, 11, 10, 8, 0)
    assert sl.brdy == date(1970, 5, 1)
    assert sl.medfee_sumamt == Decimal("20000.00")
    assert env.inf_time == datetime(2026, 11, 24, 9, 30)


def test_slow_path_converts_offsets_and_bare_dates() -> None:
    v = Validator()
    doc = mutate(
        golden(),
        input__setlinfo__adm_time="2026-11-10T00:00:00Z",  # 08:00 CST
        input__setlinfo__dscg_time="2026-11-20",
    )
    env, errors = v.validate_json(msgspec.json.encode(doc))
    assert errors == []
    assert env is not None
    assert env.input.setlinfo.adm_time == datetime(2026, 11, 10, 8, 0)
    assert env.input.setlinfo.dscg_time == datetime(2026, 11, 20, 0, 0)


def test_normalise_fills_the_summary_of_a_4101_upload() -> None:
    env, errors = Validator().validate_json(msgspec.json.encode(legacy_golden()))
    assert errors == [] and env is not None
    sl = env.input.setlinfo
    assert sl.medfee_sumamt == Decimal("20000.00")  # sum of iteminfo
    assert sl.fund_pay_sumamt == Decimal("14000.00")  # payinfo without the personal account
    assert sl.insutype == "310"  # from hi_type
    assert sl.psn_cash_pay == sl.psn_cashpay == Decimal("5500.00")
    before = msgspec.structs.asdict(sl)
    normalise(env.input, "4101")
    assert msgspec.structs.asdict(sl) == before  # idempotent


def test_response_shape() -> None:
    resp = Response(infcode=0, inf_refmsgid="440100202611240930000000001", err_msg="",
                    output={"data": {"setl_list_id": "000000001"}})  # fmt: skip
    data = msgspec.json.encode(resp)
    assert msgspec.json.decode(data, type=Response) == resp


def test_error_shape_is_six_fields_and_an_optional_cause() -> None:
    """Six fields always; `caused_by` (issue 14: a follow-on finding names the field to fix
    first) only when set: an error of its own is on the wire exactly as before."""
    info = msgspec.inspect.type_info(ValidationError)
    assert isinstance(info, msgspec.inspect.StructType)
    assert [f.name for f in info.fields if f.required] == [
        "rule", "field", "dimension", "severity", "message", "message_en",
    ]  # fmt: skip
    assert [(f.name, f.default) for f in info.fields if not f.required] == [("caused_by", "")]
    own = ValidationError(rule="R", field="f", dimension="规范性", severity="reject",
                          message="m", message_en="e")  # fmt: skip
    assert set(msgspec.json.decode(msgspec.json.encode(own))) == {
        "rule", "field", "dimension", "severity", "message", "message_en",
    }  # fmt: skip
    follow = msgspec.structs.replace(own, caused_by="setlinfo.dscg_time")
    assert msgspec.json.decode(msgspec.json.encode(follow))["caused_by"] == "setlinfo.dscg_time"


def test_time_helpers() -> None:
    assert parse_time("2026-11-24 09:30:00") == datetime(2026, 11, 24, 9, 30, tzinfo=CST)
    assert parse_time("2026-11-24") == datetime(2026, 11, 24, tzinfo=CST)
    assert parse_time("2026-W47-1") is None and parse_time("2026-13-01") is None
    assert parse_date("2026-11-24 09:30:00") == date(2026, 11, 24)
    assert parse_duration("1/13/24") == (24 + 13) * 60 + 24
    assert parse_duration("0/0/0") == 0
    for bad in ("1/24/0", "1/0/60", "1/2", "a/b/c", "１/2/3", ""):
        assert parse_duration(bad) is None


_DURATIONS = st.from_regex(r"\d{1,5}/\d{1,3}/\d{1,3}\n?", fullmatch=True)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=12), _DURATIONS))
def test_fast_path_duration_pattern_equals_parse_duration(text: str) -> None:
    """The strict decoder's duration pattern accepts exactly what FMT_DURATION accepts."""
    import re

    from contracts._fastpath import DURATION_STRICT

    strict = re.compile(f"^{DURATION_STRICT}\\Z").search(text) is not None
    assert strict == (parse_duration(text) is not None)
