"""`dipgw settle month|year|show|diff`: a city's monthly pre-settlement and annual clearing.

`month CITY YYYY-MM [--deductions FILE]` settles the cases discharged in the month at the
预算点值; `year CITY YYYY --assessment FILE` clears the year at the 结算点值 with each
hospital's assessment score and deductions (the FILE, TOML: `[hospitals.CODE] score = "92"`,
`deductions = { "310" = "1200.00" }`), the approved special reviews and the months' prepay.
Each run is stored as the period's next version; `show CITY PERIOD [--seq N]` prints one,
`diff CITY PERIOD [A B]` compares two (default: the latest against the one before);
`policy CITY YYYY` prints the settlement policy in force.
The policy is the city's settlement TOML in force (`dipgw rules import CITY YEAR FILE`).
Exit 0 ok, 1 no policy / no run, 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from adapters.runtime.settings import Settings
from contracts import city_of, shown
from gateway.commands._common import UsageError, fail, settings_from, with_pool
from gateway.commands._output import print_table, to_toml
from workers.dip import HospitalInput
from workers.settlement import NoPolicy, RunResult, diff_runs, find_run, run_month, run_year
from workers.settlement_policy import (
    SettlementInputError,
    policy_in_force,
    read_inputs_file,
    summary,
)

_PERIOD = re.compile(r"^(20\d\d|2100)(-(0[1-9]|1[0-2]))?$")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "settle", help="monthly pre-settlement and annual clearing (runs stored, comparable)"
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    month = verbs.add_parser("month", help="settle a month at the estimated point value")
    month.add_argument("city", help="treating city (DIP pool) region code, e.g. 440100")
    month.add_argument("period", metavar="YYYY-MM")
    month.add_argument("--deductions", type=Path, help="TOML: [hospitals.CODE] deductions")
    month.add_argument("--json", action="store_true")
    month.set_defaults(func=_month)
    year = verbs.add_parser("year", help="clear a year at the settlement point value")
    year.add_argument("city")
    year.add_argument("period", metavar="YYYY")
    year.add_argument(
        "--assessment", type=Path, required=True, help="TOML: [hospitals.CODE] score, deductions"
    )
    year.add_argument("--json", action="store_true")
    year.set_defaults(func=_year)
    show = verbs.add_parser("show", help="a stored run (the latest unless --seq)")
    show.add_argument("city")
    show.add_argument("period", metavar="YYYY-MM|YYYY")
    show.add_argument("--seq", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)
    pol = verbs.add_parser("policy", help="the settlement policy in force (as TOML)")
    pol.add_argument("city")
    pol.add_argument("period", metavar="YYYY")
    pol.add_argument("--json", action="store_true")
    pol.set_defaults(func=_policy)
    diff = verbs.add_parser("diff", help="compare two runs of a period (default: last two)")
    diff.add_argument("city")
    diff.add_argument("period", metavar="YYYY-MM|YYYY")
    diff.add_argument("seqs", nargs="*", type=int, metavar="SEQ", help="from, to")
    diff.add_argument("--json", action="store_true")
    diff.set_defaults(func=_diff)


def _checked(args: argparse.Namespace, kind: str | None) -> Settings:
    city = city_of(args.city)
    if city != args.city:
        raise UsageError(f"city {args.city!r} is not a city (DIP pool) region code")
    m = _PERIOD.match(args.period)
    if m is None or (kind == "month" and not m.group(2)) or (kind == "year" and m.group(2)):
        want = {"month": "YYYY-MM", "year": "YYYY"}.get(kind or "", "YYYY-MM or YYYY")
        raise UsageError(f"period {args.period!r}: expected {want}")
    return settings_from(args)


def _inputs(path: Path | None) -> tuple[dict[str, HospitalInput], dict[str, str] | None]:
    if path is None:
        return {}, None
    return read_inputs_file(path)


def _month(args: argparse.Namespace) -> int:
    try:
        settings = _checked(args, "month")
        inputs, source = _inputs(args.deductions)
    except (UsageError, SettlementInputError) as exc:
        return fail(str(exc))

    async def work(pool: asyncpg.Pool) -> int:
        try:
            result = await run_month(pool, args.city, args.period, inputs, source)
        except NoPolicy as exc:
            return fail(str(exc), 1)
        _print_result(result, args.json)
        return 0

    return with_pool(settings, work)


def _year(args: argparse.Namespace) -> int:
    try:
        settings = _checked(args, "year")
        inputs, source = _inputs(args.assessment)
    except (UsageError, SettlementInputError) as exc:
        return fail(str(exc))

    async def work(pool: asyncpg.Pool) -> int:
        try:
            result = await run_year(pool, args.city, int(args.period), inputs, source)
        except NoPolicy as exc:
            return fail(str(exc), 1)
        except ValueError as exc:  # SettlementPolicyError: a hospital without a score
            return fail(str(exc))
        _print_result(result, args.json)
        return 0

    return with_pool(settings, work)


def _print_result(result: RunResult, as_json: bool) -> None:
    run = {
        "run_id": result.run_id,
        "city": result.city,
        "period": result.period,
        "kind": result.kind,
        "seq": result.seq,
        "inputs": result.inputs,
        "point_values": result.point_values,
        "totals": result.totals,
        "lines": result.lines,
    }
    if as_json:
        print(json.dumps(run, ensure_ascii=False))
    else:
        _print_run(run)


def _print_run(run: dict[str, Any]) -> None:
    city = run["totals"]["city"]
    changes = run["totals"].get("case_changes", {})
    print(
        f"{run['city']} {run['kind']} {run['period']} run {run['seq']} (id {run['run_id']}):"
        f" {city.get('cases', 0)} cases, settled {city.get('settled', '0')},"
        f" payable {city.get('payable', '0')}, adjustment {city.get('adjustment', '0')}"
    )
    if run["inputs"].get("previous_run_id") is not None:
        print(
            f"  since the previous run: {changes.get('new', 0)} new, "
            f"{changes.get('changed', 0)} changed, {changes.get('gone', 0)} gone cases"
        )
    earlier = run["totals"].get("earlier_months") or {}
    if earlier.get("new") or earlier.get("changed") or earlier.get("gone"):
        amount = sum((Decimal(x["amount"]) for x in earlier["lines"]), Decimal(0))
        print(
            f"  earlier months changed since their runs ({', '.join(earlier['months'])}):"
            f" {earlier['new']} new, {earlier['changed']} changed, {earlier['gone']} gone"
            f" cases, {amount} at the 预算点值 — run those months again to pay it"
        )
    year = run["kind"] == "year"
    for fund, pv in run["point_values"].items():
        if not year:
            print(f"  fund {fund}: 预算点值 {pv['estimate']} (the month prepays at it)")
            continue
        bound = f" ({pv['bound']})" if pv.get("bound") else ""
        print(
            f"  fund {fund}: 预算点值 {pv['estimate']}, 结算点值 {pv['value'] or '-'}{bound}"
            f" (raw {pv['raw'] or '-'}, total score {pv['total_score']})"
        )
    columns = ["hospital", "fund", "cases", "points", "dip amount", "settled"]
    columns += (
        ["prepaid", "returned", "payable", "adj."] if year else ["deposit", "payable", "adj."]
    )
    rows = []
    for line in run["lines"]:
        row = [line["fixmedins_code"], line["fund"], str(line["cases"]), str(line["points"])]
        row += [str(line["dip_amount"]), str(line["settled"])]
        if year:
            row += [str(line.get("prepaid", "0")), str(line.get("deposit_returned", "0"))]
        else:
            row += [str(line["deposit"])]
        row += [str(line["payable"]), str(line["adjustment"])]
        rows.append(row)
    right = set(columns) - {"hospital", "fund"}
    print_table("lines (yuan)", columns, rows, right=right)


def _show(args: argparse.Namespace) -> int:
    try:
        settings = _checked(args, None)
    except UsageError as exc:
        return fail(str(exc))

    async def work(pool: asyncpg.Pool) -> int:
        run = await find_run(pool, args.city, args.period, args.seq)
        if run is None:
            print(f"no settlement run for {args.city} {args.period}")
            return 1
        run["created_at"] = shown(run["created_at"])
        if args.json:
            print(json.dumps(run, ensure_ascii=False, default=str))
        else:
            _print_run(run)
            print(f"  stored {run['created_at']}")
        return 0

    return with_pool(settings, work)


def _diff(args: argparse.Namespace) -> int:
    try:
        settings = _checked(args, None)
        if len(args.seqs) not in (0, 2):
            raise UsageError("give two run numbers (from, to) or none")
    except UsageError as exc:
        return fail(str(exc))

    async def work(pool: asyncpg.Pool) -> int:
        if args.seqs:
            a = await find_run(pool, args.city, args.period, args.seqs[0])
            b = await find_run(pool, args.city, args.period, args.seqs[1])
        else:
            b = await find_run(pool, args.city, args.period)
            a = (
                None
                if b is None or b["seq"] == 1
                else await find_run(pool, args.city, args.period, b["seq"] - 1)
            )
        if a is None or b is None:
            print(f"no two settlement runs to compare for {args.city} {args.period}")
            return 1
        rows = diff_runs(a, b)
        if args.json:
            print(json.dumps({"from": a["seq"], "to": b["seq"], "lines": rows}))
            return 0
        print(
            f"{args.city} {args.period}: run {a['seq']} → run {b['seq']}, {len(rows)} lines differ"
        )
        if not rows:
            return 0
        table = [
            [
                r["fixmedins_code"],
                r["fund"],
                r["cases"]["delta"],
                r["points"]["delta"],
                r["payable"]["from"],
                r["payable"]["to"],
                r["payable"]["delta"],
            ]
            for r in rows
        ]
        columns = ("hospital", "fund", "Δ cases", "Δ points", "payable from", "to", "Δ payable")
        print_table("changed lines (yuan)", columns, table, right=set(columns[2:]))
        return 0

    return with_pool(settings, work)


def _policy(args: argparse.Namespace) -> int:
    try:
        settings = _checked(args, "year")
    except UsageError as exc:
        return fail(str(exc))

    async def work(pool: asyncpg.Pool) -> int:
        stored = await policy_in_force(pool, args.city, int(args.period))
        if stored is None:
            print(f"no settlement policy for {args.city}, clearing year {args.period}")
            return 1
        doc = msgspec.to_builtins(stored.policy)
        facts = {**summary(stored), "imported_at": shown(stored.imported_at)}
        if args.json:
            print(json.dumps({**facts, "policy": doc}, ensure_ascii=False))
            return 0
        print(
            f"{facts['city']}/{facts['clearing_year']} settlement policy in force: seq"
            f" {facts['seq']}, {facts['version']}, sha256 {facts['content_sha256'][:12]},"
            f" imported {facts['imported_at']}"
        )
        print(to_toml(doc), end="")
        return 0

    return with_pool(settings, work)
