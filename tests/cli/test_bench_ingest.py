"""`dipgw bench ingest`: what it counts and how it times (pure, no broker), and short runs end
to end, on one broker and on a local 3-broker cluster, that print every figure they promise
(no timing asserts)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.runtime.settings import Settings
from gateway.bench.common import (
    achieved_rate,
    count_records,
    effective_child_settings,
    non_default_settings,
    open_loop_latencies_ms,
    percentile,
    rate_met,
    run_settings,
    send_lag_ms,
)
from gateway.bench.ingest import (
    TUNING,
    BenchError,
    _Batched,
    _figures,
    _gateway_env,
    _Single,
    local_services,
    merge_batched,
    merge_single,
    with_peer,
)

ROOT = Path(__file__).parents[2]


def _answer(*statuses: str) -> dict[str, object]:
    """A batch answer as the gateway gives it: summary counts and a result per record."""
    results = [{"position": str(i), "status": s} for i, s in enumerate(statuses)]
    summary = {k: statuses.count(k) for k in ("accepted", "duplicate", "rejected", "unavailable")}
    return {**summary, "results": results}


def test_a_batch_answer_counts_only_accepted_records_as_accepted() -> None:
    answer = _answer("accepted", "rejected", "duplicate", "accepted", "rejected", "duplicate")
    counts = count_records(200, answer, 6)
    assert counts == {
        "accepted": 2,
        "duplicate": 2,
        "rejected": 2,
        "unavailable": 0,
        "unanswered": 0,
    }


def test_counts_come_from_per_record_results_not_the_summary() -> None:
    answer = _answer("accepted", "rejected")
    answer["accepted"] = 2  # a summary that disagrees with the results is not believed
    assert count_records(200, answer, 2)["accepted"] == 1


def test_a_503_batch_counts_what_was_answered_and_a_refused_request_counts_nothing() -> None:
    partial = count_records(503, _answer("accepted", "unavailable", "unavailable"), 3)
    assert (partial["accepted"], partial["unavailable"]) == (1, 2)
    for status in (429, 401, 413, 500, 0):
        refused = count_records(status, {"title": "too many requests"}, 200)
        assert refused["unanswered"] == 200 and refused["accepted"] == 0
    short = count_records(200, _answer("accepted"), 3)
    assert (short["accepted"], short["unanswered"]) == (1, 2)


def test_single_record_answers() -> None:
    assert count_records(202, {"status": "accepted"}, 1)["accepted"] == 1
    assert count_records(202, {"status": "duplicate"}, 1)["duplicate"] == 1
    assert count_records(422, [{"rule": "X"}], 1)["rejected"] == 1
    assert count_records(503, None, 1)["unavailable"] == 1
    assert count_records(429, None, 1)["unanswered"] == 1


def test_latency_is_measured_from_the_scheduled_send_not_the_actual_one() -> None:
    # (scheduled, actually sent, done): the second request left 2 s late, answered in 5 ms.
    samples = [(10.0, 10.0, 10.004), (10.01, 12.01, 12.015), (10.02, 10.021, 10.03)]
    latencies = open_loop_latencies_ms(samples)
    assert latencies == pytest.approx([4.0, 2005.0, 10.0])
    assert send_lag_ms(samples) == pytest.approx([0.0, 2000.0, 1.0])


def test_achieved_rate_shows_a_generator_that_falls_behind() -> None:
    start, target = 100.0, 200.0
    on_time = [start + i / target for i in range(400)]
    assert achieved_rate(start, on_time, target) == pytest.approx(target)
    late = [start + i / 100 for i in range(400)]  # sends at half the pace
    assert achieved_rate(start, late, target) == pytest.approx(100, rel=0.01)
    assert rate_met(achieved_rate(start, on_time, target), target)
    assert not rate_met(achieved_rate(start, late, target), target)
    assert achieved_rate(start, [], target) == 0.0


def test_figures_count_accepted_only_and_keep_errors_out_of_latency() -> None:
    batched = _Batched(
        seconds=2.0,
        records={"accepted": 300, "duplicate": 50, "rejected": 50, "unanswered": 200},
        answers={"200": 2, "429": 1},
        latencies_ms=[10.0, 30.0],
        cpu={},
    )
    start = 50.0
    single = _Single(
        samples=[(start, start, start + 0.010), (start + 0.1, start + 0.6, start + 0.62)],
        sent=[start, start + 0.6, start + 0.2],
        started=start,
        records={"accepted": 2, "rejected": 1},
        answers={"202": 2, "422": 1},
        cpu={},
    )
    figures = _figures(1, 200, 4, 10.0, batched, single, {"brokers": 1})
    assert figures.batched_records_per_s == 150.0  # 300 accepted / 2 s, not 600 or 800
    assert figures.batched_errors == 1 and figures.single_errors == 1
    assert figures.single_max_ms == pytest.approx(520.0)  # from its schedule, not 20 ms
    assert figures.single_send_lag_p99_ms == pytest.approx(500.0)
    assert figures.single_requests == 3
    assert figures.single_answered_per_s == pytest.approx(2 / 0.62, rel=0.01)
    assert figures.settings == {"brokers": 1}


def test_the_figures_print_whole_in_a_pipe(capsys: pytest.CaptureFixture[str]) -> None:
    """The one table helper (gateway/commands/_output.py): no figure cut in a CI log."""
    from gateway.commands.bench_ingest import print_figures

    batched = _Batched(2.0, {"accepted": 300}, {"200": 2}, [10.0, 30.0], {"gateway": 0.25})
    single = _Single([(50.0, 50.0, 50.01)], [50.0], 50.0, {"accepted": 1}, {"202": 1}, {})
    print_figures(_figures(1, 200, 4, 10.0, batched, single, {"brokers": 1}))
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "accepted records/s" in line)
    assert "batched (200/request × 4 clients) accepted records/s" in row and "150" in row
    assert "CPU ms/accepted record batched · gateway" in out and "…" not in out


def test_rounds_merge_into_one_load_and_the_peer_sits_beside_dipgw() -> None:
    """Alternating rounds: each side's figures are those of its rounds together (the single
    load as one schedule, so latencies from the scheduled send are kept), and the ratios are
    dipgw's over the peer's."""
    one = _Batched(1.0, {"accepted": 400}, {"200": 2}, [10.0], {"gateway": 0.1})
    two = _Batched(2.0, {"accepted": 200, "rejected": 200}, {"200": 2}, [30.0], {"gateway": 0.4})
    merged = merge_batched([one, two])
    assert (merged.seconds, merged.records, merged.answers) == (
        3.0,
        {"accepted": 600, "rejected": 200},
        {"200": 4},
    )
    assert merged.latencies_ms == [10.0, 30.0]
    assert merged.cpu == {"gateway": pytest.approx((0.1 * 400 + 0.4 * 200) / 600, abs=1e-3)}
    rate = 10.0  # two rounds of 2 requests each, the second one run 100 s later
    first = _Single(
        [(0.0, 0.0, 0.004), (0.1, 0.1, 0.102)], [0.0, 0.1], 0.0, {"accepted": 2}, {"202": 2}, {}
    )
    later = _Single(
        [(100.0, 100.0, 100.05), (100.1, 100.1, 100.103)],
        [100.0, 100.1],
        100.0,
        {"accepted": 2},
        {"202": 2},
        {},
    )
    single = merge_single([first, later], rate)
    assert open_loop_latencies_ms(single.samples) == pytest.approx([4.0, 2.0, 50.0, 3.0])
    assert achieved_rate(single.started, single.sent, rate) == pytest.approx(rate)
    dipgw = _figures(1, 200, 4, rate, merged, single, {"brokers": 1})
    peer = _figures(1, 200, 4, rate, merge_batched([two]), merge_single([first], rate), {})
    both = with_peer(dipgw, peer)
    assert both.batched_records_per_s == 200.0 and both.peer_batched_records_per_s == 100.0
    assert both.batched_ratio == 2.0
    assert both.single_p99_ratio == pytest.approx(both.single_p99_ms / peer.single_p99_ms, abs=1e-3)
    assert both.peer is not None and both.peer["batched_records"]["rejected"] == 200


def test_the_peer_prints_beside_dipgw(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.commands.bench_ingest import print_figures

    batched = _Batched(2.0, {"accepted": 300}, {"200": 2}, [10.0, 30.0], {"gateway": 0.25})
    single = _Single([(50.0, 50.0, 50.01)], [50.0], 50.0, {"accepted": 1}, {"202": 1}, {})
    dipgw = _figures(1, 200, 4, 10.0, batched, single, {"brokers": 1})
    slower = _Batched(2.0, {"accepted": 100}, {"200": 1}, [50.0], {"gateway": 0.5})
    print_figures(with_peer(dipgw, _figures(1, 200, 4, 10.0, slower, single, {})))
    out = capsys.readouterr().out
    assert "peer batched accepted records/s" in out and "3.00" in out
    assert "peer CPU ms/accepted record batched · gateway" in out and "…" not in out


def test_the_peer_without_pydantic_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused before anything starts (the command prints a BenchError and exits 1)."""
    from gateway.bench.ingest import run_ingest_bench

    monkeypatch.setitem(sys.modules, "pydantic", None)  # import pydantic now fails
    with pytest.raises(BenchError, match=r"pip install 'dipgw\[test\]'"):
        run_ingest_bench(
            Settings(), seconds=1, batch=1, concurrency=1, rate=1, processes=1, port=0, peer=True
        )


