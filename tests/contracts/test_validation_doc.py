"""docs/validation.md, the integrators' guide to checking lists, says what the code does: every
rule with its dimension and default severity, and the messages it quotes."""

from __future__ import annotations

from pathlib import Path

from contracts import rulebook
from tests.builders import check, golden, mutate

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "validation.md"


def test_the_guide_lists_every_rule_with_its_dimension_and_default() -> None:
    text = GUIDE.read_text("utf-8")
    missing = [
        rule
        for rule, meta in rulebook().items()
        if f"| `{rule}` | {meta.dimension} | {meta.severity} |" not in text
    ]
    assert missing == []


def test_the_guide_quotes_the_dictionary_message_the_validator_gives() -> None:
    (error,) = check(mutate(golden(), input__setlinfo__gend="7"))
    text = GUIDE.read_text("utf-8")
    assert f'"message": "{error.message}"' in text
    assert f'"message_en": "{error.message_en}"' in text


def test_the_guide_quotes_the_follow_on_the_validator_gives() -> None:
    """The guide's follow-on example is the issue's case (tests/contracts/test_followon.py)."""
    from tests.contracts.test_followon import RECEIVED, _issue_case

    errors = check(_issue_case(), received_at=RECEIVED)
    (example,) = [e for e in errors if e.field == "oprninfo[3].oprn_oprt_begntime"]
    text = GUIDE.read_text("utf-8")
    for key in ("message", "message_en", "caused_by"):
        assert f'"{key}": "{getattr(example, key)}"' in text, key
