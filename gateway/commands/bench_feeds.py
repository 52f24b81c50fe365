"""`dipgw bench feeds [--json]`: rows/s from a hospital's intermediate table and from dropped
files into the accepted topic (see gateway.bench.feeds)."""

from __future__ import annotations

import argparse
import json
import tempfile
from typing import Any

import msgspec

from gateway.commands._common import UsageError, fail, settings_from
from gateway.commands._output import print_table
from gateway.commands.bench import add_verb


def _setup(verbs: Any) -> None:
    parser = verbs.add_parser("feeds", help="intermediate table and drop folder → Kafka")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--rows", type=int, default=20_000, help="table rows (20000)")
    parser.add_argument("--files", type=int, default=5, help="NDJSON files dropped (5)")
    parser.add_argument("--file-rows", type=int, default=4_000, help="lines per file (4000)")
    parser.add_argument("--batch", type=int, default=1_000, help="feed batch size (1000)")
    parser.set_defaults(func=_run)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_verb("feeds", _setup)


def _run(args: argparse.Namespace) -> int:
    from gateway.bench.feeds import run_feeds_bench

    if not (0 < args.rows <= 1_000_000 and 0 < args.files <= 100 and args.file_rows > 0):
        return fail("bounds: 0 < --rows ≤ 1000000, 0 < --files ≤ 100, positive --file-rows")
    if not 0 < args.batch <= 5000:
        return fail("bounds: 0 < --batch ≤ 5000")
    try:
        settings = settings_from(args)
    except UsageError as exc:
        return fail(str(exc))
    with tempfile.TemporaryDirectory(prefix="dipgw-bench-") as state:
        # A throw-away local Kafka and database: the bench never touches the operator's data.
        settings = msgspec.structs.replace(
            settings,
            state_dir=state,
            kafka=msgspec.structs.replace(settings.kafka, bootstrap=""),
            pg=msgspec.structs.replace(settings.pg, dsn=""),
        )
        figures = run_feeds_bench(
            settings, rows=args.rows, files=args.files, file_rows=args.file_rows, batch=args.batch
        )
    if args.json:
        print(json.dumps(figures.as_dict(), ensure_ascii=False))
        return 0
    print_table(
        "dipgw bench feeds",
        ["source", "rows", "rows/s", "seconds", "CPU ms/row"],
        [
            [
                "intermediate table (PostgreSQL)",
                str(figures.db_rows),
                f"{figures.db_rows_per_s:,.0f}",
                f"{figures.db_seconds:.2f}",
                str(figures.cpu_ms_per_row["db"]),
            ],
            [
                "the same rows as JSON document column",
                str(figures.db_rows),
                f"{figures.db_document_rows_per_s:,.0f}",
                "",
                "",
            ],
            [
                f"drop folder ({figures.file_files} NDJSON files)",
                str(figures.file_rows),
                f"{figures.file_rows_per_s:,.0f}",
                f"{figures.file_seconds:.2f}",
                str(figures.cpu_ms_per_row["file"]),
            ],
        ],
        right={"rows", "rows/s", "seconds", "CPU ms/row"},
    )
    return 0
