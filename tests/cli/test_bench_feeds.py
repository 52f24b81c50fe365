"""`dipgw bench feeds --json`: a short real run prints the figures the issue names, every row
accepted (the bench refuses to print a rate of rows that were not)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


def test_bench_feeds_prints_rows_per_second_of_table_and_files() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    run = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "bench", "feeds", "--json",
         "--rows", "400", "--files", "2", "--file-rows", "150", "--batch", "100"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["db_rows"] == 400 and figures["file_rows"] == 300
    for key in ("db_rows_per_s", "db_document_rows_per_s", "file_rows_per_s"):
        assert figures[key] > 0, key
    assert figures["cpu_ms_per_row"]["db"] > 0


def test_bench_feeds_refuses_sizes_out_of_bounds() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    run = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "bench", "feeds", "--rows", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2 and "bounds" in run.stderr
