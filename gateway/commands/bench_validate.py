"""`dipgw bench validate`: decode + validate throughput against the msgspec decode ceiling
(gateway.bench.validate)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gateway.bench.validate import PeerMissing, run_benchmark

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    if args.records < 1 or args.rounds < 1:
        print("--records and --rounds must be positive", file=sys.stderr)
        return 2
    try:
        result = run_benchmark(args.records, args.rounds, args.seed, peer=args.peer)
    except PeerMissing as exc:
        print(f"dipgw: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"records            {result['records']} (avg {result['avg_bytes']} bytes of JSON)")
    print(f"decode + validate  {result['records_per_s']:>9,} records/s")
    print(f"decode only        {result['decode_only_records_per_s']:>9,} records/s  (ceiling)")
    print(f"ratio              {result['ratio']:.3f}")
    print(
        f"with findings      {result['with_findings_records_per_s']:>9,} records/s  "
        f"({result['with_findings_ratio']:.3f} of clean; one rejection each)"
    )
    print(
        f"full-table codes   {result['full_tables_records_per_s']:>9,} records/s  "
        "(diagnoses and operations drawn from the whole tables)"
    )
    if "peer_records_per_s" in result:
        print(
            f"obvious peer       {result['peer_records_per_s']:>9,} records/s  "
            f"(pydantic v2, same clean lists; dipgw ÷ peer {result['validate_ratio']:.2f}; "
            f"{result['peer_rejected']} refused)"
        )
    print(
        f"code tables        load {result['codes_load_s']:.2f} s, Validator build "
        f"{result['validator_build_s']:.2f} s, {result['codes_memory_mb']:.0f} MB held"
    )
    return 0


def _setup(verbs: Any) -> None:
    parser = verbs.add_parser(
        "validate",
        help="records/s of decode + validate vs. msgspec decode alone",
        description=(
            "Decode + validate realistic settlement lists (contracts.samples) on one core, "
            "and in the same run decode the same bytes into the same Structs with no rule "
            "applied (the ceiling); print both and their ratio. Also the same lists with one "
            "rejection each, lists coded from the whole code tables, and what the code "
            "tables cost (load, Validator build, memory). --peer: the obvious peer too."
        ),
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--records", type=int, default=5000, help="records per pass (5000)")
    parser.add_argument("--rounds", type=int, default=5, help="passes; the best counts (5)")
    parser.add_argument("--seed", type=int, default=20261124, help="generator seed")
    parser.add_argument(
        "--peer",
        action="store_true",
        help="also the obvious peer (pydantic v2 models, gateway.bench.peer) on the same clean"
        " lists, in the same alternating rounds: peer_records_per_s, validate_ratio",
    )
    parser.set_defaults(func=_run)


def register(subparsers: Any) -> None:
    """Plug `validate` into the `bench` noun (gateway.commands.bench)."""
    del subparsers
    from gateway.commands.bench import add_verb

    add_verb("validate", _setup)
