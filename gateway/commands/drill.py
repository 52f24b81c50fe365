"""`dipgw drill`: the fault drill (`gateway.drill`) — steady load through 2 gateway and 2
worker processes on a local 3-broker Kafka cluster while rounds of faults hit them, then a
reconciliation. Loopback only, bounded in time, under a fresh temporary directory.

Exit 0 when nothing acknowledged was lost, duplicated or scored wrongly; 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from typing import Any

from gateway.commands._common import UsageError, fail, settings_from
from gateway.drill import FAULTS, Drill, DrillOptions, scratch_home


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "drill", help="fault drill: kill/stall gateways, workers, brokers, PostgreSQL under load"
    )
    defaults = DrillOptions()
    parser.add_argument("--rounds", type=int, default=10, help="faults to inject (default 10)")
    parser.add_argument(
        "--rate", type=float, default=defaults.rate_per_s, help="uploads started per second"
    )
    parser.add_argument("--fault-s", type=float, default=defaults.fault_s)
    parser.add_argument("--calm-s", type=float, default=defaults.calm_s)
    parser.add_argument(
        "--faults",
        default=",".join(FAULTS),
        help=f"comma-separated kinds, cycled in a seeded order (default: {','.join(FAULTS)})",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--keep", action="store_true", help="keep the state directory (logs)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        settings_from(args)  # logging as configured; the drill's services are its own
        faults = tuple(f for f in args.faults.split(",") if f)
        unknown = sorted(set(faults) - set(FAULTS))
        if unknown or not faults or args.rounds < 1 or args.rate <= 0:
            raise UsageError(
                f"--faults takes {', '.join(FAULTS)}; --rounds ≥ 1; --rate > 0 (got {unknown})"
            )
    except UsageError as exc:
        return fail(str(exc))
    options = DrillOptions(
        rounds=args.rounds,
        rate_per_s=args.rate,
        fault_s=args.fault_s,
        calm_s=args.calm_s,
        faults=faults,
        seed=args.seed,
    )
    home = scratch_home()

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        report = asyncio.run(Drill(home, options, say).run())
    finally:
        if args.keep:
            say(f"state kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print(report)
    return 0 if report["lost"] == report["duplicated"] == report["wrong_scores"] == 0 else 1


def _print(report: dict[str, Any]) -> None:
    print(f"{'round':>5}  {'fault':<14} {'target':<11} {'longest upload':>15} {'202→scored':>11}")
    for f in report["faults"]:
        print(
            f"{f['round']:>5}  {f['kind']:<14} {f['target']:<11}"
            f" {f['longest_upload_s']:>13.1f} s {f['longest_to_scored_s']:>9.1f} s"
        )
    print(
        f"\nacknowledged uploads {report['acknowledged_uploads']:,} ({report['cases']:,} cases,"
        f" {report['revisions_beyond_first']:,} corrections) over {report['load_s']} s;"
        f" drained in {report['drained_in_s']} s"
    )
    print(
        f"lost {report['lost']}, duplicated {report['duplicated']},"
        f" wrongly scored {report['wrong_scores']}, late {report['late']}"
    )
    print(f"answers: {report['answers']}")
    print(f"settings: {report['settings']}")
    for problem in report["problems"]:
        print(f"  ! {problem}")
