"""`dipgw schemas write|check [--root DIR]`: the topics' JSON Schema snapshots and the AsyncAPI
document, regenerated from the message types.

`write` writes each topic's schema of the version in force to
contracts/data/schemas/<topic>.v<version>.json and the AsyncAPI document to docs/asyncapi.json.
It refuses to overwrite a snapshot with a change that breaks its consumers (name the next
version in `contracts.schemas.SCHEMA_VERSIONS` instead); `--rewrite` overwrites anyway, for a
version not yet released. `check` writes nothing and says what `write` would change. Exit 0
ok, 1 a breaking change (or, for `check`, a file out of date), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from contracts.messages import TOPIC_TYPES
from contracts.schemas import breaking_changes, schema_json, snapshot_name, topic_schema
from gateway import asyncapi
from gateway.commands._common import fail

SOURCE_ROOT = Path(__file__).resolve().parents[2]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "schemas", help="the topics' JSON Schema snapshots and docs/asyncapi.json"
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, text in (("write", "regenerate them"), ("check", "say what is out of date")):
        sub = verbs.add_parser(verb, help=text)
        sub.add_argument(
            "--root", type=Path, default=SOURCE_ROOT, help="the source tree (default: this one)"
        )
        if verb == "write":
            sub.add_argument(
                "--rewrite",
                action="store_true",
                help="overwrite a snapshot even with a breaking change (an unreleased version)",
            )
        sub.set_defaults(func=_run)


def planned(root: Path) -> dict[Path, str]:
    """Every generated file under `root` with its text."""
    files = {
        root / "contracts" / "data" / "schemas" / snapshot_name(topic): schema_json(
            topic_schema(topic)
        )
        for topic in TOPIC_TYPES
    }
    files[root / "docs" / "asyncapi.json"] = asyncapi.document_text()
    return files


def _run(args: argparse.Namespace) -> int:
    root: Path = args.root
    if not (root / "contracts" / "data").is_dir() or not (root / "docs").is_dir():
        return fail(f"--root {root}: not a dipgw source tree (no contracts/data or docs)")
    breaking = 0
    stale: list[Path] = []
    files = planned(root)
    for path, text in files.items():
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        if current is not None and path.parent.name == "schemas":
            breaks = breaking_changes(json.loads(current), json.loads(text))
            if breaks:
                breaking += 1
                print(f"{path.relative_to(root)}: breaking changes:")
                for item in breaks:
                    print(f"  {item}")
                if not getattr(args, "rewrite", False):
                    continue
        stale.append(path)
    if args.verb == "check":
        for path in stale:
            print(f"{path.relative_to(root)}: out of date")
        return 1 if stale or breaking else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path], encoding="utf-8")
        print(f"wrote {path.relative_to(root)}")
    if breaking and not args.rewrite:
        return fail(
            "a snapshot was left as it is: a breaking change needs the next version in "
            "contracts.schemas.SCHEMA_VERSIONS (or --rewrite for an unreleased version)",
            1,
        )
    return 0