def test_a_bucket_quantile_interpolates_as_prometheus_does() -> None:
    from gateway.bench.common import bucket_delta, bucket_quantile

    # 100 observations: 90 at or under 1 ms, 9 more under 5 ms, 1 under 250 ms.
    buckets = {0.001: 90.0, 0.005: 99.0, 0.25: 100.0, float("inf"): 100.0}
    assert bucket_quantile(buckets, 0.5) == pytest.approx(0.001 * 50 / 90)
    assert bucket_quantile(buckets, 0.99) == pytest.approx(0.005)
    assert bucket_quantile(buckets, 0.995) == pytest.approx(0.005 + 0.245 * 0.5)
    assert math.isnan(bucket_quantile({float("inf"): 0.0}, 0.99))
    # only what a round added counts
    before = {"ack": {0.001: 10.0, float("inf"): 10.0}}
    after = {"ack": {0.001: 10.0, float("inf"): 12.0}, "auth": {float("inf"): 2.0}}
    assert bucket_delta(after, before) == {
        "ack": {0.001: 0.0, float("inf"): 2.0},
        "auth": {float("inf"): 2.0},
    }
    assert bucket_quantile(bucket_delta(after, before)["ack"], 0.5) == pytest.approx(0.001)


def test_percentile_of_nothing_is_nan() -> None:
    assert percentile([], 0.99) != percentile([], 0.99)
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0


