"""`workers.dip.assess`: the one decision of rules, group, score and route, and its reasons;
the scoring worker uses a grouping made under the same rules as is and routes once."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from adapters.runtime.settings import Settings
from contracts import CST
from contracts.messages import GroupedCase
from tests.builders import dip_case
from workers.dip import RulesBook, assess, reasons, sample_rules
from workers.dip import _assess as assess_module
from workers.rules_store import StoredRules
from workers.scoring import destinations, score_grouped

GZ = sample_rules("440100")
AT = datetime(2026, 6, 12, 9, 0, tzinfo=CST)
CASE = dip_case(insured_admdvs="440304", discharge_date="2026-03-02")


def test_scored_routed_under_the_clearing_years_rules() -> None:
    a = assess(CASE, RulesBook([GZ]), province="440000", received_at=AT)
    assert a.status == "scored" and a.reason is None
    assert a.rules is GZ and a.clearing_year == 2026
    assert a.grouping is not None and a.grouping.group_code == "GZ-C002"
    assert a.score is not None and a.score.estimated_payment == Decimal("12103.00")
    assert a.route is not None and a.route.scope == "cross_city"


def test_grouping_only_marks_ungrouped() -> None:
    odd = msgspec.structs.replace(CASE, main_diag_code="R69.X00", operations=())
    a = assess(odd, RulesBook([GZ]), province=None, received_at=AT, with_score=False)
    assert (a.status, a.route) == ("unscored", None)
    assert a.reason is not None and a.reason.rule == "DIP_UNGROUPED"
    assert a.grouping is not None and a.grouping.status == "ungrouped"
    ok = assess(CASE, RulesBook([GZ]), province=None, received_at=AT, with_score=False)
    assert (ok.status, ok.reason, ok.score) == ("grouped", None, None)
    # scored, the same case is priced by the city's cost fraction (0.70 of the cost)
    s = assess(odd, RulesBook([GZ]), province="440000", received_at=AT)
    assert s.score is not None and s.score.deviation == "cost_fraction"


def test_reasons_come_from_one_catalogue() -> None:
    cases = {
        "DIP_NO_RULES": msgspec.structs.replace(CASE, discharge_date="2027-01-02"),
        "DIP_NO_LEVEL": msgspec.structs.replace(CASE, hospital_level=""),
        "DIP_UNMAPPABLE": msgspec.structs.replace(CASE, main_diag_code=" "),
        "DIP_SCORE": msgspec.structs.replace(CASE, hospital_level="9"),
        "DIP_ROUTE": msgspec.structs.replace(CASE, treating_admdvs="450104"),
    }
    for rule, case in cases.items():
        a = assess(case, RulesBook([GZ]), province="440000", received_at=AT)
        assert a.status == "unscored" and a.reason is not None, rule
        entry = reasons.REASONS[rule]
        assert (a.reason.rule, a.reason.dimension, a.reason.severity) == (
            rule,
            entry.dimension,
            entry.severity,
        )
        assert a.reason.message and a.reason.message_en
    assert {r.rule for r in reasons.REASONS.values()} >= {
        "DIP_NO_RULES",
        "DIP_NO_LEVEL",
        "DIP_UNMAPPABLE",
        "DIP_SCORE",
        "DIP_ROUTE",
        "DIP_UNGROUPED",
        "DIP_INTERNAL",
    }


def test_a_grouping_under_other_rules_is_redone() -> None:
    g = assess(CASE, RulesBook([GZ]), province=None, received_at=AT, with_score=False).grouping
    assert g is not None
    stale = msgspec.structs.replace(g, ruleset_version="440100/2026/old@000000000000")
    a = assess(CASE, RulesBook([GZ]), province=None, received_at=AT, grouping=stale)
    assert a.grouping == g and a.status == "scored"


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    calls: list[Any] = []
    real = getattr(assess_module, name)

    def counted(*args: Any, **kw: Any) -> Any:
        calls.append(args)
        return real(*args, **kw)

    monkeypatch.setattr(assess_module, name, counted)
    return calls


def _grouped(ruleset_id: int) -> GroupedCase:
    g = assess(CASE, RulesBook([GZ]), province=None, received_at=AT, with_score=False).grouping
    return GroupedCase(
        receipt_id="r",
        case_key=CASE.case_key,
        fixmedins_code=CASE.fixmedins_code,
        setl_id="S1",
        revision=1,
        received_at=AT,
        treating_admdvs=CASE.treating_admdvs,
        insured_admdvs=CASE.insured_admdvs,
        contract_version="",
        clearing_year=2026,
        grouped_at=AT,
        facts=CASE,
        grouping=g,
        ruleset_id=ruleset_id,
        ruleset_version=GZ.version_id,
        catalog_version=GZ.catalog_version,
    )


def test_scoring_uses_the_grouping_and_routes_once(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = StoredRules(ruleset_id=7, seq=1, imported_at=AT, sources=[], rules=GZ)
    same, changed = _grouped(7), _grouped(6)
    groups = _counting(monkeypatch, "group")
    routes = _counting(monkeypatch, "route")
    settings = Settings()
    scored, route = score_grouped(same, stored, settings, AT)
    assert (scored.status, scored.group_code, scored.scope) == ("scored", "GZ-C002", "cross_city")
    assert scored.group_name == "其他和未特指的急性阑尾炎 / 腹腔镜下阑尾切除术"  # the catalog's
    assert scored.treatment is None  # GZ-C002 states none: null, not ""
    assert route is not None
    sent = destinations(scored, route, settings)
    assert [type(m).__name__ for _, m in sent] == [
        "InternalScoredCase",  # scored_all, with the facts
        "ScoredCase",
        "ScoredCase",
    ]
    assert sent[0][1] is scored and all(m.group_name == scored.group_name for _, m in sent)
    topics = [t for t, _ in sent]
    assert topics == [
        settings.topics.scored_all,
        "dip.case.scored.440100.v1",
        "dip.case.scored.440300.v1",
    ]
    assert (len(groups), len(routes)) == (0, 1)  # grouped under rule set 7: used as is
    # the rules in force changed since grouping (another rule set id): regrouped
    scored, _ = score_grouped(changed, stored, settings, AT)
    assert scored.status == "scored" and len(groups) == 1 and len(routes) == 2
