"""The `dipgw` command: `dipgw <noun> <verb>`.

Each command lives in its own module under `gateway.commands`; a module exposes
`register(subparsers)` and sets `func(args) -> int` on the parsers it adds. Exit codes follow
the architecture: 0 ok, 1 the command ran and found rejections/failures, 2 bad usage or
unreadable input.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence

from adapters.runtime.settings import SettingsError
from gateway.sealing import MasterKeyError

# One line per command module; keep sorted.
_COMMAND_MODULES: tuple[str, ...] = (
    "gateway.commands.bench",
    "gateway.commands.bench_feeds",
    "gateway.commands.bench_ingest",
    "gateway.commands.bench_pipeline",
    "gateway.commands.bench_simulate",
    "gateway.commands.bench_validate",
    "gateway.commands.catalog",
    "gateway.commands.codes",
    "gateway.commands.db",
    "gateway.commands.demo",
    "gateway.commands.drill",
    "gateway.commands.feeds",
    "gateway.commands.group",
    "gateway.commands.hospitals",
    "gateway.commands.kafka",
    "gateway.commands.quality",
    "gateway.commands.rescore",
    "gateway.commands.review",
    "gateway.commands.rules",
    "gateway.commands.schemas",
    "gateway.commands.score",
    "gateway.commands.settle",
    "gateway.commands.topics",
    "gateway.commands.up",
    "gateway.commands.validate",
)


def version_text() -> str:
    """`dipgw --version`: the installed package and the settlement contract it speaks (what
    an integrator or a bureau needs to match their side against)."""
    from contracts.messages import CONTRACT_VERSION

    try:
        package = importlib.metadata.version("dipgw")
    except importlib.metadata.PackageNotFoundError:  # run from a tree that is not installed
        package = "unknown (not installed)"
    return f"dipgw {package} (contract {CONTRACT_VERSION})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dipgw",
        description="Provincial DIP data-exchange gateway (按病种分值付费).",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="TOML settings file (default: $DIPGW_CONFIG or none)"
    )
    parser.add_argument("--version", action="version", version=version_text())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args))
    except (SettingsError, MasterKeyError) as exc:
        # The start-up report, whichever command met the bad setting first: the setting's
        # name and what to do, exit 2, no traceback (commands report them themselves too).
        print(f"dipgw: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
