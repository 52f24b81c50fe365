"""`dipgw feeds add|list|pause|resume|remove|status`: the feed sources a gateway pulls from.

A feed is stored in PostgreSQL (`feed_sources`) and picked up by a running gateway within a
few seconds; no restart. Options are the kind's own (docs/feeds.md); passwords are best given
as `password_env` (the name of an environment variable of the gateway) and are never shown.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import Any

import asyncpg

from adapters.feeds import SOURCE_KINDS, FeedConfig
from gateway.commands._common import UsageError, fail, settings_from, with_pool
from gateway.commands._output import print_table
from gateway.feeds import FeedRow, FeedStore, FeedStoreError, feed_status


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    feeds = subparsers.add_parser(
        "feeds", help="feed sources: HIS intermediate databases, drop folders, SFTP accounts"
    )
    verbs = feeds.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="add a feed (a running gateway starts it within seconds)")
    add.add_argument("name", help="letters, digits, '-' and '_'")
    add.add_argument("--kind", required=True, choices=SOURCE_KINDS.names())
    add.add_argument(
        "--hospital",
        dest="hospitals",
        action="append",
        required=True,
        metavar="CODE",
        help="an institution whose lists the feed carries (repeat for a hospital group)",
    )
    add.add_argument(
        "--option",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a source option (a TOML value, else text): --option table=his_setl",
    )
    add.add_argument(
        "--options-file", type=Path, help="a TOML file of the source's options (mappings too)"
    )
    add.add_argument("--poll-interval", type=float, default=5.0, metavar="SECONDS")
    add.add_argument("--batch-size", type=int, default=500)
    add.add_argument("--paused", action="store_true", help="add it paused")
    add.add_argument("--replace", action="store_true", help="change an existing feed")
    add.set_defaults(func=_run, action=_add)
    lst = verbs.add_parser("list", help="the configured feeds (secrets masked)")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_run, action=_list)
    for verb, paused, says in (
        ("pause", True, "pause a feed (it finishes the batch it is on)"),
        ("resume", False, "resume a paused feed"),
    ):
        p = verbs.add_parser(verb, help=says)
        p.add_argument("name")
        p.set_defaults(func=_run, action=_pause, paused=paused)
    rm = verbs.add_parser("remove", help="remove a feed (its source is left as it is)")
    rm.add_argument("name")
    rm.set_defaults(func=_run, action=_remove)
    status = verbs.add_parser("status", help="what each feed read, its backlog and errors")
    status.add_argument("name", nargs="?")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_run, action=_status)


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--option {text!r}: expected KEY=VALUE")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def _config(args: argparse.Namespace) -> FeedConfig:
    options: dict[str, Any] = {}
    if args.options_file is not None:
        try:
            options.update(tomllib.loads(args.options_file.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"--options-file {args.options_file}: {exc}") from None
    options.update(_option(text) for text in args.options)
    return FeedConfig(
        name=args.name,
        kind=args.kind,
        hospitals=args.hospitals,
        options=options,
        poll_interval_s=args.poll_interval,
        batch_size=args.batch_size,
        paused=args.paused,
    )


async def _add(store: FeedStore, args: argparse.Namespace) -> int:
    config = _config(args)
    await store.add(config, replace=args.replace)
    print(f"feed {config.name} {'changed' if args.replace else 'added'} ({config.kind})")
    return 0


def _listed(row: FeedRow) -> dict[str, Any]:
    config = row.config
    return {
        "name": config.name,
        "kind": config.kind,
        "hospitals": config.hospitals,
        "origin": row.origin,
        "paused": config.paused,
        "poll_interval_s": config.poll_interval_s,
        "batch_size": config.batch_size,
        "options": SOURCE_KINDS.shown_options(config),
    }


async def _list(store: FeedStore, args: argparse.Namespace) -> int:
    rows = [_listed(row) for row in await store.rows()]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    print_table(
        "Feeds",
        ["name", "kind", "hospitals", "origin", "paused", "options"],
        [
            [
                r["name"],
                r["kind"],
                ", ".join(r["hospitals"]),
                r["origin"],
                "yes" if r["paused"] else "",
                ", ".join(f"{k}={v}" for k, v in r["options"].items()),
            ]
            for r in rows
        ],
    )
    return 0


async def _pause(store: FeedStore, args: argparse.Namespace) -> int:
    if not await store.set_paused(args.name, args.paused):
        return fail(f"no feed {args.name!r}", 1)
    print(f"feed {args.name} {'paused' if args.paused else 'resumed'}")
    return 0


async def _remove(store: FeedStore, args: argparse.Namespace) -> int:
    if not await store.remove(args.name):
        return fail(f"no feed {args.name!r}", 1)
    print(f"feed {args.name} removed")
    return 0


async def _status(store: FeedStore, args: argparse.Namespace) -> int:
    rows = await store.rows(args.name)
    if args.name and not rows:
        return fail(f"no feed {args.name!r}", 1)
    states = [feed_status(row) for row in rows]
    if args.json:
        print(json.dumps(states, ensure_ascii=False, indent=2))
        return 0
    columns = ["name", "state", "rows_read", "accepted", "duplicate", "rejected", "errors"]
    columns += ["backlog_items", "last_poll_at", "last_error"]
    print_table(
        "Feed status",
        columns,
        [["" if s[c] is None else str(s[c]) for c in columns] for s in states],
        right={"rows_read", "accepted", "duplicate", "rejected", "errors", "backlog_items"},
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
        if args.action is _add:
            _config(args)  # unreadable options fail before the database is started
    except UsageError as exc:
        return fail(str(exc))

    async def work(pool: asyncpg.Pool) -> int:
        return int(await args.action(FeedStore(pool), args))

    try:
        return with_pool(settings, work)
    except FeedStoreError as exc:
        return fail(str(exc))
