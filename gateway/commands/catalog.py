"""`dipgw catalog build CASES… [--out FILE] [options]`: build a DIP catalog from history.

Reads historical cases (CSV or NDJSON, see workers/dip/README.md), groups three years weighted
1:2:7 into core groups (combinations reaching ``--threshold`` cases) and comprehensive groups,
and writes a catalog CSV that ``--rules`` policies can name. Exit 0 ok, 1 when some input rows
were skipped, 2 on bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
from rich.console import Console

from gateway.commands._common import fail
from workers.dip import BuildOptions, build_catalog, read_history, write_catalog_csv
from workers.dip._catalog import AnyHistRow, HistoryError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("catalog", help="DIP catalog (病种目录库) tools")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    build = verbs.add_parser("build", help="build a catalog CSV from historical cases")
    build.add_argument("cases", metavar="CASES", nargs="+", help="history files (.csv, .ndjson)")
    build.add_argument("--out", metavar="FILE", default="-", help="catalog CSV (default stdout)")
    build.add_argument("--threshold", type=int, default=15, help="core-group case threshold")
    build.add_argument("--weights", default="1,2,7", help="year weights, oldest first")
    build.add_argument("--years", default="", help="years, oldest first (default: latest)")
    build.add_argument("--scale", type=float, default=1000.0, help="RW = m/M × scale")
    build.add_argument("--weighting", choices=("year_means", "case_weights"), default="year_means")
    build.add_argument(
        "--no-related", action="store_true", help="key core groups on the main operation only"
    )
    build.add_argument("--min-comprehensive", type=int, default=1, metavar="N")
    build.add_argument("--decimals", type=int, default=4, help="score decimals")
    build.add_argument(
        "--intervention-as",
        choices=("surgery", "therapeutic"),
        default="therapeutic",
        help="treatment kind of an intervention operation",
    )
    build.add_argument("--json", action="store_true", help="summary as JSON on stderr/stdout")
    build.set_defaults(func=_build)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def _build(args: argparse.Namespace) -> int:
    try:
        opts = BuildOptions(
            weights=_floats(args.weights),
            years=tuple(int(y) for y in args.years.split(",") if y.strip()),
            threshold=args.threshold,
            scale=args.scale,
            weighting=args.weighting,
            related_operations=not args.no_related,
            min_comprehensive_cases=args.min_comprehensive,
            score_decimals=args.decimals,
        )
    except ValueError as e:
        return fail(f"bad option: {e}")
    skipped: list[str] = []
    started = time.perf_counter()

    def rows() -> Iterator[AnyHistRow]:
        for path in args.cases:
            yield from read_history(path, args.intervention_as, skipped)

    try:
        build = build_catalog(rows(), opts)
    except (OSError, HistoryError) as e:
        return fail(str(e))
    elapsed = time.perf_counter() - started
    buf = io.StringIO()
    write_catalog_csv(build, buf)
    if args.out == "-":
        sys.stdout.write(buf.getvalue())
    else:
        try:
            Path(args.out).write_text(buf.getvalue(), encoding="utf-8")
        except OSError as e:
            return fail(f"{args.out}: {e.strerror or e}")
    summary = {
        "out": args.out,
        "years": list(build.years),
        "groups": len(build.groups),
        "core": sum(g.kind == "core" for g in build.groups),
        "comprehensive": sum(g.kind == "comprehensive" for g in build.groups),
        "mean_cost": round(build.mean_cost, 2),
        "cases_used": build.cases_used,
        "cases_other_years": build.cases_other_years,
        "cases_dropped": build.cases_dropped,
        "rows_skipped": len(skipped),
        "skipped_examples": skipped[:10],
        "seconds": round(elapsed, 3),
    }
    stream = sys.stderr if args.out == "-" else sys.stdout
    if args.json:
        stream.write(msgspec.json.encode(summary).decode() + "\n")
    else:
        con = Console(file=stream)
        con.print(
            f"catalog: {summary['core']} core + {summary['comprehensive']} comprehensive groups "
            f"from {build.cases_used} cases of {build.years} in {elapsed:.1f} s"
            + (f"; {len(skipped)} rows skipped" if skipped else "")
        )
        for line in skipped[:10]:
            con.print(f"  skipped {line}", markup=False)
    return 1 if skipped else 0
