"""Where a push's time goes: one histogram series per stage (`dipgw_push_stage_seconds`).

A push crosses several modules (the middleware authenticates, the route validates, the
ingestor reserves, produces and waits for the acknowledgement, the middleware answers), so
the clock travels with the request as a context variable: each stage observes the time since
the previous one ended. The ingestor's work runs in a task of its own (it outlives a cancelled
request); a task copies the context, and the mark is a mutable cell, so the task's stages
move the request's mark too. Outside a timed request (a feed, a worker) nothing is observed.
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar

from adapters.runtime.metrics import EVENT_LOOP_LAG, PUSH_STAGE_SECONDS

__all__ = ["STAGES", "ingested", "stage_done", "start", "watch_loop_lag"]

STAGES = ("auth", "validation", "reservation", "produce", "ack", "response")


class _Mark:
    __slots__ = ("at", "ingested")

    def __init__(self) -> None:
        self.at = time.perf_counter()
        self.ingested = False


_MARK: ContextVar[_Mark | None] = ContextVar("dipgw_push_stage_mark", default=None)


def start() -> None:
    """Start timing this request's stages (its first stage counts from here)."""
    _MARK.set(_Mark())


def stage_done(stage: str) -> None:
    """`stage` of the current request has ended: observe it, and start the next one's time."""
    mark = _MARK.get()
    if mark is None:
        return
    now = time.perf_counter()
    PUSH_STAGE_SECONDS.labels(stage).observe(now - mark.at)
    mark.at = now
    if stage == "reservation":
        mark.ingested = True


def ingested() -> bool:
    """Whether this request reached the ingestor (only then is its answer a push's)."""
    mark = _MARK.get()
    return mark is not None and mark.ingested


async def watch_loop_lag(stop: asyncio.Event, every_s: float = 0.05) -> None:
    """Observe how late the loop wakes a timer, until `stop`: a stall every request shares
    (a long CPU slice, a pause) shows here and not in any one stage."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + every_s
        await asyncio.sleep(every_s)
        EVENT_LOOP_LAG.observe(max(0.0, loop.time() - due))
