"""`dipgw rules import CITY YEAR FILE…` and `dipgw rules show CITY YEAR`: city DIP rules
(`dipgw rules simulate`, 测算 of draft rules, is in `rules_simulate`).

`import` reads a city's rules as published — a TOML policy plus its CSV/XLSX catalog (or one
rule-set JSON document), or its settlement policy (a TOML with `kind = "settlement"`, stored
apart and versioned the same way: docs/settlement.md) — checks that they are the rules of
CITY for clearing year YEAR and stores them in PostgreSQL as the new version in force (the
same content again is a no-op).
Workers pick the new version up within `worker.rules_cache_s`, and the scoring worker then
scores by itself the cases stored `DIP_NO_RULES` while CITY had no rules for YEAR (the change
of clearing year); `dipgw rescore CITY YEAR` re-scores cases already scored. `show` prints
the version in force and the history.
Exit 0 ok, 1 no rules (show), 2 bad usage or unreadable/mismatched files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from adapters.runtime.settings import Settings
from contracts import city_of, shown
from gateway.commands._common import UsageError, fail, settings_from, with_pool
from gateway.commands._output import print_table, to_toml
from gateway.commands.settle_policy import import_settlement
from workers.dip import RuleSetError
from workers.rules_store import (
    StoredRules,
    import_rules,
    read_rules_files,
    rules_history,
    rules_in_force,
)
from workers.settlement_policy import is_settlement_file


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rules", help="city DIP rules per clearing year (import, show, simulate)"
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    imp = verbs.add_parser("import", help="store a city's rules (TOML policy + CSV/XLSX catalog)")
    imp.add_argument("city", help="city (DIP pool) region code, e.g. 440100, 110000, 429004")
    imp.add_argument("year", type=int, help="clearing year")
    imp.add_argument("files", nargs="+", type=Path, help="TOML policy [+ catalog], or JSON")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=_import)
    show = verbs.add_parser("show", help="the rules in force and their history")
    show.add_argument("city")
    show.add_argument("year", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)
    from gateway.commands.rules_simulate import add_verb  # imports city_year_settings from here

    add_verb(verbs)


def city_year_settings(args: argparse.Namespace) -> Settings:
    """The settings of a command on one city's rules for one clearing year (`CITY YEAR`), once
    both are checked; `UsageError` if either is not usable."""
    city = city_of(args.city)
    if city != args.city:  # rules keyed by a district or an unknown code would never apply
        of = f": it belongs to city {city}" if city else ": not a known region code"
        raise UsageError(f"city {args.city!r} is not a city (DIP pool) region code{of}")
    if not 2000 <= args.year <= 2100:
        raise UsageError(f"clearing year {args.year} out of range")
    return settings_from(args)


def summary(stored: StoredRules) -> dict[str, Any]:
    rules = stored.rules
    policy = rules.policy
    kinds: dict[str, int] = {}
    for g in rules.groups:
        kinds[g.kind] = kinds.get(g.kind, 0) + 1
    return {
        "city": rules.city,
        "clearing_year": rules.clearing_year,
        "ruleset_id": stored.ruleset_id,
        "seq": stored.seq,
        "version": rules.version,
        "catalog_version": rules.catalog_version,
        "content_sha256": rules.content_hash,
        "version_id": rules.version_id,
        "imported_at": shown(stored.imported_at),
        "groups": len(rules.groups),
        "group_kinds": kinds,
        "exclusions": len(rules.exclusions),
        "levels": {lv.code: lv.coefficient for lv in policy.levels},
        "point_values": {k: str(v) for k, v in policy.point_values.items()},
        "sources": stored.sources,
    }


def _import(args: argparse.Namespace) -> int:
    try:
        settings = city_year_settings(args)
    except UsageError as exc:
        return fail(str(exc))
    if any(is_settlement_file(f) for f in args.files):
        return import_settlement(args, settings)
    try:
        rules, sources = read_rules_files(list(args.files))
    except RuleSetError as exc:
        return fail(f"rules not imported: {exc}")
    if (rules.city, rules.clearing_year) != (args.city, args.year):
        return fail(
            f"the files hold the rules of {rules.city} for {rules.clearing_year},"
            f" not {args.city} for {args.year}"
        )

    async def work(pool: asyncpg.Pool) -> int:
        result = await import_rules(pool, rules, sources)
        out = {**summary(result.stored), "unchanged": result.unchanged}
        if args.json:
            print(json.dumps(out, ensure_ascii=False))
        else:
            state = "unchanged, already in force" if result.unchanged else "imported, in force"
            print(
                f"{out['city']}/{out['clearing_year']} seq {out['seq']}: {out['version']}"
                f" (catalog {out['catalog_version']}, {out['groups']} groups,"
                f" sha256 {out['content_sha256'][:12]}) — {state}"
            )
        return 0

    return with_pool(settings, work)


def _show(args: argparse.Namespace) -> int:
    try:
        settings = city_year_settings(args)
    except UsageError as exc:
        return fail(str(exc))

    async def work(pool: asyncpg.Pool) -> int:
        stored = await rules_in_force(pool, args.city, args.year)
        history = [
            {**h, "imported_at": shown(h["imported_at"])}
            for h in await rules_history(pool, args.city, args.year)
        ]
        if args.json:
            in_force = None
            if stored is not None:
                in_force = {**summary(stored), "policy": policy_doc(stored)}
            print(json.dumps({"in_force": in_force, "history": history}, ensure_ascii=False))
        elif stored is None:
            print(f"no DIP rules for {args.city}, clearing year {args.year}")
        else:
            _print_in_force(stored, history)
        return 0 if stored is not None else 1

    return with_pool(settings, work)


def policy_doc(stored: StoredRules) -> dict[str, Any]:
    """The policy in force as plain data (what the city's TOML says, defaults filled in)."""
    doc = msgspec.to_builtins(stored.rules.policy)
    assert isinstance(doc, dict)
    return doc


def _print_in_force(stored: StoredRules, history: list[dict[str, Any]]) -> None:
    """The version in force as `key: value` lines, its policy as TOML (the form a city's
    policy is imported in), then the history; times in +08:00."""
    s = summary(stored)
    name = stored.rules.policy.city_name
    print(f"{s['city']} {name}, clearing year {s['clearing_year']}: DIP rules in force".strip())
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(s["group_kinds"].items()))
    facts = {
        "seq": str(s["seq"]),
        "version": s["version"],
        "catalog": s["catalog_version"],
        "groups": f"{s['groups']} ({kinds})" if kinds else str(s["groups"]),
        "exclusions": str(s["exclusions"]),
        "sha256": s["content_sha256"],
        "imported": s["imported_at"],
        **{f"source {i}": _source(src) for i, src in enumerate(s["sources"], 1)},
    }
    width = max(len(k) for k in facts)
    for key, value in facts.items():
        print(f"  {key + ':':<{width + 1}} {value}")
    print("\n# policy in force (TOML, defaults filled in)")
    print(to_toml(policy_doc(stored)), end="")
    print()
    rows = [
        [
            str(h["seq"]),
            h["version"],
            h["catalog_version"],
            h["content_sha256"][:12],
            str(h["groups"]),
            h["imported_at"],
        ]
        for h in history
    ]
    columns = ("seq", "version", "catalog", "sha256", "groups", "imported (+08:00)")
    print_table("history", columns, rows, right={"seq", "groups"})


def _source(source: dict[str, str]) -> str:
    digest = source.get("sha256", "")
    return (
        f"{source.get('file', '?')} (sha256 {digest[:12]})" if digest else source.get("file", "?")
    )
