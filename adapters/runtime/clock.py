"""The clock of a running stack: when an upload is received, which day a report ends.

The gateway stamps `received_at` (and validation judges a discharge against it), the ops API
takes its default report period from it, and the workers' quality evaluator its "now". It is
one injectable callable per stack (`running_stack(clock=…)`) so that tests can run the whole
pipeline at a fixed date whatever the real date is. Signature freshness (X-Dipgw-Timestamp)
is about the request, not the data, and stays on real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from contracts import CST

Clock = Callable[[], datetime]
"""Returns the current moment as an aware China Standard Time (+08:00) datetime."""


def system_clock() -> datetime:
    """The real time, in CST."""
    return datetime.now(CST)


def fixed_clock(start: datetime) -> Clock:
    """A clock that reads `start` now and then advances with real elapsed (monotonic) time,
    so moments read later are later, as receipts need."""
    if start.tzinfo is None:
        raise ValueError("the start of a clock must be an aware datetime")
    begin, origin = start.astimezone(CST), time.monotonic()

    def now() -> datetime:
        return begin + timedelta(seconds=time.monotonic() - origin)

    return now
