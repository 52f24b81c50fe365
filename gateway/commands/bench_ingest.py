"""`dipgw bench ingest [--json]`: accepted records/s batched, open-loop p50/p99 single, through
real HTTP + Kafka, with the settings it ran with; `--peer` beside the obvious peer (see
gateway.bench.ingest)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from typing import Any

import msgspec

from gateway.bench.common import settings_rows
from gateway.commands._common import UsageError, fail, settings_from
from gateway.commands._output import print_table
from gateway.commands.bench import add_verb


def _setup(verbs: Any) -> None:
    parser = verbs.add_parser("ingest", help="HTTP push → acknowledged Kafka write")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--seconds", type=float, default=10.0, help="per load (default 10)")
    parser.add_argument("--batch", type=int, default=200, help="records per batch (default 200)")
    parser.add_argument("--concurrency", type=int, default=4, help="batch clients (default 4)")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="single-record requests/s (default 200)"
    )
    parser.add_argument(
        "--gateway-processes",
        type=int,
        default=1,
        help="gateway processes sharing the port (SO_REUSEPORT; default 1)",
    )
    parser.add_argument("--port", type=int, default=0, help="gateway port (default: a free one)")
    parser.add_argument(
        "--brokers",
        type=int,
        default=1,
        help="local Kafka nodes: 1 (default) or 3 (replication 3, min.insync.replicas 2);"
        " a configured cluster is checked to have this many",
    )
    parser.add_argument(
        "--peer",
        action="store_true",
        help="also the obvious peer (aiohttp + pydantic + send_and_wait + INSERT per record,"
        " gateway.bench.peer) with the same records and loads, in alternating rounds; prints"
        " its figures and dipgw's over its (needs pip install 'dipgw[test]')",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="each load this many times, alternating sides with --peer (default 2 with --peer,"
        " else 1)",
    )
    parser.set_defaults(func=_run)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_verb("ingest", _setup)


def _run(args: argparse.Namespace) -> int:
    from gateway.bench.ingest import BenchError, run_ingest_bench

    if not (
        0 < args.seconds <= 120
        and args.batch > 0
        and args.concurrency > 0
        and 0 < args.rate <= 5000
        and args.gateway_processes > 0
        and (args.rounds is None or 0 < args.rounds <= 10)
    ):
        return fail("bounds: 0 < --seconds ≤ 120, --rate ≤ 5000, --rounds ≤ 10, positive sizes")
    rounds = args.rounds or (2 if args.peer else 1)
    try:
        settings = settings_from(args)
    except UsageError as exc:
        return fail(str(exc))
    with tempfile.TemporaryDirectory(prefix="dipgw-bench-") as state:
        # A throw-away state directory: the bench never touches the operator's data.
        if not settings.kafka.bootstrap or not settings.pg.dsn:
            settings = msgspec.structs.replace(settings, state_dir=state)
        try:
            figures = run_ingest_bench(
                settings,
                seconds=args.seconds,
                batch=args.batch,
                concurrency=args.concurrency,
                rate=args.rate,
                processes=args.gateway_processes,
                port=args.port,
                brokers=args.brokers,
                peer=args.peer,
                rounds=rounds,
            )
        except BenchError as exc:
            return fail(str(exc), 1)
    data = dataclasses.asdict(figures)
    if not args.peer:  # the peer's keys only when it ran
        for key in _PEER_KEYS:
            data.pop(key)
    if args.json:
        print(json.dumps(data))
    else:
        print_figures(figures)
    if not figures.single_rate_met:
        print(
            f"dipgw: single-record load reached {figures.single_achieved_rps:.1f} of "
            f"{figures.single_target_rps:.0f} req/s (< 95 %): its latencies are not "
            "latencies at the target rate",
            file=sys.stderr,
        )
    return 0


_PEER_KEYS = (
    "peer_batched_records_per_s",
    "batched_ratio",
    "peer_single_p99_ms",
    "single_p99_ratio",
    "peer",
)


def _counts(counts: dict[str, int]) -> str:
    return " · ".join(f"{k} {v:,}" for k, v in counts.items() if v) or "none"


def print_figures(figures: Any) -> None:
    """The figures as a two-column table (`key: value` lines on a narrow terminal)."""
    title = (
        f"dipgw bench ingest — {figures.cores} cores, "
        f"{figures.gateway_processes} gateway process(es), "
        f"{figures.settings.get('brokers')} broker(s) × "
        f"{figures.settings.get('replication_factor')} replica(s), "
        f"min ISR {figures.settings.get('min_insync_replicas')}"
    )
    print_table(title, ("figure", "value"), _rows(figures), right={"value"})


def _rows(figures: Any) -> list[list[str]]:
    met = "" if figures.single_rate_met else "  ⚠ below 95 % of target"
    rows = [
        [
            f"batched ({figures.batch_size}/request × {figures.concurrency} clients) "
            "accepted records/s",
            f"{figures.batched_records_per_s:,.0f}",
        ],
        ["batched records by outcome", _counts(figures.batched_records)],
        ["batched answers by HTTP status", _counts(figures.batched_answers)],
        [
            "batched p50 / p99 ms (200 answers)",
            _pair(figures.batched_p50_ms, figures.batched_p99_ms),
        ],
        [
            f"single: target req/s → achieved{met}",
            f"{figures.single_target_rps:.0f} → {figures.single_achieved_rps:.1f}",
        ],
        ["single 202 answers/s (did it keep up)", f"{figures.single_answered_per_s:.1f}"],
        ["single records by outcome", _counts(figures.single_records)],
        ["single answers by HTTP status", _counts(figures.single_answers)],
        ["single p50 ms (from scheduled send, 202 only)", f"{figures.single_p50_ms:.2f}"],
        ["single p90 ms", f"{figures.single_p90_ms:.2f}"],
        ["single p99 ms", f"{figures.single_p99_ms:.2f}"],
        ["single max ms", f"{figures.single_max_ms:.2f}"],
        ["single generator send lag p99 ms", f"{figures.single_send_lag_p99_ms:.2f}"],
        [
            "errors: non-200 batched / non-202 single",
            f"{figures.batched_errors} / {figures.single_errors}",
        ],
    ]
    for stage, value in (figures.single_stage_p99_ms or {}).items():
        rows.append([f"single p99 ms by stage · {stage}", f"{value:.2f}"])
    if figures.single_loop_lag_p99_ms is not None:
        rows.append(["single event-loop lag p99 ms", f"{figures.single_loop_lag_p99_ms:.2f}"])
    for name, value in figures.batched_cpu_ms_per_record.items():
        rows.append([f"CPU ms/accepted record batched · {name}", f"{value:.3f}"])
    for name, value in figures.single_cpu_ms_per_request.items():
        rows.append([f"CPU ms/request single · {name}", f"{value:.3f}"])
    if figures.peer is not None:
        rows.extend(_peer_rows(figures))
    rows.extend([f"setting · {name}", value] for name, value in settings_rows(figures.settings))
    return rows


def _peer_rows(figures: Any) -> list[list[str]]:
    """The obvious peer's figures of the same run beside dipgw's, and the ratios."""
    peer = figures.peer
    rows = [
        [
            f"peer batched accepted records/s ({figures.rounds} alternating rounds)",
            f"{figures.peer_batched_records_per_s:,.0f}",
        ],
        ["batched ratio dipgw ÷ peer (above 1: dipgw faster)", f"{figures.batched_ratio:.2f}"],
        ["peer batched records by outcome", _counts(peer["batched_records"])],
        ["peer single p50 / p99 ms", _pair(peer["single_p50_ms"], peer["single_p99_ms"])],
        [
            "single p99 ratio dipgw ÷ peer (below 1: dipgw faster)",
            f"{figures.single_p99_ratio:.2f}",
        ],
        ["peer single max ms", f"{peer['single_max_ms']:.2f}"],
        ["peer single records by outcome", _counts(peer["single_records"])],
    ]
    for name, value in peer["batched_cpu_ms_per_record"].items():
        rows.append([f"peer CPU ms/accepted record batched · {name}", f"{value:.3f}"])
    return rows


def _pair(a: float, b: float) -> str:
    return f"{a:.2f} / {b:.2f}"
