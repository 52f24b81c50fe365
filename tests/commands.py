"""Run this repository's own `dipgw`: in-process (validate, codes, bench) or as the real CLI
in a subprocess (`dipgw`, with `cli_env`)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

MODULES = (
    "gateway.commands.bench",
    "gateway.commands.bench_validate",
    "gateway.commands.codes",
    "gateway.commands.validate",
)


def run(argv: list[str]) -> int:
    """Parse and run like `dipgw`, with only the commands above registered."""
    parser = argparse.ArgumentParser(prog="dipgw")
    sub = parser.add_subparsers(dest="command")
    for name in MODULES:
        importlib.import_module(name).register(sub)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return int(args.func(args))


async def dipgw(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the real `dipgw` CLI in a subprocess (it runs its own event loop)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        cwd=Path(__file__).parent.parent,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


def cli_env(dsn: str, bootstrap: str, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(
        DIPGW_PG_DSN=dsn,
        DIPGW_KAFKA_BOOTSTRAP=bootstrap,
        DIPGW_STATE_DIR=str(state),
        DIPGW_LOG_LEVEL="warning",
    )
    return env


def dipgw_sync(services: Any, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run the real `dipgw` CLI as an operator would, on the session's database and state
    directory (`services`: a `LocalServices`, or None for neither); `extra` DIPGW_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(DIPGW_LOG_LEVEL="warning", **extra)
    if services is not None:
        env.update(DIPGW_PG_DSN=services.dsn, DIPGW_STATE_DIR=str(services.settings.state_path))
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=Path(__file__).parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
