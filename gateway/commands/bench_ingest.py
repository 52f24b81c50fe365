"""`dipgw bench ingest [--json]`: records/s batched, p50/p99 single, through real HTTP + Kafka."""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from gateway.commands._common import UsageError, fail, settings_from
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
    parser.set_defaults(func=_run)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_verb("ingest", _setup)


def _run(args: argparse.Namespace) -> int:
    from gateway.bench_ingest import run_ingest_bench

    if not (
        0 < args.seconds <= 120
        and args.batch > 0
        and args.concurrency > 0
        and 0 < args.rate <= 5000
        and args.gateway_processes > 0
    ):
        return fail("bounds: 0 < --seconds ≤ 120, --rate ≤ 5000, positive sizes")
    try:
        settings = settings_from(args)
    except UsageError as exc:
        return fail(str(exc))
    with tempfile.TemporaryDirectory(prefix="dipgw-bench-") as state:
        # A throw-away state directory: the bench never touches the operator's data.
        if not settings.kafka.bootstrap or not settings.pg.dsn:
            settings = msgspec.structs.replace(settings, state_dir=state)
        figures = run_ingest_bench(
            settings,
            seconds=args.seconds,
            batch=args.batch,
            concurrency=args.concurrency,
            rate=args.rate,
            processes=args.gateway_processes,
            port=args.port,
        )
    data = dataclasses.asdict(figures)
    if args.json:
        print(json.dumps(data))
        return 0
    table = Table(
        title=f"dipgw bench ingest — {figures.cores} cores, "
        f"{figures.gateway_processes} gateway process(es)"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row(
        f"batched ({figures.batch_size}/request) records/s", f"{figures.batched_records_per_s:,.0f}"
    )
    table.add_row(
        f"single @ {figures.single_target_rps:.0f} req/s: achieved req/s",
        f"{figures.single_requests_per_s:.1f}",
    )
    table.add_row("single p50 ms", f"{figures.single_p50_ms:.2f}")
    table.add_row("single p90 ms", f"{figures.single_p90_ms:.2f}")
    table.add_row("single p99 ms", f"{figures.single_p99_ms:.2f}")
    table.add_row("single max ms", f"{figures.single_max_ms:.2f}")
    table.add_row(
        "errors (batched / single)", f"{figures.batched_errors} / {figures.single_errors}"
    )
    for name in figures.batched_cpu_ms_per_record:
        table.add_row(
            f"CPU ms/record batched · {name}", f"{figures.batched_cpu_ms_per_record[name]:.3f}"
        )
    for name in figures.single_cpu_ms_per_request:
        table.add_row(
            f"CPU ms/request single · {name}", f"{figures.single_cpu_ms_per_request[name]:.3f}"
        )
    Console().print(table)
    return 0
