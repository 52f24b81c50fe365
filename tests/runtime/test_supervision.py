"""Worker stages are supervised: whatever ends one early, it is restarted, logged and counted.

Real broker: the stage consumes a topic of its own; its handler fails the way a Kafka outage
made the grouping and scoring stages fail (a stray CancelledError from inside the client).
"""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from adapters.runtime.kafka import ensure_topics
from adapters.runtime.metrics import REGISTRY
from gateway.runtime import LocalServices, Stack, supervised_worker
from workers.registry import WorkerContext, WorkerSpec

pytestmark = pytest.mark.integration


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _run_stage(
    services: LocalServices, stack: Stack, failures: list[BaseException]
) -> tuple[list[bytes], str]:
    """A stage whose handler raises each of `failures` once, then records what it gets."""
    topic = f"test.supervision.{uuid.uuid4().hex[:8]}"
    await ensure_topics(services.settings, services.bootstrap, [topic])
    name = f"probe-{uuid.uuid4().hex[:6]}"
    seen: list[bytes] = []
    pending = list(failures)

    async def handle(records: list) -> None:  # type: ignore[type-arg]
        if pending:
            raise pending.pop(0)
        seen.extend(r.value for r in records)

    spec = WorkerSpec(name, lambda s: [topic], lambda ctx: handle)
    context = WorkerContext(
        settings=services.settings,
        pool=stack.pool,
        producer=stack.producer,
        bootstrap=services.bootstrap,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(supervised_worker(spec, context, stop))
    try:
        await stack.producer.send_and_wait(topic, b"one", b"k")
        for _ in range(300):
            if seen:
                break
            assert not task.done(), task
            await asyncio.sleep(0.1)
        assert _metric("dipgw_worker_up", worker=name) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert _metric("dipgw_worker_up", worker=name) == 0
    return seen, name


async def test_a_stray_cancellation_restarts_the_stage(
    services: LocalServices, stack: Stack
) -> None:
    seen, name = await _run_stage(services, stack, [asyncio.CancelledError()])
    assert seen == [b"one"]  # the batch that failed was replayed, not lost
    restarts = _metric("dipgw_worker_restarts_total", worker=name, cause="CancelledError")
    assert restarts == 1


async def test_a_crash_restarts_the_stage_with_backoff(
    services: LocalServices, stack: Stack
) -> None:
    seen, name = await _run_stage(services, stack, [RuntimeError("bug"), OSError("db away")])
    assert seen == [b"one"]
    assert _metric("dipgw_worker_restarts_total", worker=name, cause="RuntimeError") == 1
    assert _metric("dipgw_worker_restarts_total", worker=name, cause="OSError") == 1


async def test_shutdown_cancels_the_stage_without_a_restart(
    services: LocalServices, stack: Stack
) -> None:
    topic = f"test.supervision.{uuid.uuid4().hex[:8]}"
    await ensure_topics(services.settings, services.bootstrap, [topic])

    async def handle(records: list) -> None:  # type: ignore[type-arg]
        pass

    name = f"probe-{uuid.uuid4().hex[:6]}"
    spec = WorkerSpec(name, lambda s: [topic], lambda ctx: handle)
    context = WorkerContext(
        settings=services.settings,
        pool=stack.pool,
        producer=stack.producer,
        bootstrap=services.bootstrap,
    )
    task = asyncio.create_task(supervised_worker(spec, context, asyncio.Event()))
    for _ in range(100):
        if _metric("dipgw_worker_up", worker=name) == 1:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)
    assert _metric("dipgw_worker_restarts_total", worker=name, cause="CancelledError") == 0


async def test_a_batch_stuck_past_its_time_limit_restarts_the_stage(
    services: LocalServices, stack: Stack
) -> None:
    """A handler waiting on a dependency that stopped answering must not hold the stage for
    ever: past `worker.batch_timeout_s` it is abandoned, the stage restarts, the batch replays."""
    topic = f"test.supervision.{uuid.uuid4().hex[:8]}"
    await ensure_topics(services.settings, services.bootstrap, [topic])
    seen: list[bytes] = []
    calls = 0

    async def handle(records: list) -> None:  # type: ignore[type-arg]
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.Event().wait()  # never answers
        seen.extend(r.value for r in records)

    name = f"probe-{uuid.uuid4().hex[:6]}"
    settings = msgspec.structs.replace(
        services.settings,
        worker=msgspec.structs.replace(services.settings.worker, batch_timeout_s=1.0),
    )
    context = WorkerContext(
        settings=settings, pool=stack.pool, producer=stack.producer, bootstrap=services.bootstrap
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        supervised_worker(WorkerSpec(name, lambda s: [topic], lambda ctx: handle), context, stop)
    )
    try:
        await stack.producer.send_and_wait(topic, b"one", b"k")
        for _ in range(300):
            if seen:
                break
            await asyncio.sleep(0.1)
        assert seen == [b"one"]
        assert _metric("dipgw_worker_restarts_total", worker=name, cause="TimeoutError") == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
