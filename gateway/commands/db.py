"""`dipgw db migrate|status`: the schema of the configured (or embedded) PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio

import asyncpg

from adapters.runtime.postgres import migrate, migrations
from gateway.commands._common import UsageError, fail, settings_from
from gateway.localpg import EmbeddedPostgres


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("db", help="PostgreSQL schema migrations")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    verbs.add_parser("migrate", help="apply pending migrations").set_defaults(
        func=_run, verb="migrate"
    )
    verbs.add_parser("status", help="list migrations and whether applied").set_defaults(
        func=_run, verb="status"
    )


async def _apply(dsn: str, verb: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        if verb == "migrate":
            applied = await migrate(conn)
            print(f"applied: {applied or 'nothing (up to date)'}")
        else:
            done: set[int] = set()
            if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
                done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, name, _ in migrations():
                print(f"{version:04d} {name:40} {'applied' if version in done else 'pending'}")
    finally:
        await conn.close()


def _run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except UsageError as exc:
        return fail(str(exc))
    # Only PostgreSQL is needed here: the embedded one when no DSN is configured.
    if settings.pg.dsn:
        asyncio.run(_apply(settings.pg.dsn, args.verb))
        return 0
    pg = EmbeddedPostgres(settings.state_path / "pgdata")
    try:
        asyncio.run(_apply(pg.start(), args.verb))
    finally:
        pg.stop()
    return 0
