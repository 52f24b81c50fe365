"""`dipgw validate FILE…`: the quality report of settlement-list files, offline.

Every feed format the gateway accepts (adapters.FORMATS), by extension (`--format` to
force). Exit 0 when every record is accepted, 1 when any is rejected (or could not be
decoded), 2 on bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from adapters.runtime.errors import DipgwError

__all__ = ["FileUnreadable", "build_report", "register", "validate_file"]


def _formats() -> tuple[str, ...]:
    """`auto` and every registered feed format (adapters.FORMATS)."""
    from adapters import FORMATS

    return ("auto", *FORMATS.names())


def _format_lines() -> str:
    from adapters import FORMATS

    return "\n".join(f"  {f.name:<8} {', '.join(f.extensions):<16} {f.title}" for f in FORMATS)


class FileUnreadable(DipgwError):
    """The input file cannot be read at all (missing, not a workbook, …)."""


class RecordReport(msgspec.Struct, kw_only=True):
    file: str
    position: str
    case_key: str | None
    accepted: bool
    errors: list[Any]


def _case_key(envelope: Any) -> str | None:
    if envelope is None:
        return None
    setl_id = envelope.input.setlinfo.setl_id
    return f"{envelope.fixmedins_code or '?'}:{setl_id or '?'}"


def validate_file(
    path: str, fmt: str, validator: Any, received_at: datetime, mapping: dict[str, str] | None
) -> Iterator[RecordReport]:
    """Every record of one file, validated. Raises FileUnreadable."""
    from adapters import FORMATS

    p = Path(path)
    feed = FORMATS.by_extension(p.suffix) if fmt == "auto" else FORMATS.get(fmt)
    if feed is None:
        raise FileUnreadable(f"{path}: unknown file type (use --format)")
    try:
        records = list(feed.read(p.read_bytes(), validator, mapping))
    except Exception as exc:  # an unreadable file, whatever the library says
        raise FileUnreadable(f"{path}: {type(exc).__name__}: {exc}") from exc
    for record in records:
        errors = list(record.errors)
        if record.envelope is not None:
            errors = validator.validate_decoded(record.envelope, errors, received_at=received_at)
        accepted = record.envelope is not None and not any(e.severity == "reject" for e in errors)
        yield RecordReport(
            file=path,
            position=record.position,
            case_key=_case_key(record.envelope),
            accepted=accepted,
            errors=errors,
        )


def build_report(records: list[RecordReport]) -> dict[str, Any]:
    """The --json document: per record `accepted` and `errors`, plus the summary."""
    by_rule: Counter[str] = Counter()
    by_dimension: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    for r in records:
        for e in r.errors:
            by_rule[e.rule] += 1
            by_dimension[e.dimension] += 1
            by_severity[e.severity] += 1
    accepted = sum(1 for r in records if r.accepted)
    return {
        "records": msgspec.to_builtins(records),
        "summary": {
            "records": len(records),
            "accepted": accepted,
            "rejected": len(records) - accepted,
            "by_rule": dict(sorted(by_rule.items())),
            "by_dimension": dict(sorted(by_dimension.items())),
            "by_severity": dict(sorted(by_severity.items())),
        },
    }


def _print_tables(records: list[RecordReport], report: dict[str, Any]) -> None:
    from rich.text import Text

    from gateway.commands._output import Cell, print_table

    several = len({r.file for r in records}) > 1
    rows: list[list[Cell]] = []
    for r in records:
        result = Text("accepted", style="green") if r.accepted else Text("rejected", style="red")
        where = f"{Path(r.file).name} {r.position}" if several else r.position
        head: list[Cell] = [where, r.case_key or "-", result]
        if not r.errors:
            rows.append([*head, "", "", "", "", ""])
        for i, e in enumerate(r.errors):
            colour = "red" if e.severity == "reject" else "yellow"
            rows.append(
                [
                    *(head if i == 0 else ["", "", ""]),
                    e.rule,
                    e.field,
                    Text(e.severity, style=colour),
                    e.dimension,
                    e.message,
                ]
            )
    columns = ("record", "case", "result", "rule", "field", "severity", "dimension", "message")
    print_table("records", columns, rows)
    summary = report["summary"]
    if summary["by_rule"]:
        by_rule = [[rule, str(n)] for rule, n in summary["by_rule"].items()]
        print_table("by rule", ("rule", "count"), by_rule, right={"count"})
        by_dim = [[dim, str(n)] for dim, n in summary["by_dimension"].items()]
        print_table("by dimension", ("dimension", "count"), by_dim, right={"count"})
    print(
        f"{summary['records']} records: {summary['accepted']} accepted, "
        f"{summary['rejected']} rejected"
    )


def _load_mapping(path: str | None) -> dict[str, str] | None:
    if path is None:
        return None
    text = Path(path).read_text(encoding="utf-8")
    data = tomllib.loads(text) if path.endswith(".toml") else json.loads(text)
    mapping = data.get("columns", data) if isinstance(data, dict) else None
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise ValueError("a mapping is an object header -> document path")
    return {str(k): v for k, v in mapping.items()}


def _run(args: argparse.Namespace) -> int:
    from adapters import load_code_store
    from contracts import RuleConfig, Validator

    try:
        config = RuleConfig()
        if args.rules:
            config = RuleConfig.from_toml(Path(args.rules).read_text(encoding="utf-8"))
        mapping = _load_mapping(args.mapping)
        codes = load_code_store(args.codes_dir or os.environ.get("DIPGW_CODES_DIR"))
        received_at = (
            datetime.fromisoformat(args.received_at) if args.received_at else datetime.now(UTC)
        )
    except (OSError, ValueError, msgspec.ValidationError, tomllib.TOMLDecodeError) as exc:
        print(f"dipgw validate: {exc}", file=sys.stderr)
        return 2
    validator = Validator(config, codes)
    records: list[RecordReport] = []
    unreadable = False
    for path in args.files:
        try:
            records.extend(validate_file(path, args.format, validator, received_at, mapping))
        except FileUnreadable as exc:
            print(f"dipgw validate: unreadable input: {exc}", file=sys.stderr)
            unreadable = True
    report = build_report(records)
    if args.json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
    else:
        _print_tables(records, report)
    if unreadable:
        return 2
    return 1 if report["summary"]["rejected"] else 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="quality report of settlement-list files",
        description=f"{__doc__}\nformats:\n{_format_lines()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--format", choices=_formats(), default="auto")
    parser.add_argument("--mapping", metavar="FILE", help="CSV/XLSX column mapping (JSON/TOML)")
    parser.add_argument("--rules", metavar="FILE", help="RuleConfig overrides (TOML)")
    parser.add_argument(
        "--codes-dir", metavar="DIR", help="imported code tables (default $DIPGW_CODES_DIR)"
    )
    parser.add_argument(
        "--received-at",
        metavar="ISO",
        help="reception time for the timeliness rules, ISO 8601 (no offset: +08:00; default now)",
    )
    parser.set_defaults(func=_run)
