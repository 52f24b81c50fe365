"""File uploads parsed and checked off the event loop, in a pool of worker processes.

Reading a spreadsheet is CPU work in pure Python (zip, XML, openpyxl) and a hostile one asks
for a lot of it: done inside a handler it stops every other request of the process, the
health check included, and the request's time limit cannot interrupt it (a timeout is only
noticed when the handler awaits). So the file endpoint hands the body to `FileWorkers`:

- **Processes, not threads.** A thread would still hold the GIL for most of the parse, so the
  loop would get a turn only every few milliseconds; a process can also be given a memory
  ceiling (`RLIMIT_AS`) and be killed. The input limits (`adapters.InputLimits`) make every
  parse short and small; the process is the guard against what the limits did not foresee.
- **Memory.** Each worker runs under `memory_mb` of address space: an allocation past it is a
  `MemoryError` in the worker, answered FILE_TOO_LARGE (`memory`); a worker that dies anyway
  breaks the pool, the uploads in it are answered 503 (retry) and a fresh pool is made.
- **Time.** Each task has a deadline a little inside the request's time limit (SIGALRM in the
  worker): a parse still running then stops itself and is answered 413 FILE_TOO_LARGE
  (`parse seconds`: the same file would take as long again, so not a 503 to retry). An
  upload whose request timed out while it waited for a worker is taken off the queue.
- **Queue.** At most `queue` uploads wait or run at once; past that the answer is 503 at once
  rather than a queue that outlives the requests in it.
- **Start.** Workers are forked from a `forkserver` that has imported the checker once, so a
  replacement worker starts in milliseconds; the pool is warmed in the background when the
  application starts and workers are started from a thread, never on the loop. A worker
  exits when the gateway process does, however it ends (the forkserver then follows).

The workers check with a `Checker` of their own (`checker_factory(limits=…)`, the default
rules: the gateway's `Checker()`), so the formats they know are those registered when
`adapters` is imported.
"""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any

from adapters import InputLimits, LimitExceeded
from adapters.runtime.errors import DipgwError
from adapters.runtime.logs import get_logger
from adapters.runtime.settings import LimitSettings
from gateway.checks import Checked, Checker, Rejected, over_limit

__all__ = ["FileWorkers", "FileWorkersUnavailable", "input_limits"]

log = get_logger("dipgw.files")

Results = list[Checked | Rejected]


class FileWorkersUnavailable(DipgwError, RuntimeError):
    """The upload could not be checked now (queue full, a worker died): answer 503, retry."""


class WorkerDeadline(DipgwError, TimeoutError):
    """Raised inside a worker when its task's time is up."""


def input_limits(settings: LimitSettings) -> InputLimits:
    """The spreadsheet limits of the `[limits]` settings."""
    return InputLimits(
        rows=settings.sheet_max_rows,
        columns=settings.sheet_max_columns,
        cells=settings.sheet_max_cells,
        shared_strings_bytes=settings.xlsx_max_shared_strings_bytes,
        unzipped_bytes=settings.xlsx_max_unzipped_bytes,
    )


# -- in the worker process ------------------------------------------------------------------

_CHECKER: Checker | None = None
_MEMORY_MB = 0


def _on_alarm(signum: int, frame: object) -> None:
    raise WorkerDeadline("file check deadline")


def _start_worker(
    memory_mb: int, limits: InputLimits, checker_factory: Callable[..., Checker]
) -> None:
    global _CHECKER, _MEMORY_MB
    if memory_mb:
        import resource

        ceiling = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    _MEMORY_MB = memory_mb
    parent = multiprocessing.parent_process()
    if parent is not None and parent.sentinel is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _CHECKER = checker_factory(limits=limits)


def _exit_with(sentinel: int) -> None:
    """Die with the gateway, even a SIGKILLed one: a worker's parent is the forkserver, which
    in turn lives as long as any worker does, so nothing else would end them."""
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def _ready() -> int:
    return os.getpid()


