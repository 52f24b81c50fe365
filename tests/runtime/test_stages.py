"""The push-stage clock: the mark travels into the ingestor's task, and a stall of the event
loop shows as loop lag."""

from __future__ import annotations

import asyncio
import time

from adapters.runtime import stages
from adapters.runtime.metrics import EVENT_LOOP_LAG, REGISTRY


def _count(stage: str) -> float:
    value = REGISTRY.get_sample_value("dipgw_push_stage_seconds_count", {"stage": stage})
    return value or 0.0


def _sum(stage: str) -> float:
    return REGISTRY.get_sample_value("dipgw_push_stage_seconds_sum", {"stage": stage}) or 0.0


async def test_a_stage_ended_in_a_child_task_moves_the_requests_mark() -> None:
    async def request() -> bool:
        stages.start()
        await asyncio.sleep(0.02)
        stages.stage_done("auth")

        async def ingestor() -> None:  # as Ingestor.submit_many runs: a task of its own
            await asyncio.sleep(0.03)
            stages.stage_done("reservation")

        await asyncio.ensure_future(ingestor())
        assert stages.ingested()
        stages.stage_done("response")  # counts from the child's mark, not from auth's
        return True

    before = {s: (_count(s), _sum(s)) for s in ("auth", "reservation", "response")}
    assert await asyncio.create_task(request())
    assert _count("auth") - before["auth"][0] == 1
    assert _sum("auth") - before["auth"][1] >= 0.02
    assert _sum("reservation") - before["reservation"][1] >= 0.03
    assert _count("response") - before["response"][0] == 1
    assert _sum("response") - before["response"][1] < 0.02


async def test_outside_a_timed_request_nothing_is_observed() -> None:
    async def feed() -> bool:  # a feed's submission: no request, no mark
        stages.stage_done("reservation")
        return stages.ingested()

    before = _count("reservation")
    assert await asyncio.create_task(feed()) is False
    assert _count("reservation") == before


async def test_a_held_loop_shows_as_loop_lag() -> None:
    def lagged() -> float:
        return sum(
            s.value
            for m in REGISTRY.collect()
            if m.name == "dipgw_event_loop_lag_seconds"
            for s in m.samples
            if s.name.endswith("_bucket") and s.labels["le"] == "+Inf"
        ) - sum(
            s.value
            for m in REGISTRY.collect()
            if m.name == "dipgw_event_loop_lag_seconds"
            for s in m.samples
            if s.name.endswith("_bucket") and s.labels["le"] == "0.025"
        )

    assert EVENT_LOOP_LAG is not None
    before = lagged()
    stop = asyncio.Event()
    watcher = asyncio.create_task(stages.watch_loop_lag(stop, every_s=0.01))
    await asyncio.sleep(0.03)
    time.sleep(0.06)  # a blocking slice: every timer due meanwhile runs late
    await asyncio.sleep(0.03)
    stop.set()
    await watcher
    assert lagged() - before >= 1  # at least one wake-up more than 25 ms late
