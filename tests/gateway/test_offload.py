"""The checker refuses hostile input as a whole request or one record, never with an
exception (issue 11); the file workers check uploads in other processes, stop a task at its
deadline, answer a worker's memory ceiling, and replace a pool whose worker died."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from adapters import FORMATS, InputLimits
from contracts import CST
from gateway import refusals
from gateway.checks import Checked, Checker, Rejected
from gateway.offload import FileWorkers, FileWorkersUnavailable
from tests.adapters import bombs
from tests.adapters.test_limits import GENEROUS
from tests.builders import golden

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=CST)
CHECKER = Checker()


def _rules(whole: Rejected) -> list[str]:
    return [e.rule for e in whole.errors]


# -- the checker ------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [bombs.deep_array(), bombs.deep_object(), bombs.deep_envelope()])
def test_a_body_nested_too_deeply_is_refused_whole(body: bytes) -> None:
    with pytest.raises(Rejected) as caught:
        CHECKER.check_one(body, NOW)
    assert _rules(caught.value) == [refusals.JSON_TOO_DEEP.rule]
    assert "512" in caught.value.errors[0].message_en
    for kind, upload in (
        ("batch", b'{"records": [' + body + b"]}"),
        ("batch", b"[" + body + b"]"),
        ("json", body),
    ):
        with pytest.raises(Rejected) as caught:
            CHECKER.check_many(upload, kind, NOW, max_records=10)
        assert _rules(caught.value) == [refusals.JSON_TOO_DEEP.rule], kind


def test_a_deep_ndjson_line_is_rejected_alone() -> None:
    results = CHECKER.check_many(bombs.deep_ndjson(), "ndjson", NOW, max_records=10)
    assert [type(r) for r in results] == [Checked, Rejected, Checked]
    rejected = results[1]
    assert isinstance(rejected, Rejected) and rejected.position == "line 2"
    assert _rules(rejected) == [refusals.JSON_TOO_DEEP.rule]


def test_unstorable_text_deep_in_a_document_is_found_without_recursion() -> None:
    deep = bombs.deep_envelope(700).replace(b'"extra":[', b'"extra":["\\u0000",', 1)
    result = CHECKER.check_one(deep, NOW)
    assert isinstance(result, Rejected) and _rules(result) == ["FMT004"]


@pytest.mark.parametrize("name", list(bombs.XLSX_BOMBS))
def test_every_xlsx_bomb_is_a_refusal_naming_its_limit(name: str) -> None:
    build, limit = bombs.XLSX_BOMBS[name]
    with pytest.raises(Rejected) as caught:
        CHECKER.check_many(build(), "xlsx", NOW, max_records=1000)
    (problem,) = caught.value.errors
    assert problem.rule in (refusals.FILE_TOO_LARGE.rule, refusals.SHEET_LIMIT.rule)
    assert limit in problem.message_en
    assert problem.severity == "reject" and problem.message and problem.dimension


def test_a_sheet_past_a_configured_limit() -> None:
    checker = Checker(limits=InputLimits(rows=3))
    data = FORMATS.get("xlsx").write([golden()] * 5)  # type: ignore[union-attr]
    with pytest.raises(Rejected) as caught:
        checker.check_many(data, "xlsx", NOW, max_records=10)
    assert _rules(caught.value) == [refusals.SHEET_LIMIT.rule]
    assert caught.value.errors[0].message_en == "the sheet passes a limit: rows at most 3"


# -- the file workers -------------------------------------------------------------------------


@pytest.fixture
async def workers() -> AsyncIterator[FileWorkers]:
    files = FileWorkers(workers=1, memory_mb=1024, limits=InputLimits(), time_limit_s=10)
    await files.warm()
    try:
        yield files
    finally:
        files.close()


async def test_a_file_is_checked_in_another_process(workers: FileWorkers) -> None:
    data = FORMATS.get("xlsx").write([golden()])  # type: ignore[union-attr]
    (result,) = await workers.check(data, "xlsx", NOW, max_records=10)
    assert isinstance(result, Checked) and result.upload.setl_id == "SETL000000000001"
    with pytest.raises(Rejected) as caught:
        await workers.check(bombs.far_row(), "xlsx", NOW, max_records=10)
    assert _rules(caught.value) == [refusals.SHEET_LIMIT.rule]
    pids = [p.pid for p in workers._pool()._processes.values()]  # type: ignore[attr-defined]
    assert pids and os.getpid() not in pids


async def test_a_task_past_its_deadline_stops_itself() -> None:
    files = FileWorkers(workers=1, memory_mb=0, limits=GENEROUS, time_limit_s=0.5)
    try:
        await files.warm()
        started = time.perf_counter()
        with pytest.raises(Rejected) as caught:  # ten million rows, no limit: tens of seconds
            await files.check(bombs.empty_rows(), "xlsx", NOW, max_records=10)
        assert _rules(caught.value) == [refusals.FILE_TOO_LARGE.rule]
        assert "parse seconds at most 1" in caught.value.errors[0].message_en
        assert time.perf_counter() - started < 5
        data = FORMATS.get("xlsx").write([golden()])  # type: ignore[union-attr]
        assert len(await files.check(data, "xlsx", NOW, max_records=10)) == 1  # still serving
    finally:
        files.close()


async def test_a_worker_past_its_memory_ceiling_refuses_the_file() -> None:
    files = FileWorkers(workers=1, memory_mb=128, limits=GENEROUS, time_limit_s=20)
    try:
        await files.warm()
        try:  # a 64 MiB shared string, with no limit but the worker's memory
            await files.check(bombs.huge_shared_string(64 << 20), "xlsx", NOW, max_records=10)
        except Rejected as whole:
            assert _rules(whole) == [refusals.FILE_TOO_LARGE.rule]
            assert "memory at most 128" in whole.errors[0].message_en
        except FileWorkersUnavailable:
            pass  # the allocation failed where Python could not raise: the worker died
        else:
            pytest.fail("a 64 MiB string fitted in 128 MiB (a worker starts at ~80)")
        data = FORMATS.get("xlsx").write([golden()])  # type: ignore[union-attr]
        assert len(await files.check(data, "xlsx", NOW, max_records=10)) == 1
    finally:
        files.close()


async def test_a_dead_worker_is_a_503_and_a_fresh_pool_serves_the_next_file() -> None:
    files = FileWorkers(workers=1, memory_mb=0, limits=GENEROUS, time_limit_s=20)
    try:
        await files.warm()
        pool = files._pool()
        task = asyncio.create_task(files.check(bombs.empty_rows(), "xlsx", NOW, max_records=10))
        await asyncio.sleep(0.5)  # it is parsing
        for process in pool._processes.values():  # type: ignore[attr-defined]
            os.kill(process.pid, signal.SIGKILL)
        with pytest.raises(FileWorkersUnavailable):
            await task
        data = FORMATS.get("xlsx").write([golden()])  # type: ignore[union-attr]
        assert len(await files.check(data, "xlsx", NOW, max_records=10)) == 1
        assert files._pool() is not pool
    finally:
        files.close()


async def test_a_full_queue_answers_at_once() -> None:
    files = FileWorkers(workers=1, memory_mb=0, limits=GENEROUS, time_limit_s=1, queue=1)
    try:
        await files.warm()
        slow = asyncio.create_task(files.check(bombs.empty_rows(), "xlsx", NOW, max_records=10))
        await asyncio.sleep(0.1)
        with pytest.raises(FileWorkersUnavailable):
            await files.check(b"", "xlsx", NOW, max_records=10)
        with pytest.raises(Rejected):
            await slow
    finally:
        files.close()


async def test_closed_workers_refuse() -> None:
    files = FileWorkers(workers=1, memory_mb=0, limits=InputLimits(), time_limit_s=3)
    files.close()
    with pytest.raises(FileWorkersUnavailable):
        await files.check(b"", "xlsx", NOW, max_records=10)


_GATEWAY = """
import asyncio, os, sys, time
import psutil
from adapters import InputLimits
from gateway.offload import FileWorkers

async def main():
    files = FileWorkers(workers=2, memory_mb=0, limits=InputLimits(), time_limit_s=10)
    await files.warm()
    children = psutil.Process().children(recursive=True)
    print(" ".join(str(c.pid) for c in children), flush=True)
    time.sleep(120)

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_the_workers_die_with_a_killed_gateway(tmp_path: Path) -> None:
    import psutil

    script = tmp_path / "gateway_process.py"
    script.write_text(_GATEWAY)
    root = Path(__file__).resolve().parents[2]
    gateway = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert gateway.stdout is not None
        children = [psutil.Process(int(pid)) for pid in gateway.stdout.readline().split()]
        assert len(children) >= 3  # the forkserver, two workers (and a resource tracker)
    finally:
        gateway.kill()
        gateway.wait()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], [p.cmdline()[-1][:60] for p in alive]
