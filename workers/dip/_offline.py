"""The logic behind ``dipgw group`` / ``dipgw score``: read case files and assess each case
exactly as the pipeline does (`_assess.assess`: the treating city's rules for its clearing year,
group, score, route; the reasons of `_reasons`). Rendering stays in the command modules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from contracts import CST
from contracts.dip import CaseFacts, GroupResult, ScoreResult

from ._assess import Assessment, RulesBook, RulesFor, assess
from ._errors import DipError
from ._facts import decode_cases_json, decode_cases_ndjson

__all__ = ["CaseFileError", "Outcome", "RulesBook", "load_case_file", "outcome_json", "run_cases"]


class CaseFileError(DipError, ValueError):
    """A case file cannot be read or decoded (exit code 2 territory)."""


def load_case_file(path: str | Path) -> list[CaseFacts]:
    """Cases from ``.json`` (one object or a list) or ``.ndjson``/``.jsonl`` (one per line)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise CaseFileError(f"{p}: {e.strerror or e}") from None
    try:
        if p.suffix.lower() in (".ndjson", ".jsonl"):
            return decode_cases_ndjson(data)
        try:
            return decode_cases_json(data)
        except msgspec.DecodeError:
            if p.suffix.lower() == ".json":
                raise
            return decode_cases_ndjson(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise CaseFileError(f"{p}: {e}") from None


class Outcome(msgspec.Struct, kw_only=True):
    case_key: str
    grouped: GroupResult | None = None
    scored: ScoreResult | None = None
    route_scope: str | None = None
    error: dict[str, str] | None = None
    """The reason the case is not scored (grouping only: not grouped), in the project's error
    shape plus the case it concerns; the IDs are the pipeline's (`_reasons`)."""


def outcome_of(a: Assessment) -> Outcome:
    error = None
    if a.reason is not None:
        error = {**msgspec.structs.asdict(a.reason), "case_key": a.case_key}
    return Outcome(
        case_key=a.case_key,
        grouped=a.grouping,
        scored=a.score,
        route_scope=None if a.route is None else a.route.scope,
        error=error,
    )


def run_cases(
    cases: Sequence[CaseFacts],
    book: RulesFor,
    with_score: bool,
    *,
    province: str,
    received_at: datetime | None = None,
) -> list[Outcome]:
    """Assess every case (`assess`, as the pipeline does); failures become outcomes with an
    error, never exceptions. ``received_at`` (default: now) is the clearing year of a case
    without a discharge date, as the pipeline takes the time it received the case."""
    at = received_at or datetime.now(CST)
    return [
        outcome_of(assess(c, book, province=province, received_at=at, with_score=with_score))
        for c in cases
    ]


def outcome_json(o: Outcome) -> dict[str, Any]:
    doc: dict[str, Any] = {"case_key": o.case_key, "route": o.route_scope}
    if o.grouped is not None:
        doc["group"] = msgspec.to_builtins(o.grouped)
    if o.scored is not None:
        doc["score"] = msgspec.to_builtins(o.scored)
    if o.error is not None:
        doc["error"] = o.error
    return doc
