"""`dipgw catalog build CASES… [--out FILE] [options]`: build a DIP catalog from history.

Reads historical cases (CSV or NDJSON, see workers/dip/README.md), groups three years weighted
1:2:7 into core groups (combinations reaching ``--threshold`` cases) and comprehensive groups,
and writes a catalog CSV that ``--rules`` policies can name. Scores by one of DIP 3.0's three
methods (``--method``), optionally after trimming each group's costs to percentiles
(``--trim``), with 基层病种 selected (``--primary…``) and the auxiliary-catalog CV gate reported
(``--aux-out``). Exit 0 ok, 1 when some input rows were skipped, 2 on bad usage or unreadable
input.
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
from gateway.commands._output import write_csv
from workers.dip import BuildOptions, build_catalog, read_history, write_catalog_csv
from workers.dip._catalog import (
    METHODS,
    NATIONAL_PRIMARY_LIST,
    AnyHistRow,
    AuxGate,
    BuildError,
    HistoryError,
    PrimarySelection,
    read_primary_list,
    write_aux_csv,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("catalog", help="DIP catalog (病种目录库) tools")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    build = verbs.add_parser("build", help="build a catalog CSV from historical cases")
    build.add_argument("cases", metavar="CASES", nargs="+", help="history files (.csv, .ndjson)")
    build.add_argument("--out", metavar="FILE", default="-", help="catalog CSV (default stdout)")
    build.add_argument("--threshold", type=int, default=15, help="core-group case threshold")
    build.add_argument("--weights", default="1,2,7", help="year weights, oldest first")
    build.add_argument("--years", default="", help="years, oldest first (default: latest)")
    build.add_argument(
        "--scale",
        type=float,
        default=None,
        help="RW = m / reference × scale (default 1000; 1 for standard_quota)",
    )
    build.add_argument(
        "--method",
        choices=METHODS,
        default="average",
        help="平均费用法 (reference M), 基准病种费用法 (--benchmark), 标准定额法 (--quota)",
    )
    build.add_argument("--benchmark", metavar="GROUP", default="", help="benchmark group code")
    build.add_argument("--quota", type=float, default=None, help="yuan worth one point (× scale)")
    build.add_argument(
        "--trim",
        metavar="LOW,HIGH",
        nargs="?",
        const="2.5,97.5",
        default=None,
        help="drop each group's cases outside these cost percentiles (bare: 2.5,97.5)",
    )
    build.add_argument(
        "--trim-percentile", choices=("nearest_rank", "linear"), default="nearest_rank"
    )
    build.add_argument("--trim-min-cases", type=int, default=0, metavar="N")
    build.add_argument(
        "--primary", action="store_true", help="select 基层病种 among all core groups"
    )
    build.add_argument(
        "--primary-list",
        metavar="FILE",
        help="基层病种 candidates (CSV); 'national': the DIP 3.0 list shipped in workers/dip/data",
    )
    build.add_argument("--primary-levels", default="", help="primary hospital level codes")
    build.add_argument("--primary-min-share", type=float, default=0.0, metavar="X")
    build.add_argument("--primary-min-cases", type=int, default=0, metavar="N")
    build.add_argument("--primary-max-cv", default="0.7", metavar="X|none")
    build.add_argument("--aux-out", metavar="FILE", help="auxiliary CV gate report (CSV)")
    build.add_argument("--aux-factors", default="", help="factors to test (default: all)")
    build.add_argument("--aux-min-cv", default="0.7", metavar="X|none")
    build.add_argument("--aux-min-reduction", type=float, default=0.2, metavar="X")
    build.add_argument("--aux-min-group-cases", type=int, default=0, metavar="N")
    build.add_argument("--aux-min-subtype-cases", type=int, default=0, metavar="N")
    build.add_argument(
        "--aux-all-years", action="store_true", help="gate on every selected year, not the last"
    )
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
    build.add_argument(
        "--no-bom",
        action="store_true",
        help="CSV without the UTF-8 byte-order mark Excel on Chinese Windows needs",
    )
    build.set_defaults(func=_build)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _limit(text: str) -> float | None:
    return None if text.strip().lower() == "none" else float(text)


def _options(args: argparse.Namespace) -> BuildOptions:
    trim: tuple[float, float] | None = None
    if args.trim is not None:
        bounds = _floats(args.trim)
        if len(bounds) != 2:
            raise ValueError(f"--trim needs LOW,HIGH, not {args.trim!r}")
        trim = (bounds[0], bounds[1])
    primary = None
    if args.primary or args.primary_list:
        primary = PrimarySelection(
            candidates=read_primary_list(
                NATIONAL_PRIMARY_LIST if args.primary_list == "national" else args.primary_list
            )
            if args.primary_list
            else None,
            levels=_names(args.primary_levels),
            min_share=args.primary_min_share,
            min_cases=args.primary_min_cases,
            max_cv=_limit(args.primary_max_cv),
        )
    aux = None
    if args.aux_out:
        aux = AuxGate(
            factors=_names(args.aux_factors),
            min_cv=_limit(args.aux_min_cv),
            min_reduction=args.aux_min_reduction,
            min_group_cases=args.aux_min_group_cases,
            min_subtype_cases=args.aux_min_subtype_cases,
            last_year_only=not args.aux_all_years,
        )
    return BuildOptions(
        weights=_floats(args.weights),
        years=tuple(int(y) for y in args.years.split(",") if y.strip()),
        threshold=args.threshold,
        scale=args.scale,
        weighting=args.weighting,
        related_operations=not args.no_related,
        min_comprehensive_cases=args.min_comprehensive,
        score_decimals=args.decimals,
        method=args.method,
        benchmark_group=args.benchmark,
        quota=args.quota,
        trim=trim,
        trim_percentile=args.trim_percentile,
        trim_min_cases=args.trim_min_cases,
        primary=primary,
        aux=aux,
    )


def _build(args: argparse.Namespace) -> int:
    try:
        opts = _options(args)
    except OSError as e:
        return fail(f"{args.primary_list}: {e.strerror or e}")
    except ValueError as e:  # HistoryError (an unreadable list) included
        return fail(f"bad option: {e}")
    skipped: list[str] = []
    started = time.perf_counter()

    def rows() -> Iterator[AnyHistRow]:
        for path in args.cases:
            yield from read_history(path, args.intervention_as, skipped)

    try:
        build = build_catalog(rows(), opts)
    except (OSError, HistoryError, BuildError) as e:
        return fail(str(e))
    elapsed = time.perf_counter() - started
    buf = io.StringIO()
    write_catalog_csv(build, buf)
    bom = not args.no_bom
    if args.out == "-":
        write_csv(buf.getvalue(), bom=bom)
    else:
        try:
            with Path(args.out).open("w", encoding="utf-8", newline="") as fh:
                write_csv(buf.getvalue(), bom=bom, stream=fh)
        except OSError as e:
            return fail(f"{args.out}: {e.strerror or e}")
    if args.aux_out:
        aux_buf = io.StringIO()
        write_aux_csv(build, aux_buf)
        try:
            with Path(args.aux_out).open("w", encoding="utf-8", newline="") as fh:
                write_csv(aux_buf.getvalue(), bom=bom, stream=fh)
        except OSError as e:
            return fail(f"{args.aux_out}: {e.strerror or e}")
    summary = {
        "out": args.out,
        "years": list(build.years),
        "groups": len(build.groups),
        "core": sum(g.kind == "core" for g in build.groups),
        "comprehensive": sum(g.kind == "comprehensive" for g in build.groups),
        "primary": sum(g.kind == "primary" for g in build.groups),
        "method": build.method,
        "reference_cost": round(build.reference_cost, 2),
        "scale": build.scale,
        "mean_cost": round(build.mean_cost, 2),
        "cases_trimmed": build.cases_trimmed,
        "aux_kept": sum(a.kept for a in build.aux),
        "aux_refused": sum(not a.kept for a in build.aux),
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
            f"catalog: {summary['core']} core + "
            + (f"{summary['primary']} 基层 + " if opts.primary else "")
            + f"{summary['comprehensive']} comprehensive groups "
            f"from {build.cases_used} cases of {build.years} in {elapsed:.1f} s, "
            f"method {build.method}"
            + (f"; {build.cases_trimmed} cases trimmed" if opts.trim else "")
            + (
                f"; aux splits {summary['aux_kept']} kept, {summary['aux_refused']} refused"
                if opts.aux
                else ""
            )
            + (f"; {len(skipped)} rows skipped" if skipped else "")
        )
        for line in skipped[:10]:
            con.print(f"  skipped {line}", markup=False)
    return 1 if skipped else 0
