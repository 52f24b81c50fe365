"""`dipgw bench simulate [--cases N] [--db] [--json]`: cases/s and total seconds of a rules
simulation (gateway.bench.simulate)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from gateway.bench.simulate import run_db, run_memory

    if args.cases < 1 or args.distinct < 1:
        print("--cases and --distinct must be positive", file=sys.stderr)
        return 2
    bench = run_db if args.db else run_memory
    result = bench(args.cases, distinct=args.distinct, seed=args.seed)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    where = "stored in PostgreSQL, read, scored, stored" if args.db else "in memory"
    print(f"cases          {result['cases']:,} ({result['distinct_cases']:,} distinct, {where})")
    if args.db:
        print(f"load (untimed) {result['load_s']:.1f} s")
    cpu = result["process_cpu_s"]
    print(f"total          {result['seconds']:.1f} s  (this process' CPU {cpu:.1f} s)")
    print(f"rate           {result['cases_per_s']:,} cases/s")
    print(f"hospitals      {result['hospitals']}")
    print(f"payment        {result['payment_current']} → {result['payment_draft']}")
    return 0


def _setup(verbs: Any) -> None:
    parser = verbs.add_parser(
        "simulate",
        help="cases/s of `dipgw rules simulate` (draft rules over a year of cases)",
        description=(
            "Score N synthetic stored cases (Guangzhou's sample rules) under a draft, one core:"
            " decode the stored facts, score under the draft, tally per hospital, price both"
            " sides. --db: the whole simulation against a throwaway embedded PostgreSQL"
            " holding the N cases (loading them is not timed)."
        ),
    )
    parser.add_argument("--cases", type=int, default=100_000, help="cases (100000)")
    parser.add_argument(
        "--distinct", type=int, default=5000, help="distinct generated cases cycled (5000)"
    )
    parser.add_argument("--db", action="store_true", help="through PostgreSQL, end to end")
    parser.add_argument("--seed", type=int, default=20261130, help="generator seed")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.set_defaults(func=_run)


def register(subparsers: Any) -> None:
    """Plug `simulate` into the `bench` noun (gateway.commands.bench)."""
    del subparsers
    from gateway.commands.bench import add_verb

    add_verb("simulate", _setup)
