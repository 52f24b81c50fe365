"""`dipgw up` child processes, for the benchmarks and the fault drill: spawned with a whole
environment of their own (nothing of ours leaks in), ready when they print their ready line.

Each child is a real process with its own event loop, so several of them use several cores
and can be killed (SIGKILL) like a production process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from gateway.localkafka import die_with_parent

ROOT = Path(__file__).resolve().parent.parent


def child_env(state_dir: str, bootstrap: str, dsn: str, **extra: str) -> dict[str, str]:
    """Every child's whole environment: no DIPGW_* of ours leaks in, so what it runs with
    is the defaults + this (read back with `settings.load_settings(None, environ=env)`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(
        DIPGW_STATE_DIR=state_dir,
        DIPGW_KAFKA_BOOTSTRAP=bootstrap,
        DIPGW_PG_DSN=dsn,
        DIPGW_HTTP_HOST="127.0.0.1",
        DIPGW_HTTP_PORT="0",
        DIPGW_LOG_LEVEL="warning",
        DIPGW_LOG_FORMAT="json",
    )
    env.update(extra)
    return env


def spawn_up(env: dict[str, str], *args: str, log: Path | None = None) -> subprocess.Popen[str]:
    """`dipgw up ARGS` in a child that dies with this process; its log to `log` (else none)."""
    err = open(log, "a") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "up", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            preexec_fn=die_with_parent,
        )
    finally:
        if log is not None and not isinstance(err, int):
            err.close()


async def wait_ready(proc: subprocess.Popen[str], timeout_s: float = 120) -> str:
    """Wait for `dipgw up`'s ready line; returns the gateway URL (or '(off)')."""
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout_s)
    if not line.startswith("dipgw is up"):
        raise RuntimeError(f"dipgw up did not start (exit {proc.poll()}): {line!r}")
    return line.split()[4].rstrip(",")


def stop_all(procs: list[subprocess.Popen[str]], timeout_s: float = 30) -> None:
    """SIGTERM (graceful: in-flight work finishes), then SIGKILL what is still running."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
