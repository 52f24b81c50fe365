"""National date/time/duration text: `yyyy-MM-dd HH:mm:ss`, `yyyy-MM-dd`, `天/小时/分钟`.

Hospital data is China Standard Time; a naive national timestamp gets +08:00 here so that it
can be compared with `received_at` from any clock. Parsing is on the hot path: a cheap shape
check, then `fromisoformat` (C), no regex.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

__all__ = [
    "CST",
    "DATETIME_PATTERN",
    "DATE_PATTERN",
    "DURATION_PATTERN",
    "display_zone",
    "in_display_zone",
    "parse_date",
    "parse_duration",
    "parse_time",
    "set_display_zone",
    "shown",
]

CST = timezone(timedelta(hours=8), "CST")


_OFFSET = re.compile(r"^([+-])(0\d|1[0-4]):([0-5]\d)$")
_display: list[timezone] = [CST]
"""The zone moments are written in for people and API answers: China Standard Time unless
the operator set `display.utc_offset` at start-up. Hospital data stays China Standard Time
whatever is shown (the national interface says so)."""


def set_display_zone(utc_offset: str) -> timezone:
    """Write moments in `utc_offset` (`+08:00`) from now on, process-wide: set once at start-up
    by the composition root (`dipgw`'s settings), before anything is shown."""
    match = _OFFSET.match(utc_offset)
    if match is None:
        raise ValueError(f"a UTC offset is written +HH:MM (e.g. +08:00), not {utc_offset!r}")
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes)) * (-1 if sign == "-" else 1)
    _display[0] = CST if delta == timedelta(hours=8) else timezone(delta)
    return _display[0]


def display_zone() -> timezone:
    return _display[0]


def in_display_zone(moment: datetime) -> datetime:
    """`moment` in the display zone; a naive moment is refused: it is a bug upstream (which
    zone was it?), never guessed."""
    if moment.tzinfo is None:
        raise ValueError("a moment without a UTC offset (naive): which zone was it?")
    return moment.astimezone(_display[0])


def shown(moment: datetime, timespec: str = "seconds") -> str:
    """A moment as people and API answers see it: ISO 8601 in the display zone (China
    Standard Time unless configured), the offset always written (`2026-11-30T23:15:10+08:00`).
    One clock for people: whatever zone a moment was stored or computed in (UTC in
    PostgreSQL), it is shown through here."""
    return in_display_zone(moment).isoformat(timespec=timespec)


def shown_or_none(moment: datetime | None, timespec: str = "seconds") -> str | None:
    """`shown`, for a moment that may not have happened yet (a column still NULL)."""
    return None if moment is None else shown(moment, timespec)


DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
DATETIME_PATTERN = r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$"
DURATION_PATTERN = r"^\d{1,4}/\d{1,2}/\d{1,2}$"


def parse_time(text: str | None) -> datetime | None:
    """`yyyy-MM-dd HH:mm:ss` or `yyyy-MM-dd` (midnight) as an aware CST datetime; None if not.

    An empty string is the national "no value", so it parses to None as well; callers that
    need to tell "absent" from "malformed" check the text first.
    """
    if not text:
        return None
    n = len(text)
    if n == 19:
        if text[10] != " " or text[4] != "-" or text[7] != "-" or text[13] != ":":
            return None
    elif n == 10:
        if text[4] != "-" or text[7] != "-":
            return None
    else:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=CST)
    except ValueError:
        return None


def parse_date(text: str | None) -> date | None:
    """The calendar date of a national date or datetime text, or None."""
    dt = parse_time(text)
    return None if dt is None else dt.date()


def parse_duration(text: str | None) -> int | None:
    """`天/小时/分钟` (e.g. `1/13/24`) in minutes; None when malformed or out of range."""
    if not text:
        return None
    parts = text.split("/")
    if len(parts) != 3 or not text.isascii():
        return None
    days, hours, minutes = parts
    if not (days.isdigit() and hours.isdigit() and minutes.isdigit()) or len(days) > 4:
        return None
    h, m = int(hours), int(minutes)
    if h >= 24 or m >= 60 or len(hours) > 2 or len(minutes) > 2:
        return None
    return (int(days) * 24 + h) * 60 + m
