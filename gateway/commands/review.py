"""`dipgw review open|list|decide|show`: special review (特病单议) from the operator's terminal.

The same store and rules as the API (`gateway.special_review`), straight on the database: the
operator acts as ops (every city), recorded in the audit as `cli: NAME` (`--by`, default the
login name). A refused request or decision exits 1 with its rule ID; bad usage exits 2.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import json
from datetime import UTC, datetime
from typing import Any

import asyncpg

from gateway.commands._common import UsageError, fail, settings_from, with_pool
from gateway.commands._output import Cell, add_csv_arguments, print_table, write_csv
from gateway.errors import BadQuery
from gateway.params import city as parse_city
from gateway.special_review import (
    DECISIONS,
    STATUSES,
    Actor,
    ReviewRefused,
    decide,
    get_review,
    list_reviews,
    open_review,
)

_COLUMNS = (
    "review_id",
    "case_key",
    "treating_city",
    "clearing_year",
    "status",
    "approved_points",
    "requested_by",
    "requested_at",
    "decided_by",
    "decided_at",
    "reason",
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    review = subparsers.add_parser("review", help="special review (特病单议) of scored cases")
    verbs = review.add_subparsers(dest="verb", metavar="VERB", required=True)

    opening = verbs.add_parser("open", help="open a request for one scored case")
    opening.add_argument("fixmedins_code", metavar="HOSPITAL", help="the case's hospital")
    opening.add_argument("setl_id", metavar="SETL_ID", help="the case's settlement id")
    opening.add_argument("--reason", required=True, help="why the case is to be reviewed")
    _by_and_json(opening)
    opening.set_defaults(func=_open)

    listing = verbs.add_parser("list", help="requests, newest first")
    listing.add_argument("--city", help="one city (6 digits)")
    listing.add_argument("--hospital", help="one hospital (fixmedins_code)")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--year", type=int, help="clearing year")
    listing.add_argument("--limit", type=int, default=200, help="at most this many (200)")
    out = listing.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    add_csv_arguments(listing, out)
    listing.set_defaults(func=_list)

    deciding = verbs.add_parser("decide", help="approve points or reject, with a reason")
    deciding.add_argument("review_id", type=int, metavar="ID")
    choice = deciding.add_mutually_exclusive_group(required=True)
    choice.add_argument("--approve", metavar="POINTS", help="approve this many points (> 0)")
    choice.add_argument("--reject", action="store_true", help="reject the request")
    deciding.add_argument("--reason", required=True, help="the decision's reason")
    _by_and_json(deciding)
    deciding.set_defaults(func=_decide)

    showing = verbs.add_parser("show", help="one request with its case and audit trail")
    showing.add_argument("review_id", type=int, metavar="ID")
    showing.add_argument("--json", action="store_true")
    showing.set_defaults(func=_show)


def _by_and_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", help="who acts, for the audit (default: the login name)")
    parser.add_argument("--json", action="store_true")


def _operator(args: argparse.Namespace) -> Actor:
    name = args.by or getpass.getuser()
    return Actor(role="ops", name=f"cli: {name}")


def _refused(exc: ReviewRefused) -> int:
    problem = exc.problem()
    return fail(f"{problem.rule} ({problem.field}): {problem.message_en}", 1)


def _run(args: argparse.Namespace, work: Any) -> Any:
    """`work(pool)` on the configured database; `ReviewRefused` propagates."""
    return with_pool(settings_from(args), work)


def _print_one(review: dict[str, Any]) -> None:
    rows: list[list[Cell]] = [
        [key, "" if review.get(key) is None else str(review[key])]
        for key in (*_COLUMNS, "request_reason")
    ]
    print_table(f"特病单议 special review {review['review_id']}", ["field", "value"], rows)


def _dump(doc: Any) -> None:
    print(json.dumps(doc, ensure_ascii=False, indent=2))


def _open(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> dict[str, Any]:
        return await open_review(
            pool,
            _operator(args),
            args.fixmedins_code,
            args.setl_id,
            args.reason,
            now=datetime.now(UTC),
        )

    try:
        opened = _run(args, work)
    except UsageError as exc:
        return fail(str(exc))
    except ReviewRefused as exc:
        return _refused(exc)
    if args.json:
        _dump(opened)
    else:
        _print_one(opened)
    return 0


def _decide(args: argparse.Namespace) -> int:
    decision = DECISIONS[1] if args.reject else DECISIONS[0]

    async def work(pool: asyncpg.Pool) -> dict[str, Any]:
        return await decide(
            pool,
            _operator(args),
            args.review_id,
            decision,
            args.reason,
            points=args.approve,
            now=datetime.now(UTC),
        )

    try:
        decided = _run(args, work)
    except UsageError as exc:
        return fail(str(exc))
    except ReviewRefused as exc:
        return _refused(exc)
    if args.json:
        _dump(decided)
    else:
        _print_one(decided)
    return 0


def _show(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> dict[str, Any]:
        return await get_review(pool, Actor(role="ops", name="cli"), args.review_id)

    try:
        review = _run(args, work)
    except UsageError as exc:
        return fail(str(exc))
    except ReviewRefused as exc:
        return _refused(exc)
    if args.json:
        _dump(review)
        return 0
    _print_one(review)
    case = review["case"]
    print(
        f"case: group {case['group_code']}, deviation {case['deviation']}, "
        f"score {case['case_score']}, flagged for review: {case['flagged_for_review']}"
    )
    audit: list[list[Cell]] = [
        [a["at"], a["action"], a["actor"], _status(a["before"]), _status(a["after"])]
        for a in review["audit"]
    ]
    print_table("audit", ["at", "action", "actor", "before", "after"], audit)
    return 0


def _status(row: dict[str, Any] | None) -> str:
    return "" if row is None else str(row["status"])


def _list(args: argparse.Namespace) -> int:
    try:
        city = parse_city(args.city, "--city")
        if not 1 <= args.limit <= 10_000:
            raise BadQuery("--limit must be 1..10000")
        if args.year is not None and not 2000 <= args.year <= 2100:
            raise BadQuery("--year must be 2000..2100")
    except BadQuery as exc:
        return fail(str(exc))

    async def work(pool: asyncpg.Pool) -> dict[str, Any]:
        return await list_reviews(
            pool,
            city=city,
            hospital=args.hospital,
            status=args.status,
            year=args.year,
            limit=args.limit,
        )

    try:
        found = _run(args, work)
    except UsageError as exc:
        return fail(str(exc))
    reviews = found["reviews"]
    if args.json:
        _dump(found)
    elif args.csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_COLUMNS)
        for r in reviews:
            writer.writerow(["" if r[c] is None else r[c] for c in _COLUMNS])
        write_csv(out.getvalue(), bom=not args.no_bom)
    else:
        columns = [c for c in _COLUMNS if c != "reason"]
        rows: list[list[Cell]] = [
            ["" if r[c] is None else str(r[c]) for c in columns] for r in reviews
        ]
        caption = None if reviews else "no special reviews"
        print_table(
            f"特病单议 special reviews ({len(reviews)} of {found['total']})",
            columns,
            rows,
            right={"review_id", "approved_points"},
            caption=caption,
        )
    return 0
