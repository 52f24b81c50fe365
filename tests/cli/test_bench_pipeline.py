"""`dipgw bench pipeline`: what it counts as scored and how it fails, how the scale-out keys
come from measured layouts, what the peer's figures are made of (pure, no broker); a short run
on its own local Kafka and PostgreSQL that gives the figures and leaves nothing running, the
same beside the obvious peer (`--peer`), and a short one on a local 3-broker cluster that
measures both scale-out layouts."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.runtime.settings import load_settings
from gateway.bench.common import scale_out_keys
from gateway.bench.pipeline import (
    LAYOUTS,
    MIN_SCORED_SHARE,
    PEER_BATCH,
    PEER_CONCURRENCY,
    STAGES,
    _cpu_seconds,
    _feed,
    _Replay,
    layout_env,
    peer_figures,
    peer_seconds,
    scored_check,
    scored_shortfall,
    still_to_send,
    void_reason,
)
from gateway.demo_feed import RATED_HOSPITALS
from workers.dip import SAMPLE_RULES, rules_for_year, sample_rules

ROOT = Path(__file__).parents[2]


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
def test_bench_pipeline_reports_the_figures(scratch_dir: Path) -> None:
    tmp_path = scratch_dir  # not under pytest's 0700 tree: the embedded PostgreSQL's user
    result = _bench(
        tmp_path,
        "--no-scale-out",
        "--pure-s",
        "0.3",
        "--rate",
        "200",
        "--steady-s",
        "2",
        "--max-cases",
        "600",
        timeout=240,
    )
    assert "e2e_cases_per_s_1proc" not in result
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
    assert ran["brokers"] == 1 and ran["non_default"] == {
        "worker.max_batch": 1000,
        "limits.records_per_s": 1e6,
        "limits.records_burst": 1000000,
    }
    assert ran["producer"]["acks"] == "all"
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in ps  # its broker, database and `dipgw up` processes are gone


def test_unavailable_lists_are_sent_again_and_a_duplicate_only_ends_a_retry() -> None:
    docs = [b"a", b"b", b"c"]
    assert still_to_send(docs, ["accepted", "unavailable", "accepted"], retry=False) == [b"b"]
    # The 503'd list did reach Kafka after all: on the retry it is a duplicate, and in.
    assert still_to_send([b"b"], ["duplicate"], retry=True) == []
    for outcome, retry in (
        (["accepted", "duplicate", "accepted"], False),  # new lists: never duplicates
        (["accepted", "rejected", "accepted"], True),
        (["accepted", "accepted"], False),  # an answer short of the push
    ):
        with pytest.raises(ValueError):
            still_to_send(docs, outcome, retry=retry)


def test_the_scale_out_keys_come_from_each_layouts_measured_sustained_run() -> None:
    one = {"e2e_cases_per_s": 1480, "e2e_backlog_scored": 600}
    two = {"e2e_cases_per_s": 1390, "e2e_backlog_scored": 600}
    assert scale_out_keys({"1proc": one, "2proc": two}) == {
        "e2e_cases_per_s_1proc": 1480,
        "e2e_cases_per_s_2proc": 1390,  # not higher on 2 cores: reported as measured
    }
    for unmeasured in ({"e2e_cases_per_s": 0, "e2e_backlog_scored": 600}, {}):
        with pytest.raises(ValueError, match="2proc"):
            scale_out_keys({"1proc": one, "2proc": unmeasured})


def test_the_layouts_run_every_stage_in_one_then_in_two_processes() -> None:
    assert LAYOUTS == {"1proc": [STAGES], "2proc": [STAGES, STAGES]}
    assert set(STAGES.split(",")) == {"sink", "grouping", "scoring", "scored_sink"}


def test_each_layout_has_its_own_topics_and_consumer_groups() -> None:
    settings = {tag: load_settings(None, environ=layout_env(tag)) for tag in LAYOUTS}
    default = load_settings(None, environ={})
    names = {}
    for tag, s in settings.items():
        topics = msgspec.structs.asdict(s.topics)
        names[tag] = {v for v in topics.values() if isinstance(v, str)}
        for field, value in msgspec.structs.asdict(default.topics).items():
            if isinstance(value, str):
                assert topics[field] == f"bench-{tag}.{value}"
        assert s.worker.group_prefix == f"dipgw-bench-{tag}"
        assert s.topics.partitions == default.topics.partitions
    assert not names["1proc"] & names["2proc"]


def test_cpu_seconds_add_up_every_process_of_a_group() -> None:
    me = os.getpid()
    used = _cpu_seconds({"one": [me], "twice": [me, me], "none": []})
    assert used["one"] > 0 and used["twice"] == used["one"] and used["none"] == 0


def test_a_broker_count_other_than_one_or_three_is_refused() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "bench", "pipeline", "--brokers", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--brokers" in proc.stderr


def _bench(tmp_path: Path, *args: str, timeout: float) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(DIPGW_STATE_DIR=str(tmp_path / "state"), TMPDIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "bench", "pipeline", "--json", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout))


@pytest.mark.integration
def test_bench_pipeline_on_three_brokers_measures_both_scale_out_layouts(
    scratch_dir: Path,
) -> None:
    tmp_path = scratch_dir  # not under pytest's 0700 tree: the embedded PostgreSQL's user
    result = _bench(
        tmp_path,
        "--brokers",
        "3",
        "--pure-s",
        "0.2",
        "--rate",
        "100",
        "--steady-s",
        "1",
        "--max-cases",
        "400",
        timeout=600,
    )
    ran = result["settings"]
    assert (ran["brokers"], ran["replication_factor"], ran["min_insync_replicas"]) == (3, 3, 2)
    assert ran["non_default"]["topics.replication_factor"] == 3
    scale = result["e2e_scale_out"]
    assert (scale["brokers"], scale["replication_factor"], scale["min_insync_replicas"]) == (
        3,
        3,
        2,
    )
    assert scale["backlog_cases"] == 400
    for tag, processes in (("1proc", 1), ("2proc", 2)):
        run = scale["layouts"][tag]
        assert result[f"e2e_cases_per_s_{tag}"] == run["e2e_cases_per_s"] > 0
        assert len(run["worker_processes"]) == processes
        check = run["scored_check"]
        # Each layout scored its own backlog, every case of it, and nothing of the other's.
        assert check["scored"] == check["sent_to_cities_with_rules"] == 400
        assert run["e2e_backlog_scored"] == 400
        assert run["cluster"]["brokers"] == 3
        assert set(run["e2e_cpu_s_per_1000_cases"]) == {"gateway", "workers", "kafka", "postgres"}
        assert run["e2e_cpu_s_per_1000_cases"]["workers"] > 0
        assert run["non_default"]["topics.accepted"].startswith(f"bench-{tag}.")
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in ps


def test_the_peer_figures_give_its_accepted_records_per_s_and_dipgws_rate_over_it() -> None:
    records = {"accepted": 9000, "rejected": 0, "unavailable": 1000}
    figures = peer_figures(
        4.5, records, {"200": 18, "503": 2}, [80.0, 120.0], {"gateway": 0.4}, 6000
    )
    assert figures["peer_ingest_records_per_s"] == 2000.0  # accepted only
    assert figures["e2e_vs_peer_ingest_ratio"] == 3.0
    peer = figures["peer_ingest"]
    assert (peer["batch_size"], peer["concurrency"]) == (PEER_BATCH, PEER_CONCURRENCY)
    assert peer["records"] == records and peer["cpu_s_per_1000_records"] == {"gateway": 0.4}
    assert peer["p50_ms"] <= peer["p99_ms"] and peer["seconds"] == 4.5
    assert peer_figures(3.0, {"accepted": 700}, {}, [], {}, 1000)["e2e_vs_peer_ingest_ratio"] == (
        round(1000 / round(700 / 3.0, 1), 3)
    )


def test_the_peer_runs_as_long_as_dipgws_sustained_phase_within_bounds() -> None:
    assert peer_seconds(6.5) == 6.5
    assert peer_seconds(0.4) == 2.0
    assert peer_seconds(35.1) == 10.0


def test_a_peer_that_accepted_nothing_voids_the_run() -> None:
    check = {"sent_to_cities_with_rules": 10, "scored": 10}
    nothing = peer_figures(2.0, {"accepted": 0, "unanswered": 500}, {"0": 1}, [], {}, 3000)
    assert "peer accepted no record" in (void_reason({"e2e_scored_check": check, **nothing}) or "")
    some = peer_figures(2.0, {"accepted": 500}, {"200": 1}, [50.0], {}, 3000)
    assert void_reason({"e2e_scored_check": check, **some}) is None


def test_the_peer_is_fed_the_sustained_phases_lists_in_order_and_round_again() -> None:
    docs = [msgspec.json.encode({"n": i}) for i in range(3)]
    load = _Replay("http://127.0.0.1:1", b"s", docs)
    assert [d["n"] for d in load.documents(2)] == [0, 1]
    assert [d["n"] for d in load.documents(4)] == [2, 0, 1, 2]


@pytest.mark.integration
def test_bench_pipeline_beside_the_peer_gives_the_ratio_of_e2e_to_peer_ingest(
    scratch_dir: Path,
) -> None:
    tmp_path = scratch_dir  # not under pytest's 0700 tree: the embedded PostgreSQL's user
    result = _bench(
        tmp_path,
        "--peer",
        "--no-scale-out",
        "--pure-s",
        "0.2",
        "--rate",
        "100",
        "--steady-s",
        "1",
        "--max-cases",
        "600",
        timeout=300,
    )
    # Every key of a run without the peer is still there.
    for key in ("e2e_cases_per_s", "e2e_p99_ms", "e2e_scored_check", "settings", "e2e_seconds"):
        assert key in result
    assert "e2e_cases_per_s_1proc" not in result
    e2e, peer = result["e2e_cases_per_s"], result["peer_ingest_records_per_s"]
    assert e2e > 0 and peer > 0
    assert result["e2e_vs_peer_ingest_ratio"] == round(e2e / peer, 3)
    ingest = result["peer_ingest"]
    assert ingest["records"]["accepted"] > 0 and ingest["records"]["rejected"] == 0
    assert (ingest["batch_size"], ingest["concurrency"]) == (200, 4)  # bench ingest's load
    assert ingest["seconds"] >= 2.0  # at least PEER_MIN_S
    assert ingest["stack"]["table"] == "peer_receipts"
    assert set(ingest["cpu_s_per_1000_records"]) >= {"gateway", "kafka", "postgres"}
    assert result["e2e_scored_check"]["scored"] == 100 + 600
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in ps  # the peer, dipgw's processes, broker and database are gone
