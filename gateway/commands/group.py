"""`dipgw group --rules FILE… CASES… [--json]`: group case files offline with the pure DIP core.

Each case is assessed exactly as the pipeline does (`workers.dip.assess`): under the rules of its
TREATING city for its clearing year (several ``--rules`` may be given, one per city/year; no
rules for the year: not grouped, `DIP_NO_RULES`), routed in ``--province``. Exit 0 when every
case was grouped, 1 when some could not be, 2 on bad usage or unreadable rules/case files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import msgspec

from adapters.runtime.errors import DipgwError
from adapters.runtime.settings import SettingsError, load_settings
from gateway.commands._common import fail
from gateway.commands._output import print_table
from workers.dip import CaseFacts, RuleSet, RuleSetError, load_rules
from workers.dip._offline import CaseFileError, Outcome, RulesBook, load_case_file, outcome_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("group", help="group case files with a city's DIP rules")
    add_common_arguments(parser)
    parser.set_defaults(func=_run)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rules",
        metavar="FILE",
        action="append",
        required=True,
        help="rules: TOML policy naming its catalog, or a rule-set JSON; repeat for more cities",
    )
    parser.add_argument("cases", metavar="CASES", nargs="+", help="case files (.json, .ndjson)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument(
        "--province",
        metavar="CODE",
        help="province the cases are routed in, xx0000 (default: the configured worker.province)",
    )


def load_inputs(args: argparse.Namespace) -> tuple[list[RuleSet], list[CaseFacts]]:
    """Rules and cases, or `InputError` (exit 2) naming the file at fault."""
    rulesets: list[RuleSet] = []
    for path in args.rules:
        try:
            rulesets.append(load_rules(path))
        except (OSError, RuleSetError) as e:
            raise InputError(f"rules {path}: {e}") from None
    cases: list[CaseFacts] = []
    for path in args.cases:
        try:
            cases.extend(load_case_file(path))
        except CaseFileError as e:
            raise InputError(str(e)) from None
    return rulesets, cases


class InputError(DipgwError):
    pass


def execute(args: argparse.Namespace, with_score: bool) -> tuple[list[RuleSet], list[Outcome]]:
    """Assess every case as the pipeline does (`workers.dip.assess`)."""
    from workers.dip._offline import run_cases

    rulesets, cases = load_inputs(args)
    province = args.province
    if province is None:  # the configured one (no logging set up: the output is the report)
        try:
            province = load_settings(getattr(args, "config", None)).worker.province
        except SettingsError as e:
            raise InputError(str(e)) from None
    return rulesets, run_cases(cases, RulesBook(rulesets), with_score, province=province)


def emit_json(command: str, rulesets: Sequence[RuleSet], outcomes: Sequence[Outcome]) -> None:
    doc: dict[str, Any] = {
        "command": command,
        "rules": [rs.version_id for rs in rulesets],
        "cases": len(outcomes),
        "failed": sum(o.error is not None for o in outcomes),
        "results": [outcome_json(o) for o in outcomes],
        "errors": [o.error for o in outcomes if o.error is not None],
    }
    sys.stdout.buffer.write(msgspec.json.encode(doc) + b"\n")
    sys.stdout.flush()


def _run(args: argparse.Namespace) -> int:
    try:
        rulesets, outcomes = execute(args, with_score=False)
    except InputError as e:
        return fail(str(e))
    if args.json:
        emit_json("group", rulesets, outcomes)
    else:
        rows: list[list[str]] = []
        for o in outcomes:
            g = o.grouped
            if g is None:
                rows.append([o.case_key, "-", "", "", "", "", _note(o)])
                continue
            rows.append(
                [
                    o.case_key,
                    g.status,
                    g.group_code,
                    f"{g.group_score:g}" if g.group_code else "",
                    g.treatment,
                    o.route_scope or "",
                    _note(o) or g.reason,
                ]
            )
        columns = ("case", "status", "group", "score", "treatment", "route", "note")
        print_table("DIP grouping", columns, rows, right={"score"})
    return 1 if any(o.error is not None for o in outcomes) else 0


def _note(o: Outcome) -> str:
    return o.error["message_en"] if o.error else ""
