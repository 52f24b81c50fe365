"""CI fails a run in which any test skipped (tests/conftest.pytest_sessionfinish)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(("ci", "code"), [("true", 1), ("", 0)])
def test_a_skip_fails_the_run_in_ci_only(ci: str, code: int) -> None:
    env = {**os.environ, "CI": ci}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/_skip_probe.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == code, run.stdout + run.stderr
    assert ("no test may skip in CI" in run.stdout) == bool(ci)
