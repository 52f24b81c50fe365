"""Bounded parsers for every value a client controls: query parameters, path ids, header values.

One policy for all of them: a parser returns a value within its stated range (or the default,
for an absent or empty value) or raises `gateway.errors.BadQuery` naming the field, answered
400 `BAD_QUERY`. No other exception escapes, whatever the text (a property test feeds them
arbitrary text). Pure functions of strings, no HTTP: handlers pass `request.query.get(name)` or
`request.headers.get(name)`.

- integers (ids, positions, counts, limits): ASCII digits only (no sign, space, `_`, `²` or
  other Unicode digits), at most 20 characters, within a range that never leaves PostgreSQL's
  bigint;
- moments: ISO-8601 date and time, within `EARLIEST`..`LATEST`, returned in UTC; without an
  offset it is China Standard Time (+08:00, the one clock shown to people: a bureau's clerk
  types the time on the wall). The range is checked on the wall-clock time before
  converting: near year 1 or 9999 an offset of ±14:00 overflows `datetime` (that was a 500,
  and a broken event stream);
- days: `YYYY-MM-DD` within `FIRST_DAY`..`LAST_DAY`, so that day arithmetic cannot overflow;
- enumerations and codes (`choice`, `code`): exactly one of the allowed values or patterns;
- header values (`header`): printable ASCII, bounded length; path keys (`key`): no control
  characters or lone surrogates (never storable), bounded length.
"""

from __future__ import annotations

import re
import uuid as _uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Final, overload

from contracts import city_of, display_zone
from gateway.errors import BadQuery

BIGINT_MAX: Final = 2**63 - 1
"""The largest id or position PostgreSQL stores (bigint): no parser returns a larger one."""
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)
FIRST_DAY: Final = date(2000, 1, 1)
LAST_DAY: Final = date(2100, 1, 1)
HOSPITAL: Final = re.compile(r"H[0-9]{11}")
"""A hospital's code (fixmedins_code), for `code`."""
REGION: Final = re.compile(r"[0-9]{6}")
"""A region code (admdvs, a city), for `code`."""

_DIGITS = re.compile(r"[0-9]{1,20}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")
_MAX_MOMENT_CHARS = 48  # "2026-01-01T00:00:00.000000+08:00:00.000000" is 42
_SLACK = timedelta(days=1)  # more than any UTC offset


def _bad(field: str, message_en: str, message: str) -> BadQuery:
    return BadQuery(f"{field}: {message_en}", f"参数 {field}：{message}", field=field)


def _printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


@overload
def integer(text: str | None, field: str, *, low: int, high: int, default: int) -> int: ...
@overload
def integer(
    text: str | None, field: str, *, low: int, high: int, default: None = None
) -> int | None: ...
def integer(
    text: str | None, field: str, *, low: int, high: int, default: int | None = None
) -> int | None:
    """A whole number in `low..high` (both included; 0 ≤ low ≤ high ≤ `BIGINT_MAX`)."""
    assert 0 <= low <= high <= BIGINT_MAX
    if text is None or text == "":
        return default
    if not _DIGITS.fullmatch(text):
        raise _bad(field, f"must be a whole number {low}..{high}", f"应为 {low}..{high} 的整数")
    value = int(text)
    if not low <= value <= high:
        raise _bad(field, f"must be in {low}..{high}", f"应在 {low}..{high} 之间")
    return value


def moment(
    text: str | None, field: str, *, low: datetime = EARLIEST, high: datetime = LATEST
) -> datetime | None:
    """An ISO-8601 date and time in `low..high` (both included), in UTC; one without an
    offset is read in the display zone (+08:00 unless configured: the zone answers are
    written in). A date alone is refused (which hour?)."""
    if text is None or text == "":
        return None
    zone = display_zone()
    offset = datetime(2000, 1, 1, tzinfo=zone).isoformat()[-6:]
    shape = (
        f"must be an ISO-8601 date and time (without an offset: {offset}), "
        f"{low:%Y-%m-%d}..{high:%Y-%m-%d}"
    )
    shape_cn = f"应为 ISO-8601 日期时间（不带时区即 {offset}），{low:%Y-%m-%d} 至 {high:%Y-%m-%d}"
    if " " in text:  # an unencoded "+08:00" arrives as " 08:00"
        shape, shape_cn = f"{shape} (send + as %2B)", f"{shape_cn}（+ 应编码为 %2B）"
    if len(text) > _MAX_MOMENT_CHARS or len(text) <= 10 or not _printable_ascii(text):
        raise _bad(field, shape, shape_cn)
    try:
        value = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise _bad(field, shape, shape_cn) from None
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=zone)
    # The wall-clock time first: converting one near year 1 or 9999 to UTC overflows.
    wall = value.replace(tzinfo=None)
    if not low.replace(tzinfo=None) - _SLACK <= wall <= high.replace(tzinfo=None) + _SLACK:
        raise _bad(field, shape, shape_cn)
    utc = value.astimezone(UTC)
    if not low <= utc <= high:
        raise _bad(field, shape, shape_cn)
    return utc


