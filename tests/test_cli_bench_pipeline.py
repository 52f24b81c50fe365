"""`dipgw bench pipeline`: what it counts as scored and how it fails (pure, no broker), and a
short run on its own local Kafka and PostgreSQL that gives the figures and leaves nothing
running."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from gateway.commands.bench_pipeline import (
    MIN_SCORED_SHARE,
    _feed,
    scored_check,
    scored_shortfall,
)
from gateway.demo_feed import RATED_HOSPITALS
from workers.dip import SAMPLE_RULES, rules_for_year, sample_rules

ROOT = Path(__file__).parent.parent


def test_cases_are_sent_only_to_cities_with_rules() -> None:
    assert RATED_HOSPITALS and all(city in SAMPLE_RULES for _, _, city, _ in RATED_HOSPITALS)
    cases = _feed(60, random.Random(1), 0, now=datetime(2026, 11, 24, 9, 30))
    assert {c.city for c in cases} <= set(SAMPLE_RULES)
    assert len({c.setl_id for c in cases}) == 60


def test_early_january_cases_fall_in_two_clearing_years_and_get_rules_for_both() -> None:
    cases = _feed(200, random.Random(2), 0, now=datetime(2027, 1, 3, 8, 0))
    assert {c.year for c in cases} == {2026, 2027}
    rules = sample_rules("440100")
    moved = rules_for_year(rules, 2027)
    assert (moved.clearing_year, moved.city, moved.groups) == (2027, "440100", rules.groups)
    assert rules.clearing_year == 2026  # the cached sample rules are left alone
    assert moved.version_id != rules.version_id


def _outcome(status: str, cases: int, reason: str | None = None) -> dict[str, object]:
    return {"city": "440100", "year": 2026, "status": status, "reason": reason, "cases": cases}


def test_only_scored_rows_count_as_scored() -> None:
    cases = _feed(100, random.Random(3), 0, now=datetime(2026, 11, 24, 9, 30))
    outcomes = [_outcome("scored", 60), _outcome("unscored", 40, "DIP_NO_RULES")]
    check = scored_check(cases, outcomes)
    assert (check["sent_to_cities_with_rules"], check["scored"], check["unscored"]) == (100, 60, 40)
    assert "only 60 of 100" in (scored_shortfall(check) or "")


def test_a_run_that_scores_nothing_or_too_little_fails_and_a_good_one_does_not() -> None:
    nothing = {"sent_to_cities_with_rules": 5000, "scored": 0}
    assert "no case was scored" in (scored_shortfall(nothing) or "")
    short = {"sent_to_cities_with_rules": 1000, "scored": int(1000 * MIN_SCORED_SHARE) - 1}
    assert scored_shortfall(short) is not None
    assert scored_shortfall({"sent_to_cities_with_rules": 1000, "scored": 1000}) is None


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
    for key in (
        "e2e_steady_achieved_rate",
        "e2e_steady_rate_met",
        "e2e_steady_send_lag_p99_ms",
        "e2e_steady_scored_per_s",
        "e2e_rows_per_s",
        "e2e_outcomes",
        "e2e_scored_by_year",
        "e2e_scored_by_city",
        "e2e_rules_years",
        "e2e_push_answers",
        "settings",
    ):
        assert key in result
    check = result["e2e_scored_check"]
    assert check["sent_to_cities_with_rules"] == 200 * 2 + 600
    assert check["scored"] == check["sent_to_cities_with_rules"]  # every case, and only scored
    assert set(result["e2e_scored_by_city"]) <= set(SAMPLE_RULES)
    ran = result["settings"]
    assert ran["brokers"] == 1 and ran["non_default"] == {"worker.max_batch": 1000}
    assert ran["producer"]["acks"] == "all"
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in ps  # its broker, database and `dipgw up` processes are gone


def test_brokers_other_than_one_are_refused_until_a_local_cluster_exists() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "bench", "pipeline", "--brokers", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "only a 1-broker local Kafka" in proc.stderr
