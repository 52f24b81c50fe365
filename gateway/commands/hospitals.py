"""`dipgw hospitals add|list|rotate-secret|reseal|new-key|disable|enable` and
`dipgw tokens issue|list|revoke`.

A new or rotated secret or token is printed once, on standard output only, and is never
logged; tokens are listed and revoked by their id (a hash prefix), never by the token.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from adapters.runtime.settings import Settings
from contracts import shown_or_none
from gateway.accounts import Registry, RegistryError, token_id
from gateway.commands._common import UsageError, fail, settings_from, with_pool
from gateway.commands._output import print_table
from gateway.sealing import MasterKeyError, decode_key, key_id, new_key, sealer_for


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hospitals = subparsers.add_parser("hospitals", help="the hospital registry")
    verbs = hospitals.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="register a hospital; prints its signing secret once")
    add.add_argument("code", help="fixmedins_code, H + 11 digits")
    add.add_argument("--name", required=True)
    add.add_argument(
        "--admdvs", required=True, help="the hospital's region: a known 6-digit region code"
    )
    add.add_argument("--level", required=True, help="hospital level code used by the DIP rules")
    add.add_argument("--sign-type", default="HMAC-SHA256", choices=["HMAC-SHA256", "HMAC-SM3"])
    add.add_argument("--cert-cn", help="client-certificate common name for mTLS")
    add.set_defaults(func=_run, action=_add)
    lst = verbs.add_parser("list", help="list registered hospitals")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_run, action=_list)
    rot = verbs.add_parser("rotate-secret", help="new secret; prints it once")
    rot.add_argument("code")
    rot.add_argument(
        "--grace-minutes",
        type=int,
        default=0,
        help="keep the old secret valid this long (default 0)",
    )
    rot.set_defaults(func=_run, action=_rotate)
    reseal = verbs.add_parser(
        "reseal", help="seal every secret anew under the current master key (after a rotation)"
    )
    reseal.set_defaults(func=_run, action=_reseal)
    new_key = verbs.add_parser("new-key", help="print a new master key (base64url), shown once")
    new_key.set_defaults(func=_new_key)
    for verb, status in (("disable", "disabled"), ("enable", "active")):
        p = verbs.add_parser(verb, help=f"mark a hospital {status}")
        p.add_argument("code")
        p.set_defaults(func=_run, action=_status, status=status)

    tokens = subparsers.add_parser("tokens", help="read-only tokens for city bureaus and ops")
    tverbs = tokens.add_subparsers(dest="verb", metavar="VERB", required=True)
    issue = tverbs.add_parser("issue", help="issue a token; prints it once")
    issue.add_argument(
        "--role",
        required=True,
        choices=["city", "ops", "metrics"],
        help="metrics: may read /metrics only (a Prometheus scraper)",
    )
    issue.add_argument("--admdvs", help="the city (a known 6-digit region code) for --role city")
    issue.add_argument("--label", required=True, help="who holds it (to revoke by)")
    issue.add_argument(
        "--expires-in",
        type=int,
        metavar="DAYS",
        help="lifetime in days (default auth.token_ttl_days, 90); e.g. 7 for a contractor",
    )
    issue.set_defaults(func=_run, action=_issue)
    tlist = tverbs.add_parser("list", help="list tokens (never the tokens themselves)")
    tlist.add_argument("--json", action="store_true")
    tlist.set_defaults(func=_run, action=_tokens)
    revoke = tverbs.add_parser("revoke", help="revoke a token by its id, or every one of a label")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", help="the token's id, as `dipgw tokens list` shows it")
    which.add_argument("--label", help="revoke every live token with this label")
    revoke.set_defaults(func=_run, action=_revoke)


async def _add(registry: Registry, args: argparse.Namespace) -> int:
    secret = await registry.add_hospital(
        args.code,
        args.name,
        args.admdvs,
        args.level,
        sign_type=args.sign_type,
        cert_subject=args.cert_cn,
    )
    print(f"registered {args.code}; signing secret ({args.sign_type}), shown once:\n{secret}")
    return 0


def _table(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    """Rows as JSON or a table; every moment in them shown in +08:00, its offset written."""
    rows = [{k: _cst(v) if isinstance(v, datetime) else v for k, v in r.items()} for r in rows]
    if as_json:
        print(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return
    columns = list(rows[0]) if rows else ["(none)"]
    print_table(title, columns, [["" if v is None else str(v) for v in r.values()] for r in rows])


async def _list(registry: Registry, args: argparse.Namespace) -> int:
    _table(await registry.list_hospitals(), args.json, "hospitals (times in +08:00)")
    return 0


async def _rotate(registry: Registry, args: argparse.Namespace) -> int:
    secret = await registry.rotate_secret(args.code, grace=timedelta(minutes=args.grace_minutes))
    print(f"rotated {args.code}; new signing secret, shown once:\n{secret}")
    return 0


async def _reseal(registry: Registry, args: argparse.Namespace) -> int:
    moved, retired = await registry.reseal()
    print(f"resealed {moved} hospital(s); retired key(s): {', '.join(retired) or 'none'}")
    return 0


def _new_key(args: argparse.Namespace) -> int:
    key = new_key()
    print(f"new master key (id {key_id(decode_key(key, 'new key'))}), shown once:\n{key}")
    return 0


async def _status(registry: Registry, args: argparse.Namespace) -> int:
    await registry.set_status(args.code, args.status)
    print(f"{args.code}: {args.status}")
    return 0


async def _issue(registry: Registry, args: argparse.Namespace) -> int:
    days = args.token_ttl_days if args.expires_in is None else args.expires_in
    if not 1 <= days <= 3650:
        raise RegistryError("--expires-in: 1 to 3650 days")
    token = await registry.issue_token(args.role, args.label, args.admdvs, ttl=timedelta(days=days))
    listed = {row["id"]: row for row in await registry.list_tokens()}[token_id(token)]
    print(
        f"issued {args.role} token {args.label!r} (id {token_id(token)}, expires "
        f"{_cst(listed['expires_at'])}), shown once:\n{token}"
    )
    return 0


def _cst(moment: datetime | None) -> str | None:
    """A moment as the province reads it, its offset shown (+08:00)."""
    return shown_or_none(moment, "minutes")


async def _tokens(registry: Registry, args: argparse.Namespace) -> int:
    _table(await registry.list_tokens(), args.json, "tokens (times in +08:00)")
    return 0


async def _revoke(registry: Registry, args: argparse.Namespace) -> int:
    if args.id is not None:
        revoked = await registry.revoke_token_id(args.id)
        print(f"revoked token {args.id}" if revoked else f"token {args.id} was already revoked")
    else:
        print(f"revoked {await registry.revoke_token(args.label)} token(s)")
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        settings: Settings = settings_from(args)
    except UsageError as exc:
        return fail(str(exc))
    try:
        sealer = sealer_for(settings.auth, settings.state_path)
    except MasterKeyError as exc:
        return fail(str(exc))

    args.token_ttl_days = settings.auth.token_ttl_days

    async def work(pool: asyncpg.Pool) -> int:
        registry = Registry(pool, sealer, cache_ttl_s=0)
        await registry.check_sealing()  # never seal a secret no gateway host could open
        return int(await args.action(registry, args))

    try:
        return with_pool(settings, work)
    except MasterKeyError as exc:
        return fail(str(exc))
    except RegistryError as exc:
        return fail(str(exc), 1)