@overload
def day(
    text: str | None, field: str, *, default: date, low: date = ..., high: date = ...
) -> date: ...
@overload
def day(
    text: str | None, field: str, *, default: None = None, low: date = ..., high: date = ...
) -> date | None: ...
def day(
    text: str | None,
    field: str,
    *,
    default: date | None = None,
    low: date = FIRST_DAY,
    high: date = LAST_DAY,
) -> date | None:
    """A calendar day `YYYY-MM-DD` in `low..high` (both included)."""
    if text is None or text == "":
        return default
    shape = f"must be a day YYYY-MM-DD, {low.isoformat()}..{high.isoformat()}"
    shape_cn = f"应为日期 YYYY-MM-DD，{low.isoformat()} 至 {high.isoformat()}"
    if not _DAY.fullmatch(text):
        raise _bad(field, shape, shape_cn)
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise _bad(field, shape, shape_cn) from None
    if not low <= value <= high:
        raise _bad(field, shape, shape_cn)
    return value


@overload
def choice(text: str | None, field: str, allowed: Iterable[str], *, default: str) -> str: ...
@overload
def choice(
    text: str | None, field: str, allowed: Iterable[str], *, default: None = None
) -> str | None: ...
def choice(
    text: str | None, field: str, allowed: Iterable[str], *, default: str | None = None
) -> str | None:
    """Exactly one of `allowed`."""
    if text is None or text == "":
        return default
    options = tuple(allowed)
    if text not in options:
        listed = ", ".join(options)
        raise _bad(field, f"must be one of {listed}", f"应为 {listed} 之一")
    return text


def code(text: str | None, field: str, pattern: re.Pattern[str], shape: str) -> str | None:
    """A code matching `pattern` whole (`shape` says what it looks like, e.g. "6 digits")."""
    if text is None or text == "":
        return None
    if not (text.isascii() and pattern.fullmatch(text)):
        raise _bad(field, f"must be {shape}", f"格式应为 {shape}")
    return text


def city(text: str | None, field: str) -> str | None:
    """The city (DIP pool, `contracts.city_of`) of a known 6-digit region code: a district
    asks for its city; an unknown code is refused, never read as "every city"."""
    region = code(text, field, REGION, "6 digits")
    if region is None:
        return None
    found = city_of(region)
    if found is None:
        raise _bad(field, "is not a known region code", "不是已知的医保区划代码")
    return found


def uuid(text: str, field: str) -> _uuid.UUID:
    """A UUID in hex, with or without its hyphens (no braces, `urn:`, spaces or other digits)."""
    if not _UUID.fullmatch(text):
        raise _bad(field, "must be a UUID", "应为 UUID")
    return _uuid.UUID(text)


def key(text: str, field: str, *, max_chars: int) -> str:
    """A case key part from a path: at most `max_chars`, no control character or lone
    surrogate (neither can be stored, so no record has one)."""
    if not 0 < len(text) <= max_chars:
        raise _bad(field, f"must be 1..{max_chars} characters", f"长度应为 1..{max_chars}")
    if any(c < " " or c == "\x7f" or "\ud800" <= c <= "\udfff" for c in text):
        raise _bad(field, "holds a control character", "含有控制字符")
    return text


def header(value: str | None, field: str, *, max_chars: int = 256) -> str | None:
    """A header value: printable ASCII, at most `max_chars` (None when absent)."""
    if value is None:
        return None
    if len(value) > max_chars or not _printable_ascii(value):
        raise BadQuery(
            f"header {field} must be at most {max_chars} printable ASCII characters",
            f"请求头 {field} 应为不超过 {max_chars} 个可打印 ASCII 字符",
            field=field,
        )
    return value


def paging(
    query: Mapping[str, str], *, limit_max: int, page_max: int, default: int = 50
) -> tuple[int, int]:
    """(limit, offset) of the asked page: `page` from 1, `limit` up to `limit_max`."""
    limit = integer(query.get("limit"), "limit", low=1, high=limit_max, default=default)
    page = integer(query.get("page"), "page", low=1, high=page_max, default=1)
    return limit, (page - 1) * limit
