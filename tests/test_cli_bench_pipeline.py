"""`dipgw bench pipeline --json`: a short run on its own local Kafka and PostgreSQL gives the
three figures, and leaves nothing running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.integration
def test_bench_pipeline_reports_the_figures(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(DIPGW_STATE_DIR=str(tmp_path / "state"), TMPDIR=str(tmp_path))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "bench",
            "pipeline",
            "--json",
            "--pure-s",
            "0.3",
            "--rate",
            "200",
            "--steady-s",
            "2",
            "--max-cases",
            "600",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["group_score_cases_per_s"] > 1000
    assert result["e2e_cases_per_s"] > 0 and 0 < result["e2e_p99_ms"] < 60_000
    assert result["e2e_p50_ms"] <= result["e2e_p99_ms"]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in ps  # its broker, database and `dipgw up` processes are gone
