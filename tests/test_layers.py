"""Imports run one way (docs/architecture.md): contracts at the bottom; the feed formats, the
DIP core and the shared runtime on contracts alone; workers on those; the gateway on top, and
only its composition root (the process starter and the CLI) may import workers.

Read from the source with `ast`, so a new backward import fails here, whatever imports it
lazily inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ("contracts", "adapters", "workers", "gateway")

# What each layer may import of the project, most specific first. A layer may import itself,
# but not a layer nested in it unless listed (the pure feed formats never import the runtime).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("contracts", ()),
    ("adapters.runtime", ("contracts",)),
    # feed sources: async I/O against a hospital's database, folder or SFTP account
    ("adapters.feeds", ("contracts", "adapters", "adapters.runtime")),
    ("adapters", ("contracts",)),  # the feed formats: pure
    ("workers.dip", ("contracts",)),
    ("workers", ("contracts", "adapters", "workers.dip")),
    ("gateway", ("contracts", "adapters")),
]
# The gateway's composition root: it starts processes and runs commands, so it wires workers in.
COMPOSITION_ROOT = (
    "gateway.runtime",
    "gateway.cli",
    "gateway.commands",
    "gateway.drill",
    "gateway.demo_feed",  # the generated feed of the demo, the benchmarks and the drill
    "gateway.bench",  # the benchmarks: the pipeline bench runs the workers' stages
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _allowed(module: str, imported: str) -> bool:
    if module.startswith(COMPOSITION_ROOT) and _within(imported, "workers"):
        return True
    for layer, may_import in LAYERS:
        if _within(module, layer):
            nested = [inner for inner, _ in LAYERS if inner != layer and _within(inner, layer)]
            itself = _within(imported, layer) and not any(_within(imported, n) for n in nested)
            return itself or any(_within(imported, m) for m in may_import)
    raise AssertionError(f"{module} is in no layer")


def _violations() -> list[str]:
    bad = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = _module_name(path)
            for imported in sorted(_imports(path, module)):
                if not _allowed(module, imported):
                    bad.append(f"{module} imports {imported}")
    return bad


def test_imports_run_one_way() -> None:
    assert _violations() == []


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("contracts._model", "adapters"),
        ("workers.dip._scoring", "workers.grouping"),
        ("workers.grouping", "gateway.ingest"),
        ("adapters.runtime.settings", "workers"),
        ("gateway.ops", "workers.quality"),
        ("adapters._flat", "adapters.runtime.logs"),
    ],
)
def test_a_backward_import_is_refused(module: str, imported: str) -> None:
    assert not _allowed(module, imported)


def test_the_composition_root_may_wire_workers_in() -> None:
    assert _allowed("gateway.runtime", "workers.registry")
    assert _allowed("gateway.commands.rescore", "workers.rescore")
