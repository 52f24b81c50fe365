"""Run this repository's own `dipgw` commands (validate, codes, bench) in-process."""

from __future__ import annotations

import argparse
import importlib

MODULES = (
    "gateway.commands.bench",
    "gateway.commands.bench_validate",
    "gateway.commands.codes",
    "gateway.commands.validate",
)


def run(argv: list[str]) -> int:
    """Parse and run like `dipgw`, with only the commands above registered."""
    parser = argparse.ArgumentParser(prog="dipgw")
    sub = parser.add_subparsers(dest="command")
    for name in MODULES:
        importlib.import_module(name).register(sub)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return int(args.func(args))
