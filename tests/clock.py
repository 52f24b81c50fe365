"""The tests' clock: the session's stack and every test document read it, never the real date.

It reads 2026-11-24 09:30 CST (the sample rules' clearing year, the default upload moment of
`contracts.samples`) when the test run starts and advances with real elapsed time, so
receipts stay ordered. Signature timestamps stay on real time (request freshness).
"""

from __future__ import annotations

from datetime import date, datetime

from adapters.runtime.clock import fixed_clock
from contracts import CST

START = datetime(2026, 11, 24, 9, 30, tzinfo=CST)
CLOCK = fixed_clock(START)


def now() -> datetime:
    """The tests' current moment (aware, CST)."""
    return CLOCK()


def naive_now() -> datetime:
    """The tests' current moment as hospital data carries it: CST without an offset."""
    return CLOCK().replace(tzinfo=None)


def today() -> date:
    return CLOCK().date()
