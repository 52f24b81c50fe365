"""`dipgw score --rules FILE… CASES… [--json]`: group and score case files offline.

Prints per case the group, the deviation kind, the case score and the estimated payment (case
score × the treating city's point value for the case's insurance type). Exit 0 when every case
was scored, 1 when some could not be, 2 on bad usage or unreadable rules/case files.
"""

from __future__ import annotations

import argparse

from rich.text import Text

from gateway.commands._common import fail
from gateway.commands._output import Cell, print_table
from gateway.commands.group import InputError, add_common_arguments, emit_json, execute


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("score", help="group and score case files with DIP rules")
    add_common_arguments(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        rulesets, outcomes = execute(args, with_score=True)
    except InputError as e:
        return fail(str(e))
    if args.json:
        emit_json("score", rulesets, outcomes)
    else:
        rows: list[list[Cell]] = []
        for o in outcomes:
            s = o.scored
            if s is None:
                note = o.error["message_en"] if o.error else ""
                g = o.grouped.group_code if o.grouped else ""
                rows.append([o.case_key, g, Text(note, style="red"), "", "", "", "", ""])
                continue
            rows.append(
                [
                    o.case_key,
                    s.group_code or s.status,
                    s.deviation,
                    "" if s.ratio is None else f"{s.ratio:.3f}",
                    f"{s.case_score:.4f}".rstrip("0").rstrip("."),
                    "" if s.estimated_payment is None else f"{s.estimated_payment:,.2f}",
                    "yes" if s.special_review else "",
                    o.route_scope or "",
                ]
            )
        columns = ("case", "group", "deviation", "ratio", "score", "payment", "review", "route")
        print_table("DIP scoring", columns, rows, right={"ratio", "score", "payment"})
    return 1 if any(o.error is not None for o in outcomes) else 0
