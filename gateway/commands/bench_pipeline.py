"""`dipgw bench pipeline [--json]`: DIP throughput, pure and end to end on this machine; what
it runs and measures is gateway.bench.pipeline."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from gateway.bench.common import settings_rows
from gateway.bench.pipeline import BenchFailed, PipelineOptions, run_pipeline_bench, void_reason
from gateway.commands._common import UsageError, fail, settings_from


def register(subparsers: Any) -> None:
    """Plug `pipeline` into the `bench` noun (gateway.commands.bench)."""
    del subparsers
    from gateway.commands.bench import add_verb

    add_verb("pipeline", _setup)


def _setup(verbs: Any) -> None:
    parser = verbs.add_parser(
        "pipeline",
        help="DIP group+score cases/s per core; push → scored row throughput and p99 latency",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--rate", type=int, default=1000, help="steady rate, cases/s (1000)")
    parser.add_argument("--steady-s", type=float, default=8.0, help="steady phase seconds (8)")
    parser.add_argument("--max-cases", type=int, default=24000, help="backlog size (24000)")
    parser.add_argument("--pure-s", type=float, default=3.0, help="pure bench seconds (3)")
    parser.add_argument(
        "--worker-processes",
        default="sink,grouping,scoring,scored_sink",
        help="workers of each worker process, processes separated by / (default: one)",
    )
    parser.add_argument(
        "--brokers",
        type=int,
        choices=(1, 3),
        default=1,
        help="local Kafka nodes of the steady and sustained phases: 1 (default) or 3"
        " (replication 3, min.insync.replicas 2)",
    )
    parser.add_argument(
        "--scale-out",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the sustained rate on a 3-broker cluster with 1 and with 2 worker"
        " processes, each running every stage (e2e_cases_per_s_1proc / _2proc; default on)",
    )
    parser.add_argument(
        "--peer",
        action="store_true",
        help="also the obvious peer's batched ingest rate (gateway.bench.peer: aiohttp +"
        " pydantic + send_and_wait + INSERT per record) on the same broker and database, fed"
        " the sustained phase's lists with bench ingest's load (200/push × 4); prints dipgw's"
        " end-to-end rate over it"
        " (e2e_vs_peer_ingest_ratio; needs pip install 'dipgw[test]')",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.rate < 1 or args.steady_s <= 0 or args.max_cases < 1 or args.pure_s <= 0:
        return fail("--rate, --steady-s, --max-cases and --pure-s must be positive")
    try:
        base = settings_from(args)
    except UsageError as exc:
        return fail(str(exc))
    say: Callable[[str], None] = (lambda _m: None) if args.json else _say
    # The options are named as the run's fields (--steady-s → steady_s, …).
    options = PipelineOptions(**{f.name: getattr(args, f.name) for f in fields(PipelineOptions)})
    try:
        result = run_pipeline_bench(base, options, say)
    except BenchFailed as exc:
        return fail(str(exc), 1)
    if args.json:
        print(json.dumps(result))
    else:
        _print(result, args)
    problem = void_reason(result)
    if not result["e2e_steady_rate_met"]:
        _say(
            f"dipgw: the steady phase reached {result['e2e_steady_achieved_rate']:,} of"
            f" {args.rate:,} cases/s (< 95 %): its latencies are not latencies at that rate"
        )
    if problem:
        return fail(problem, 1)
    return 0


def _print(result: dict[str, Any], args: argparse.Namespace) -> None:
    met = "" if result["e2e_steady_rate_met"] else " — BELOW 95 % OF TARGET"
    print(
        f"group+score {result['group_score_cases_per_s']:,} cases/s per core; end to end"
        f" {result['e2e_cases_per_s']:,} scored cases/s sustained (target ≥ 3,000); steady"
        f" target {args.rate:,} cases/s, achieved {result['e2e_steady_achieved_rate']:,}{met};"
        f" ({result['e2e_steady_scored_per_s']:,} scored/s over the phase);"
        f" p99 {result['e2e_p99_ms']} ms, p50 {result['e2e_p50_ms']} ms from the scheduled"
        " send (target ≤ 500 ms)"
    )
    check = result["e2e_scored_check"]
    print(
        f"scored {check['scored']:,} of {check['sent_to_cities_with_rules']:,} cases sent to"
        f" cities with rules; by year {result['e2e_scored_by_year']}"
    )
    for row in result["e2e_outcomes"]:
        if row["status"] != "scored":
            print(f"  unscored: {row['cases']:,} in {row['city']}/{row['year']}: {row['reason']}")
    for name, value in settings_rows(result["settings"]):
        print(f"  setting · {name}: {value}")
    if "peer_ingest" in result:
        _print_peer(result)
    scale = result.get("e2e_scale_out")
    if scale:
        print(
            f"scale-out on {scale['brokers']} brokers (replication"
            f" {scale['replication_factor']}, min ISR {scale['min_insync_replicas']}),"
            f" {scale['backlog_cases']:,}-case backlog, 1 gateway process: every stage in"
            f" 1 worker process {result['e2e_cases_per_s_1proc']:,} scored cases/s;"
            f" in 2 worker processes {result['e2e_cases_per_s_2proc']:,} scored cases/s"
        )
        for name, run in scale["layouts"].items():
            print(f"  {name}: CPU seconds per 1,000 cases {run['e2e_cpu_s_per_1000_cases']}")


def _print_peer(result: dict[str, Any]) -> None:
    """The obvious peer's ingest rate of the same run beside dipgw's end-to-end rate."""
    peer = result["peer_ingest"]
    print(
        f"beside the obvious peer ({peer['stack']['stack']}), same broker and database, same"
        f" lists, {peer['batch_size']}/push × {peer['concurrency']} at a time:"
        f" peer ingest {result['peer_ingest_records_per_s']:,.0f} records/s accepted over"
        f" {peer['seconds']} s; dipgw end to end (push → scored row)"
        f" {result['e2e_cases_per_s']:,} cases/s; dipgw end to end ÷ peer ingest"
        f" {result['e2e_vs_peer_ingest_ratio']:.2f} (target ≥ 5)"
    )
    records = " · ".join(f"{k} {v:,}" for k, v in peer["records"].items() if v) or "none"
    print(f"  peer records by outcome: {records}; p50 / p99 {peer['p50_ms']} / {peer['p99_ms']} ms")
    print(f"  peer CPU seconds per 1,000 records {peer['cpu_s_per_1000_records']}")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
