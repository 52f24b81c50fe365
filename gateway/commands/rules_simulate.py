"""`dipgw rules simulate CITY YEAR DRAFT_RULES… [--csv FILE] [--html FILE] [--json]`: 测算.

Scores the stored cases of CITY (treating city) for clearing year YEAR under the draft rules —
the same files a city imports (TOML policy + catalog, or a rule-set JSON) — without touching
the published results, and reports per hospital the cases, points, payment under the current
(published) results and under the draft, the delta and the deviation kinds. The simulation is
stored (`simulation_runs`, numbered per city and year) for the API. See docs/simulation.md.
Exit 0 ok, 1 no rules in force (a draft settlement policy alone simulates the rules in force),
2 bad usage or unreadable/mismatched draft files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

import asyncpg

from contracts import shown
from gateway.commands._common import UsageError, fail, with_pool
from gateway.commands._output import print_table
from gateway.commands._simulation_report import (
    COLUMNS,
    RIGHT,
    kinds_text,
    table_rows,
    write_csv_file,
    write_html_file,
)
from workers.dip import (
    RuleSet,
    RuleSetError,
    SettlementPolicy,
    SettlementPolicyError,
    parse_settlement_policy,
)
from workers.rules_store import read_rules_files, rules_in_force
from workers.simulate import SimulationRun, simulate

__all__ = ["add_verb", "run_json"]


def add_verb(verbs: Any) -> None:
    """Add `simulate` to the `rules` noun."""
    sim = verbs.add_parser(
        "simulate", help="score a year of stored cases under draft rules (测算), store the result"
    )
    sim.add_argument("city", help="treating city (DIP pool) region code, e.g. 440100")
    sim.add_argument("year", type=int, help="clearing year")
    sim.add_argument(
        "files",
        nargs="+",
        type=Path,
        help="draft TOML policy [+ catalog] or JSON, and/or a draft settlement policy TOML"
        ' (kind = "settlement": the point value method and budgets)',
    )
    sim.add_argument("--csv", type=Path, metavar="FILE", help="also write the lines as CSV")
    sim.add_argument("--html", type=Path, metavar="FILE", help="also write an HTML report")
    sim.add_argument("--json", action="store_true", help="the result as JSON on stdout")
    sim.set_defaults(func=_simulate)


def run_json(run: SimulationRun) -> dict[str, Any]:
    """The simulation as plain JSON data (money and points as decimal strings)."""

    def line(ln: Any) -> dict[str, Any]:
        return {
            "fixmedins_code": ln.fixmedins_code,
            "name": run.names.get(ln.fixmedins_code),
            "cases": ln.cases,
            "points_current": f"{ln.points_current:f}",
            "points_draft": f"{ln.points_draft:f}",
            "payment_current": str(ln.payment_current),
            "payment_draft": str(ln.payment_draft),
            "delta": str(ln.delta),
            "delta_pct": None if ln.delta_pct is None else str(ln.delta_pct),
            "kinds_current": ln.kinds_current,
            "kinds_draft": ln.kinds_draft,
        }

    res = run.result
    total = line(res.total)
    del total["fixmedins_code"], total["name"]
    return {
        "sim_id": run.sim_id,
        "seq": run.seq,
        "city": run.city,
        "clearing_year": run.clearing_year,
        "current_version": run.current_version,
        "draft_version": run.draft_version,
        "point_values": {
            "current": {f: str(v) for f, v in res.point_values_current.items()},
            "draft": {f: str(v) for f, v in res.point_values_draft.items()},
            "method": run.point_value_method,
        },
        "skipped": run.skipped,
        "seconds": round(run.seconds, 3),
        "created_at": shown(run.created_at),
        "total": total,
        "lines": [line(ln) for ln in res.lines],
    }


def _split_settlement(
    files: list[Path],
) -> tuple[list[Path], SettlementPolicy | None, list[dict[str, str]]]:
    """The draft settlement policy (a TOML with `kind = "settlement"`) apart from the rules
    files; `UsageError` naming the file when it cannot be read or is not a valid policy."""
    rules_files: list[Path] = []
    found: list[tuple[Path, SettlementPolicy]] = []
    for path in files:
        if path.suffix.lower() != ".toml":
            rules_files.append(path)
            continue
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"draft rules not read: {path}: {exc}") from None
        if doc.get("kind") != "settlement":
            rules_files.append(path)
            continue
        try:
            found.append((path, parse_settlement_policy(doc)))
        except SettlementPolicyError as exc:
            raise UsageError(f"draft settlement policy not read: {path}: {exc}") from None
    if len(found) > 1:
        raise UsageError('give at most one settlement policy (kind = "settlement")')
    if not found:
        return rules_files, None, []
    path, policy = found[0]
    source = {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return rules_files, policy, [source]


def _simulate(args: argparse.Namespace) -> int:
    from gateway.commands.rules import city_year_settings

    try:
        settings = city_year_settings(args)
        rules_files, settlement, settle_sources = _split_settlement(list(args.files))
    except UsageError as exc:
        return fail(str(exc))
    draft: RuleSet | None = None
    sources: list[dict[str, str]] = []
    if rules_files:
        try:
            draft, sources = read_rules_files(rules_files)
        except RuleSetError as exc:
            return fail(f"draft rules not read: {exc}")
    for city, year in ([(draft.city, draft.clearing_year)] if draft is not None else []) + (
        [(settlement.city, settlement.clearing_year)] if settlement is not None else []
    ):
        if (city, year) != (args.city, args.year):
            return fail(
                f"the files hold the rules of {city} for {year}, not {args.city} for {args.year}"
            )

    async def work(pool: asyncpg.Pool) -> int:
        rules = draft
        if rules is None:  # only a draft settlement policy: the rules in force are the draft
            stored = await rules_in_force(pool, args.city, args.year)
            if stored is None:
                return fail(f"no DIP rules in force for {args.city}, clearing year {args.year}", 1)
            rules = stored.rules
        run = await simulate(
            pool,
            args.city,
            args.year,
            rules,
            sources + settle_sources,
            settlement=settlement,
            created_by="cli",
        )
        if args.csv is not None:
            write_csv_file(run, args.csv)
        if args.html is not None:
            write_html_file(run, args.html)
        if args.json:
            print(json.dumps(run_json(run), ensure_ascii=False))
        else:
            _print(run)
        return 0

    return with_pool(settings, work)


def _print(run: SimulationRun) -> None:
    res = run.result
    print(
        f"{run.city}/{run.clearing_year} simulation #{run.seq}: {res.total.cases} cases"
        f" ({run.skipped} without facts skipped) in {run.seconds:.1f} s"
    )
    print(f"  current: {run.current_version or 'no rules in force'}")
    print(f"  draft:   {run.draft_version}")
    for fund in sorted(set(res.point_values_current) | set(res.point_values_draft)):
        cur = res.point_values_current.get(fund, "-")
        new = res.point_values_draft.get(fund, "-")
        print(f"  point value {fund}: {cur} → {new} ({run.point_value_method})")
    print(f"  deviation (current): {kinds_text(res.total.kinds_current)}")
    print(f"  deviation (draft):   {kinds_text(res.total.kinds_draft)}")
    print()
    print_table("per hospital", COLUMNS, table_rows(run), right=RIGHT)
