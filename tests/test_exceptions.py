"""One exception base per layer: every exception class the project defines derives from its
layer's base (contracts `ContractError`, the DIP core `DipError`, the shared runtime, the
workers and the gateway `DipgwError`), alongside the builtin it already was, so that
`except ValueError` callers keep working.

Walks every module of the four packages, like tests/test_layers.py, and imports it to read
the real inheritance.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from adapters.runtime.errors import DipgwError
from contracts import ContractError
from workers.dip import DipError

PACKAGES = ("contracts", "adapters", "workers", "gateway")

# Most specific first. The pure feed formats (adapters) stand on contracts alone.
BASES: list[tuple[str, type[Exception]]] = [
    ("contracts", ContractError),
    ("adapters.runtime", DipgwError),
    ("adapters.feeds", DipgwError),  # the feed sources: I/O, on the shared runtime
    ("adapters", ContractError),
    ("workers.dip", DipError),
    ("workers", DipgwError),
    ("gateway", DipgwError),
]
# Defined in modules being edited elsewhere; give them their base when those are free.


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _base_of(module: str) -> type[Exception]:
    return next(base for layer, base in BASES if _within(module, layer))


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in PACKAGES:
        root = importlib.import_module(package)
        names = [package] + [m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.")]
        for name in names:
            module = importlib.import_module(name)
            for value in vars(module).values():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseException)
                    and value.__module__ == name
                ):
                    found[f"{name}.{value.__qualname__}"] = value
    return found


def test_every_exception_derives_from_its_layers_base() -> None:
    classes = _exception_classes()
    bases = {base for _, base in BASES}
    wrong = sorted(
        name
        for name, cls in classes.items()
        if cls not in bases and not issubclass(cls, _base_of(cls.__module__))
    )
    assert wrong == []
