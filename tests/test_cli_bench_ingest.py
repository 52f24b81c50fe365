"""`dipgw bench ingest` runs end to end and prints the figures it promises (no timing asserts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parent.parent


def test_bench_ingest_json_has_every_figure(scratch_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(DIPGW_STATE_DIR=str(scratch_dir))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "bench",
            "ingest",
            "--json",
            "--seconds",
            "1",
            "--rate",
            "20",
            "--port",
            "0",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in (
        "batched_records_per_s",
        "single_p50_ms",
        "single_p99_ms",
        "single_requests_per_s",
        "cores",
    ):
        assert key in figures
    assert figures["cores"] == os.cpu_count()
    assert figures["batched_records_per_s"] > 0 and figures["single_requests_per_s"] > 0
    assert figures["batched_errors"] == 0 and figures["single_errors"] == 0
