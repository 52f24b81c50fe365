"""The bounded parsers of client-controlled values (`gateway.params`), pure: every text gives a
value in range or `BadQuery` naming the field, never another exception."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import params
from gateway.errors import BadQuery
from gateway.ops.reports import period

BIG = params.BIGINT_MAX

# Every hostile value of issue 11's findings, and their relatives.
HOSTILE_NUMBERS = [
    "²",
    "٣",
    "１",
    "9" * 20,
    "9" * 5000,
    str(2**63),
    "-1",
    "+1",
    " 1",
    "1 ",
    "1_000",
    "1e3",
    "1e-400",
    "0x10",
    "NaN",
    "inf",
    "\x00",
    "1\u2028",
]
HOSTILE_MOMENTS = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "1999-12-31T23:59:59Z",
    "2100-01-01T00:00:01Z",
    "2099-12-31T23:00:00-14:00",  # wall clock in range, past LATEST in UTC
    "2000-01-01T00:00:00+14:00",  # wall clock in range, before EARLIEST in UTC
    "2026-01-01",  # a date alone: which hour?
    "2026-01-01T00:00:00 08:00",  # "+" sent unencoded
    "２０２６-01-01T00:00:00Z",
    "2026-01-01T00:00:00+24:00",
    "2026-02-30T00:00:00Z",
    "yesterday",
    "2026-01-01T00:00:00Z" + "0" * 5000,
]


def bad(field: str) -> pytest.RaisesExc[BadQuery]:
    return pytest.raises(BadQuery, match=re.escape(field))


# -- integers ------------------------------------------------------------------------------


def test_integer_reads_ascii_digits_in_range() -> None:
    assert params.integer("42", "limit", low=1, high=100, default=10) == 42
    assert params.integer("007", "limit", low=1, high=100, default=10) == 7
    assert params.integer(None, "limit", low=1, high=100, default=10) == 10
    assert params.integer("", "limit", low=1, high=100, default=10) == 10
    assert params.integer(None, "after", low=0, high=BIG) is None
    assert params.integer(str(BIG), "after", low=0, high=BIG) == BIG
    assert params.integer("0", "after", low=0, high=BIG) == 0


@pytest.mark.parametrize("text", HOSTILE_NUMBERS)
def test_integer_refuses_anything_but_ascii_digits_in_range(text: str) -> None:
    with bad("after") as refused:
        params.integer(text, "after", low=0, high=BIG)
    assert refused.value.field == "after"


@pytest.mark.parametrize("text", ["0", "101", "5000"])
def test_integer_refuses_values_out_of_range(text: str) -> None:
    with bad("limit"):
        params.integer(text, "limit", low=1, high=100, default=10)


def test_integer_ranges_stay_within_bigint() -> None:
    with pytest.raises(AssertionError):
        params.integer("1", "x", low=0, high=2**63)


# -- moments -------------------------------------------------------------------------------


def test_moment_reads_an_offset_time_into_utc() -> None:
    assert params.moment("2026-01-01T00:00:00+08:00", "since") == datetime(
        2025, 12, 31, 16, tzinfo=UTC
    )
    assert params.moment("2026-01-01T00:00:00Z", "since") == datetime(2026, 1, 1, tzinfo=UTC)
    assert params.moment("2026-01-01T00:00:00.123456+05:45", "since") is not None
    assert params.moment(None, "since") is None
    assert params.moment("", "since") is None
    assert params.moment("2000-01-01T00:00:00Z", "since") == params.EARLIEST
    assert params.moment("2100-01-01T00:00:00Z", "since") == params.LATEST
    assert params.moment("2100-01-01T14:00:00+14:00", "until") == params.LATEST


def test_a_moment_without_an_offset_is_read_in_china_standard_time() -> None:
    expected = datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert params.moment("2026-01-01T00:00:00", "since") == expected
    assert params.moment("2026-01-01 00:00:00", "since") == expected  # the national shape
    assert params.moment("2000-01-01T08:00:00", "since") == params.EARLIEST
    with bad("since"):
        params.moment("2000-01-01T07:59:59", "since")  # 23:59:59 UTC the day before


@pytest.mark.parametrize("text", HOSTILE_MOMENTS)
def test_moment_refuses_what_is_not_a_time_in_range(text: str) -> None:
    with bad("since") as refused:
        params.moment(text, "since")
    assert refused.value.field == "since"


def test_an_unencoded_plus_is_explained() -> None:
    with pytest.raises(BadQuery, match="%2B"):
        params.moment("2026-01-01T00:00:00 08:00", "since")


# -- days ----------------------------------------------------------------------------------


def test_day_reads_yyyy_mm_dd_in_range() -> None:
    today = date(2026, 3, 10)
    assert params.day("2026-01-31", "to", default=today) == date(2026, 1, 31)
    assert params.day(None, "to", default=today) == today
    assert params.day("2000-01-01", "from") == params.FIRST_DAY
    assert params.day("2100-01-01", "from") == params.LAST_DAY


@pytest.mark.parametrize(
    "text",
    ["0001-01-01", "9999-12-31", "1999-12-31", "2100-01-02", "20260101", "2026-W01-1",
     "2026-02-30", "2026-1-1", "２０２６-01-01", "2026-01-01T00:00:00", "9" * 5000],
)  # fmt: skip
def test_day_refuses_other_shapes_and_days_out_of_range(text: str) -> None:
    with bad("to"):
        params.day(text, "to")


@pytest.mark.parametrize(
    ("start", "end"), [(None, "0001-01-01"), ("0001-01-01", None), (None, "9999-12-31")]
)
def test_the_report_period_cannot_overflow(start: str | None, end: str | None) -> None:
    with pytest.raises(BadQuery):
        period(start, end, today=date(2026, 3, 10))


def test_the_report_period_names_the_day_to_blame() -> None:
    with bad("to") as refused:
        period(None, "2026-13-01", today=date(2026, 3, 10))
    assert refused.value.field == "to"


# -- enumerations, codes, ids, keys, headers -----------------------------------------------


def test_choice_is_one_of_the_allowed() -> None:
    assert params.choice("csv", "format", ("json", "csv")) == "csv"
    assert params.choice(None, "format", ("json", "csv")) is None
    assert params.choice("", "severity", ("reject", "warn"), default="reject") == "reject"
    for text in ("CSV", "csv ", "\x00", "json\u2028", "c" * 5000):
        with bad("format"):
            params.choice(text, "format", ("json", "csv"))


def test_code_matches_its_pattern_whole() -> None:
    six = re.compile(r"[0-9]{6}")
    assert params.code("440100", "city", six, "6 digits") == "440100"
    assert params.code(None, "city", six, "6 digits") is None
    for text in ("44010", "4401000", "٤٤٠١٠٠", "440100\n", "44O100"):
        with bad("city"):
            params.code(text, "city", six, "6 digits")


def test_uuid_is_hex_with_or_without_hyphens() -> None:
    value = uuid.uuid4()
    assert params.uuid(str(value), "receipt_id") == value
    assert params.uuid(value.hex, "receipt_id") == value
    for text in (f"{{{value}}}", f"urn:uuid:{value}", "٣" * 32, value.hex[:-1], " " + value.hex):
        with bad("receipt_id"):
            params.uuid(text, "receipt_id")


def test_key_refuses_control_characters_surrogates_and_length() -> None:
    assert params.key("SETL000000000001", "setl_id", max_chars=64) == "SETL000000000001"
    assert params.key("住院-1", "setl_id", max_chars=64) == "住院-1"
    for text in ("", "a\x00b", "\ud800", "a\nb", "\x7f", "a" * 65):
        with bad("setl_id"):
            params.key(text, "setl_id", max_chars=64)


def test_header_is_bounded_printable_ascii() -> None:
    assert params.header(None, "X-Request-Id") is None
    assert params.header("req-1", "X-Request-Id") == "req-1"
    for text in ("é", "\udcff", "a\tb", "\x00", "a" * 257):
        with bad("X-Request-Id") as refused:
            params.header(text, "X-Request-Id")
        assert "请求头" in refused.value.message


def test_a_refusal_is_answered_400_bad_query_naming_the_field() -> None:
    with pytest.raises(BadQuery) as refused:
        params.integer("²", "Last-Event-ID", low=0, high=BIG)
    response = refused.value.response()
    assert response.status == 400
    assert response.body is not None
    (problem,) = msgspec.json.decode(response.body)["errors"]
    assert problem["rule"] == "BAD_QUERY" and problem["field"] == "Last-Event-ID"
    assert problem["message"] and problem["message_en"]


# -- properties: any text, a value in range or BadQuery ------------------------------------

_texts = st.text(max_size=60) | st.text(alphabet="0123456789-+:.TZWz ²٣", max_size=40)
_offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
_iso_moments = st.builds(
    lambda moment, tz, spec: moment.replace(tzinfo=tz).isoformat(timespec=spec),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.none() | _offsets,
    st.sampled_from(["auto", "seconds", "minutes", "microseconds"]),
)


@given(text=_texts | st.integers().map(str))
def test_any_text_is_an_integer_in_range_or_bad_query(text: str) -> None:
    for low, high in ((0, BIG), (1, 1000), (1, 15)):
        try:
            value = params.integer(text, "n", low=low, high=high, default=low)
        except BadQuery as exc:
            assert exc.field == "n"
        else:
            assert low <= value <= high


@given(text=_texts | _iso_moments)
def test_any_text_is_a_moment_in_range_or_bad_query(text: str) -> None:
    try:
        value = params.moment(text, "since")
    except BadQuery as exc:
        assert exc.field == "since"
    else:
        assert value is None or (
            value.utcoffset() == timedelta(0) and params.EARLIEST <= value <= params.LATEST
        )


@given(text=_texts | st.dates().map(date.isoformat))
def test_any_text_is_a_day_in_range_or_bad_query(text: str) -> None:
    try:
        value = params.day(text, "from", default=date(2026, 1, 1))
    except BadQuery as exc:
        assert exc.field == "from"
    else:
        assert params.FIRST_DAY <= value <= params.LAST_DAY


@given(start=_texts | st.dates().map(date.isoformat), end=_texts | st.dates().map(date.isoformat))
def test_any_period_is_in_range_or_bad_query(start: str, end: str) -> None:
    try:
        first, last = period(start, end, today=date(2026, 3, 10))
    except BadQuery:
        return
    assert params.FIRST_DAY - timedelta(days=7) <= first <= last <= params.LAST_DAY


@given(text=_texts)
def test_any_text_is_a_choice_code_uuid_key_or_header_or_bad_query(text: str) -> None:
    parsers = [
        lambda: params.choice(text, "f", ("scored", "unscored")) in (None, "scored", "unscored"),
        lambda: (
            params.code(text, "f", re.compile(r"H[0-9]{11}"), "H + 11 digits") is None
            or text.isascii()
        ),
        lambda: isinstance(params.uuid(text, "f"), uuid.UUID),
        lambda: 0 < len(params.key(text, "f", max_chars=64)) <= 64,
        lambda: params.header(text, "f") == text and text.isascii(),
    ]
    for parse in parsers:
        try:
            assert parse()
        except BadQuery as exc:
            assert exc.field == "f"
