"""The gateway's one catalogue of its own error IDs (`gateway.refusals`)."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

from contracts import rulebook
from gateway import refusals

ROOT = Path(__file__).resolve().parents[2]
_ID = re.compile(
    r"^(AUTH|SYS|FORBIDDEN|HTTP|BATCH|BAD|NOT|RATE|REQ|DEC|FMT|ENV|FILE|SHEET|JSON|FEED|REVIEW)_?[A-Z0-9_]+$"
)


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_entry_fills_its_templates() -> None:
    for entry in refusals.CATALOGUE:
        names = _placeholders(entry.message) | _placeholders(entry.message_en)
        problem = entry.problem(**{name: f"<{name}>" for name in names})
        assert problem.rule == entry.rule
        assert "{" not in problem.message_en.replace("{[", "").replace('{"', ""), entry.rule


def test_no_id_is_written_outside_the_catalogue() -> None:
    """An ID spelled as a string anywhere else in the gateway is a second, unchecked home."""
    found = []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        if path.name == "refusals.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _ID.match(node.value)
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Problem":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} Problem(...)")
    assert found == []


def test_ids_shared_with_the_contract_mean_the_same_rule() -> None:
    book = rulebook()
    for entry in refusals.CATALOGUE:
        if entry.rule in book:
            assert entry.dimension == book[entry.rule].dimension, entry.rule
            assert entry.severity == book[entry.rule].severity, entry.rule


def test_ids_are_unique_except_the_two_kinds_of_415() -> None:
    rules = [entry.rule for entry in refusals.CATALOGUE]
    assert sorted({r for r in rules if rules.count(r) > 1}) == ["HTTP415"]


def test_protocol_refusals_name_their_status() -> None:
    assert refusals.for_http_status(405) is refusals.HTTP405
    assert refusals.for_http_status(400) is refusals.HTTP400
    other = refusals.for_http_status(409)
    assert (other.rule, other.status) == ("HTTP409", 409)
    assert other.problem(reason="Conflict").message_en == "Conflict"


def test_the_integrators_guide_shows_the_catalogue() -> None:
    doc = (ROOT / "docs" / "upload-format.md").read_text(encoding="utf-8")
    shown = doc.split("<!-- refusals:begin -->\n", 1)[1].split("<!-- refusals:end -->", 1)[0]
    assert shown == refusals.markdown_table()
