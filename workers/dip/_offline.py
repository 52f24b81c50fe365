"""The logic behind ``dipgw group`` / ``dipgw score``: read case files, pick the treating
city's rules for each case, group (and score) it, and report errors in the project's error shape.
Rendering stays in the command modules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ._facts import CaseFacts, decode_cases_json, decode_cases_ndjson
from ._grouping import GroupResult, group
from ._model import RuleSet
from ._routing import route
from ._scoring import ScoreError, ScoreResult, score


class CaseFileError(ValueError):
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


class RulesBook:
    """Rule sets by treating city; the clearing year is the discharge year when one matches."""

    def __init__(self, rulesets: Iterable[RuleSet]) -> None:
        self._by_city: dict[str, list[RuleSet]] = {}
        for rs in rulesets:
            self._by_city.setdefault(rs.city[:4], []).append(rs)

    def for_case(self, case: CaseFacts) -> RuleSet | None:
        sets = self._by_city.get(case.treating_admdvs[:4])
        if not sets:
            return None
        year = case.discharge_date[:4]
        for rs in sets:
            if str(rs.clearing_year) == year:
                return rs
        return sets[0] if len(sets) == 1 else None


def error(rule: str, field: str, message: str, message_en: str, case_key: str) -> dict[str, str]:
    """The project's one error shape, plus the case it concerns."""
    return {
        "rule": rule,
        "field": field,
        "dimension": "dip",
        "severity": "reject",
        "message": message,
        "message_en": message_en,
        "case_key": case_key,
    }


class Outcome(msgspec.Struct, kw_only=True):
    case_key: str
    grouped: GroupResult | None = None
    scored: ScoreResult | None = None
    route_scope: str | None = None
    error: dict[str, str] | None = None


def run_cases(cases: Sequence[CaseFacts], book: RulesBook, with_score: bool) -> list[Outcome]:
    """Group (and score) every case; failures become outcomes with an error, never exceptions."""
    out: list[Outcome] = []
    for case in cases:
        rs = book.for_case(case)
        if rs is None:
            out.append(
                Outcome(
                    case_key=case.case_key,
                    error=error(
                        "DIP-R001",
                        "treating_admdvs",
                        f"没有就医地 {case.treating_admdvs} 的病种分值规则",
                        f"no rules for treating region {case.treating_admdvs}",
                        case.case_key,
                    ),
                )
            )
            continue
        g = group(case, rs)
        o = Outcome(case_key=case.case_key, grouped=g)
        try:
            o.route_scope = route(case.insured_admdvs, case.treating_admdvs, rs.city[:2]).scope
        except ValueError:
            o.route_scope = None
        if not with_score:
            if g.status == "ungrouped":
                o.error = error(
                    "DIP-G001",
                    "main_diag_code",
                    f"病例未能入组：{g.reason}",
                    f"case could not be grouped: {g.reason}",
                    case.case_key,
                )
        else:
            try:
                o.scored = score(g, rs, case)
            except ScoreError as e:
                o.error = error(
                    "DIP-S001",
                    e.field,
                    f"病例无法计算分值：{e.message}",
                    f"case could not be scored: {e.message}",
                    case.case_key,
                )
        out.append(o)
    return out


def outcome_json(o: Outcome) -> dict[str, Any]:
    doc: dict[str, Any] = {"case_key": o.case_key, "route": o.route_scope}
    if o.grouped is not None:
        doc["group"] = msgspec.to_builtins(o.grouped)
    if o.scored is not None:
        doc["score"] = msgspec.to_builtins(o.scored)
    if o.error is not None:
        doc["error"] = o.error
    return doc