def test_the_settings_a_run_used_name_what_differs_from_the_defaults() -> None:
    env = {"DIPGW_STATE_DIR": "/tmp/x", "DIPGW_KAFKA_BOOTSTRAP": "h:1", **TUNING}
    settings = effective_child_settings(env)
    changed = non_default_settings(settings)
    lifted = {  # every budget of the one bench hospital, and of its address
        "limits.rate_per_s": 1e6,
        "limits.burst": 1000000,
        "limits.records_per_s": 1e9,
        "limits.records_burst": 1000000000,
        "limits.bytes_per_s": 1e12,
        "limits.bytes_burst": 1000000000000,
        "limits.source_rate_per_s": 1e6,
        "limits.source_burst": 1000000,
        "limits.source_bytes_per_s": 1e12,
        "limits.source_bytes_burst": 1000000000000,
    }
    assert changed == {**lifted, "pg.pool_max": 20}
    assert non_default_settings(Settings()) == {}
    run = run_settings(settings, brokers=1, gateway_processes=2)
    for key in ("brokers", "replication_factor", "partitions", "producer", "worker_max_batch"):
        assert key in run
    assert set(run["producer"]) == {"acks", "linger_ms", "max_batch_size", "compression"}
    assert run["producer"]["compression"] == Settings().kafka.compression
    assert run["gateway_processes"] == 2 and run["non_default"] == changed
    other = msgspec.structs.replace(
        Settings(), topics=msgspec.structs.replace(Settings().topics, partitions=12)
    )
    assert non_default_settings(other) == {"topics.partitions": 12}


