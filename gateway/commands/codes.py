"""`dipgw codes import|list|lookup`: the national code tables (ICD-10 / ICD-9-CM-3 医保版).

`import` reads an NHSA spreadsheet or CSV, keeps code, name (and the operation class), and
stores it as a new effective-dated version in the code store (`--store`, default
$DIPGW_CODES_DIR or .dipgw/codes): a normalised CSV plus a line in the store's
manifest.toml. Validators load the bundled 2.0 tables plus every stored version and check each
record against the version in force on its discharge date.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

__all__ = ["default_store", "import_table", "register"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_store() -> Path:
    return Path(os.environ.get("DIPGW_CODES_DIR") or ".dipgw/codes")


def import_table(
    source: str, kind: str, version: str, effective: date, store: Path, note: str = ""
) -> int:
    """Import one NHSA file into the store; returns the number of codes. Raises on error."""
    from adapters import MANIFEST_NAME, read_table_rows
    from contracts import DiagnosisCode, import_nhsa_rows

    entries = list(import_nhsa_rows(kind, read_table_rows(source)))  # type: ignore[arg-type]
    if not entries:
        raise ValueError("no codes found")
    store.mkdir(parents=True, exist_ok=True)
    name = f"{kind}-{_SAFE.sub('_', version)}.csv"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if kind == "diagnosis":
        writer.writerow(["code", "name"])
        writer.writerows((e.code, e.name) for e in entries if isinstance(e, DiagnosisCode))
    else:
        writer.writerow(["code", "name", "class"])
        writer.writerows((e.code, e.name, getattr(e, "oprn_class", "")) for e in entries)
    (store / name).write_text(out.getvalue(), encoding="utf-8")
    manifest = store / MANIFEST_NAME
    block = (
        "\n[[table]]\n"
        f"kind = {json.dumps(kind)}\n"
        f"version = {json.dumps(version, ensure_ascii=False)}\n"
        f'effective = "{effective.isoformat()}"\n'
        f"file = {json.dumps(name)}\n"
        f"source = {json.dumps(note or Path(source).name, ensure_ascii=False)}\n"
    )
    with manifest.open("a", encoding="utf-8") as fh:
        fh.write(block)
    return len(entries)


def _import(args: argparse.Namespace) -> int:
    from contracts import CodeImportError

    try:
        effective = date.fromisoformat(args.effective)
    except ValueError:
        print("dipgw codes import: --effective must be yyyy-MM-dd", file=sys.stderr)
        return 2
    store = Path(args.store) if args.store else default_store()
    try:
        count = import_table(args.file, args.kind, args.version, effective, store, args.source)
    except (OSError, CodeImportError, ValueError) as exc:
        print(f"dipgw codes import: unreadable input: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a broken workbook surfaces as many library errors
        print(f"dipgw codes import: unreadable input: {type(exc).__name__}", file=sys.stderr)
        return 2
    print(f"imported {count} {args.kind} codes as {args.version} from {effective} into {store}")
    return 0


def _tables(args: argparse.Namespace) -> Any:
    from adapters import load_code_store

    return load_code_store(Path(args.store) if args.store else default_store())


def _list(args: argparse.Namespace) -> int:
    try:
        tables = _tables(args)
    except Exception as exc:
        print(f"dipgw codes list: unreadable code store: {exc}", file=sys.stderr)
        return 2
    rows = [
        {"kind": k, "version": v, "effective": e.isoformat(), "codes": n}
        for k, v, e, n in tables.versions()
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        for r in rows:
            print(f"{r['kind']:<10} {r['version']:<32} from {r['effective']}  {r['codes']} codes")
    return 0


def _lookup(args: argparse.Namespace) -> int:
    try:
        tables = _tables(args)
        on = date.fromisoformat(args.on) if args.on else None
    except Exception as exc:
        print(f"dipgw codes lookup: {exc}", file=sys.stderr)
        return 2
    hit = tables.diagnosis(args.code, on) if args.kind == "diagnosis" else None
    if args.kind == "operation":
        hit = tables.operation(args.code, on)
    if hit is None:
        print(f"{args.code}: not in the {args.kind} table in force", file=sys.stderr)
        return 1
    import msgspec

    print(json.dumps(msgspec.to_builtins(hit), ensure_ascii=False))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "codes",
        help="national code tables (import, list, lookup)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="codes_verb", metavar="VERB")

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=usage)
    imp = verbs.add_parser("import", help="import an NHSA spreadsheet/CSV as a new version")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--kind", choices=("diagnosis", "operation"), required=True)
    imp.add_argument("--version", required=True, help="version label, e.g. ICD-10-YB-2.0")
    imp.add_argument("--effective", required=True, help="first discharge date it applies to")
    imp.add_argument("--source", default="", help="free-text provenance (default: file name)")
    imp.add_argument("--store", metavar="DIR", help="code store (default $DIPGW_CODES_DIR)")
    imp.set_defaults(func=_import)
    lst = verbs.add_parser("list", help="loaded table versions (bundled + store)")
    lst.add_argument("--store", metavar="DIR")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_list)
    look = verbs.add_parser("lookup", help="look a code up in the version in force")
    look.add_argument("code")
    look.add_argument("--kind", choices=("diagnosis", "operation"), default="diagnosis")
    look.add_argument("--on", metavar="DATE", help="discharge date (default: latest version)")
    look.add_argument("--store", metavar="DIR")
    look.set_defaults(func=_lookup)
