"""`dipgw rules import CITY YEAR settlement.toml`: a city's settlement policy (docs/settlement.md).

Reached through `dipgw rules import` when the file says ``kind = "settlement"``; stored in
`settlement_policies` as the version in force (the same content again is a no-op).
"""

from __future__ import annotations

import argparse
import json

import asyncpg

from adapters.runtime.settings import Settings
from contracts import shown
from gateway.commands._common import fail, with_pool
from workers.dip import SettlementPolicyError
from workers.settlement_policy import (
    import_settlement_policy,
    read_settlement_file,
    summary,
)


def import_settlement(args: argparse.Namespace, settings: Settings) -> int:
    if len(args.files) != 1:
        return fail("a settlement policy is imported alone: give exactly one TOML file")
    try:
        policy, sources = read_settlement_file(args.files[0])
    except SettlementPolicyError as exc:
        return fail(f"settlement policy not imported: {exc}")
    if (policy.city, policy.clearing_year) != (args.city, args.year):
        return fail(
            f"the file holds the settlement policy of {policy.city} for {policy.clearing_year},"
            f" not {args.city} for {args.year}"
        )

    async def work(pool: asyncpg.Pool) -> int:
        stored, unchanged = await import_settlement_policy(pool, policy, sources)
        out = {
            **summary(stored),
            "imported_at": shown(stored.imported_at),
            "unchanged": unchanged,
        }
        if args.json:
            print(json.dumps(out, ensure_ascii=False))
        else:
            state = "unchanged, already in force" if unchanged else "imported, in force"
            print(
                f"{out['city']}/{out['clearing_year']} settlement policy seq {out['seq']}:"
                f" {out['version']} (funds {', '.join(out['funds'])},"
                f" sha256 {out['content_sha256'][:12]}) — {state}"
            )
        return 0

    return with_pool(settings, work)