def test_brokers_pick_the_local_cluster_and_its_replication() -> None:
    base = Settings()
    for brokers in (1, 3):
        services = local_services(base, brokers)
        assert services.settings.kafka.local_brokers == brokers
    with pytest.raises(BenchError, match="1 or 3"):
        local_services(base, 2)
    # The gateways create the topics, with as many replicas as the cluster has nodes.
    services = local_services(base, 3)
    services.settings = msgspec.structs.replace(
        services.settings,
        topics=msgspec.structs.replace(services.settings.topics, replication_factor=3),
    )
    services.bootstrap, services.dsn = "h:1,h:2,h:3", "postgresql://x"
    env = _gateway_env(services.settings, services, 8000)
    assert effective_child_settings(env).topics.replication_factor == 3


def _bench(scratch_dir: Path, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(DIPGW_STATE_DIR=str(scratch_dir))
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "bench", "ingest", "--json", "--port", "0", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.integration
def test_bench_ingest_on_three_brokers_reaches_a_three_broker_cluster(scratch_dir: Path) -> None:
    figures = _bench(scratch_dir, "--brokers", "3", "--seconds", "1", "--rate", "20")
    ran = figures["settings"]
    # As the cluster reports them: 3 brokers, the topic on 3 of them, acks=all needing 2.
    assert (ran["brokers"], ran["replication_factor"], ran["min_insync_replicas"]) == (3, 3, 2)
    assert ran["producer"]["acks"] == "all"
    assert figures["batched_records"]["accepted"] == 200 * figures["batched_answers"]["200"] > 0
    assert figures["single_records"]["accepted"] == 20
    assert figures["batched_cpu_ms_per_record"]["kafka"] > 0


@pytest.mark.integration
def test_bench_ingest_json_has_every_figure(scratch_dir: Path) -> None:
    figures = _bench(scratch_dir, "--seconds", "1", "--rate", "20")
    for key in (
        "batched_records_per_s",
        "batched_records",
        "batched_answers",
        "batched_p99_ms",
        "single_p50_ms",
        "single_p99_ms",
        "single_target_rps",
        "single_achieved_rps",
        "single_rate_met",
        "single_answered_per_s",
        "single_records",
        "single_answers",
        "single_send_lag_p99_ms",
        "settings",
        "cores",
    ):
        assert key in figures
    assert figures["cores"] == os.cpu_count()
    assert figures["batched_records_per_s"] > 0 and figures["single_achieved_rps"] > 0
    assert figures["batched_errors"] == 0 and figures["single_errors"] == 0
    # Every record sent was new and valid, so each was accepted — and counted once.
    assert set(figures["batched_answers"]) == {"200"}
    assert figures["batched_records"]["accepted"] == 200 * figures["batched_answers"]["200"]
    assert figures["single_records"]["accepted"] == figures["single_requests"] == 20
    ran = figures["settings"]
    assert ran["brokers"] == 1 and ran["partitions"] >= 1 and ran["replication_factor"] == 1
    assert ran["min_insync_replicas"] == 1
    assert ran["non_default"]["limits.rate_per_s"] == 1e6
    assert "peer" not in figures and "batched_ratio" not in figures  # only with --peer
    # Where the single pushes spent their time, from the gateway's own histograms.
    stages = figures["single_stage_p99_ms"]
    assert list(stages) == ["auth", "validation", "reservation", "produce", "ack", "response"]
    assert all(value > 0 for value in stages.values())
    assert figures["single_loop_lag_p99_ms"] >= 0


@pytest.mark.integration
def test_bench_ingest_peer_runs_both_sides_and_prints_the_ratios(scratch_dir: Path) -> None:
    figures = _bench(scratch_dir, "--peer", "--seconds", "0.5", "--rate", "20")
    for key in (
        "peer_batched_records_per_s",
        "batched_ratio",
        "peer_single_p99_ms",
        "single_p99_ratio",
        "batched_records_per_s",
        "single_p99_ms",
    ):
        assert figures[key] > 0, key
    assert figures["rounds"] == 2 and figures["peer"]["rounds"] == 2
    ratio = figures["batched_records_per_s"] / figures["peer_batched_records_per_s"]
    assert figures["batched_ratio"] == pytest.approx(ratio, rel=0.01)
    peer = figures["peer"]
    # The same loads on both sides: every record new and valid, accepted by each.
    assert peer["single_records"]["accepted"] == figures["single_records"]["accepted"] == 20
    assert peer["batched_errors"] == 0 and peer["single_errors"] == 0
    assert peer["batched_records"]["accepted"] == 200 * peer["batched_answers"]["200"] > 0
    assert peer["batched_cpu_ms_per_record"]["gateway"] > 0