def _check_file(
    body: bytes, kind: str, received_at: datetime, max_records: int, time_limit_s: float
) -> Results:
    """One upload, in a worker: its records, or `Rejected` for the upload as a whole."""
    assert _CHECKER is not None, "worker not started"
    signal.setitimer(signal.ITIMER_REAL, time_limit_s)
    try:
        return _CHECKER.check_many(body, kind, received_at, max_records=max_records)
    except MemoryError:
        refused = over_limit(LimitExceeded("memory", _MEMORY_MB, "more"))
    except TimeoutError:  # the same file would take as long again: not a 503 to retry
        refused = over_limit(LimitExceeded("parse seconds", math.ceil(time_limit_s), "more"))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    # Raised here, not in the handler: chained to the failure (`__context__`), the refusal
    # would keep its traceback's frames, and what they hold, alive in this worker.
    gc.collect()
    raise refused


# -- in the gateway process -----------------------------------------------------------------


class FileWorkers:
    """A pool of `workers` processes checking file uploads (see the module's docstring)."""

    def __init__(
        self,
        *,
        workers: int,
        memory_mb: int,
        limits: InputLimits,
        time_limit_s: float,
        queue: int | None = None,
        checker_factory: Callable[..., Checker] = Checker,
    ) -> None:
        if workers < 1:
            raise ValueError("file workers: at least 1")
        self.workers = workers
        self.memory_mb = memory_mb
        self.limits = limits
        self.time_limit_s = time_limit_s
        self.queue = queue or 4 * workers
        self._factory = checker_factory
        self._executor: ProcessPoolExecutor | None = None
        self._busy = 0
        self._closed = False
        self._warming: asyncio.Task[None] | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._closed:
            raise FileWorkersUnavailable("file workers are shut down")
        if self._executor is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["gateway.offload", "openpyxl.reader.excel"])
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=context,
                initializer=_start_worker,
                initargs=(self.memory_mb, self.limits, self._factory),
            )
        return self._executor

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        """A broken pool is dropped (its workers killed); the next upload makes a fresh one."""
        if self._executor is executor:
            self._executor = None
        _kill(executor)

    async def warm(self) -> None:
        """Start the workers (in a thread: the forkserver's first start imports the checker)."""
        try:
            pool = self._pool()
            futures = await asyncio.to_thread(
                lambda: [pool.submit(_ready) for _ in range(self.workers)]
            )
            await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        except Exception as exc:  # the first upload tries again
            log.warning("file_workers.warm_failed", error=type(exc).__name__)

    async def check(
        self, body: bytes, kind: str, received_at: datetime, *, max_records: int
    ) -> Results:
        """`Checker.check_many` in a worker. Raises `Rejected` for the upload as a whole and
        `FileWorkersUnavailable` when it cannot be checked now."""
        if self._busy >= self.queue:
            raise FileWorkersUnavailable("file workers busy")
        pool = self._pool()
        self._busy += 1
        future: Future[Results] | None = None
        try:
            future = await asyncio.to_thread(
                pool.submit, _check_file, body, kind, received_at, max_records, self.time_limit_s
            )
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            log.warning("file_workers.broken", workers=self.workers)
            self._discard(pool)
            raise FileWorkersUnavailable("a file worker died") from None
        except RuntimeError as exc:  # submit after shutdown
            if isinstance(exc, DipgwError):
                raise
            raise FileWorkersUnavailable(str(exc)) from None
        finally:
            self._busy -= 1
            if future is not None:
                future.cancel()  # not yet started (the request gave up): never start it

    def close(self) -> None:
        """Stop the workers at once (the application is shutting down)."""
        self._closed = True
        if self._executor is not None:
            _kill(self._executor)
            self._executor = None

    async def on_startup(self, app: Any) -> None:
        """aiohttp start-up signal: warm the pool in the background."""
        self._warming = asyncio.create_task(self.warm(), name="file-workers-warm")

    async def on_cleanup(self, app: Any) -> None:
        """aiohttp clean-up signal (after the requests in flight finished): stop the workers."""
        if self._warming is not None and not self._warming.done():
            self._warming.cancel()
        self.close()


def _kill(executor: ProcessPoolExecutor) -> None:
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()
