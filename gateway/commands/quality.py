"""`dipgw quality report`: the ingestion-quality report of the API (`/v1/quality/report`) on a
terminal, as JSON or as CSV, read straight from the database (an operator's view: all cities).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

import asyncpg

from contracts import city_of, shown
from gateway.commands._common import UsageError, fail, settings_from, with_pool
from gateway.commands._output import Cell, add_csv_arguments, print_table, write_csv
from gateway.errors import BadQuery
from gateway.ops.reports import GROUPINGS, period, report, to_csv


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    quality = subparsers.add_parser("quality", help="ingestion-quality monitoring")
    verbs = quality.add_subparsers(dest="verb", metavar="VERB", required=True)
    rep = verbs.add_parser(
        "report", help="quality per hospital, city, day or rule for a period (default 7 days)"
    )
    rep.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="first day (CST)")
    rep.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="last day (default today)")
    rep.add_argument("--city", help="one city (6 digits)")
    rep.add_argument("--hospital", help="one hospital (fixmedins_code)")
    rep.add_argument("--by", choices=GROUPINGS, default="hospital")
    rep.add_argument("--timely-days", type=int, default=7, help="及时率 threshold (1..15)")
    out = rep.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    add_csv_arguments(rep, out)
    rep.set_defaults(func=_report)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} h"


def _seen(value: str | None) -> str:
    """A report's moment (ISO 8601, any offset) as the province reads it, its offset written."""
    return "" if not value else shown(datetime.fromisoformat(value), "minutes")


def _print_table(result: dict[str, Any]) -> None:
    by = result["by"]
    title = f"数据质量 quality by {by}, {result['from']} — {result['to']}"
    rows = result["rows"]
    body: list[list[Cell]]
    if by == "rule":
        columns = ["rule", "dimension", "severity", "records", "findings", "share", "example"]
        right = {"records", "findings", "share"}
        body = [
            [
                r["rule"],
                r["dimension"],
                r["severity"],
                str(r["records"]),
                str(r["findings"]),
                _pct(r["share"]),
                (r["examples"] or [""])[0],
            ]
            for r in rows
        ]
    else:
        key = {"hospital": "fixmedins_code", "city": "city", "day": "day"}[by]
        keys = [key, *(["name", "city"] if by == "hospital" else [])]
        figures = ["received", "rejected", "warned", "规范率", "及时率", "lag p50", "lag p90"]
        columns = [*keys, *figures, "last seen"]
        right = set(figures)
        body = [
            [
                *(str(r.get(c) or "") for c in keys),
                str(r["received"]),
                str(r["rejected"]),
                str(r["warned"]),
                _pct(r["pass_rate"]),
                _pct(r["timely_rate"]),
                _hours(r["lag_p50_h"]),
                _hours(r["lag_p90_h"]),
                _seen(r["last_seen"]),
            ]
            for r in rows
        ]
    caption = None if rows else "no data in this period"
    print_table(title, columns, body, right=right, caption=caption)


def _report(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
        start, end = period(args.start, args.end)
        if not 1 <= args.timely_days <= 15:
            raise BadQuery("--timely-days must be 1..15")
        if args.city and not (len(args.city) == 6 and args.city.isdigit()):
            raise BadQuery("--city must be 6 digits")
        city = city_of(args.city) if args.city else None
        if args.city and city is None:
            raise BadQuery(f"--city {args.city} is not a known region code")
    except (UsageError, BadQuery) as exc:
        return fail(str(exc))

    async def work(pool: asyncpg.Pool) -> dict[str, Any]:
        return await report(
            pool,
            by=args.by,
            start=start,
            end=end,
            city=city,
            hospital=args.hospital,
            timely_days=args.timely_days,
        )

    result = with_pool(settings, work)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    elif args.csv:
        write_csv(to_csv(result), bom=not args.no_bom)
    else:
        _print_table(result)
    return 0
