"""`dipgw bench <verb>`: benchmarks. Each verb lives in its own module and plugs in here.

A verb module calls `add_verb(name, setup)` from its own `register(subparsers)` (it is listed
in gateway.cli's `_COMMAND_MODULES` like any command); `setup(verbs)` adds its sub-parser to
the `bench` noun. Registration order does not matter: verbs seen before the noun exists are
added when it is built.

What the benches measure and how is in the `gateway.bench` package; the verb modules parse
arguments, print and choose the exit code.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["add_verb", "register"]

Setup = Callable[[Any], None]

_SETUPS: dict[str, Setup] = {}
_state: dict[str, Any] = {"verbs": None, "added": set()}


def add_verb(name: str, setup: Setup) -> None:
    """Register `dipgw bench <name>`; `setup(verbs)` calls `verbs.add_parser(name, ...)`."""
    _SETUPS[name] = setup
    verbs = _state["verbs"]
    if verbs is not None and name not in _state["added"]:
        setup(verbs)
        _state["added"].add(name)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="benchmarks (validate, …)", description="Benchmarks of dipgw's stages."
    )
    verbs = parser.add_subparsers(dest="bench_verb", metavar="VERB")

    def usage(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=usage)
    _state["verbs"] = verbs
    _state["added"] = set()
    for name, setup in _SETUPS.items():
        setup(verbs)
        _state["added"].add(name)
