"""The offline commands (`dipgw score`) and the pipeline (grouping worker → scoring worker)
give every case the same outcome: status, group, score, route and the reason it is unscored.

No Kafka: the pipeline side builds the GroupedCase as the grouping worker does
(`group_message`) and scores it as the scoring worker does (`score_grouped`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
import pytest

from adapters.runtime.settings import Settings
from contracts import CST
from contracts.messages import AcceptedSettlement
from tests.builders import dip_document
from workers.casefacts_map import case_facts
from workers.dip import CaseFacts, RuleSet, rules_key, sample_rules
from workers.dip._offline import RulesBook, run_cases
from workers.grouping import group_message
from workers.rules_store import StoredRules
from workers.scoring import score_grouped

GZ = sample_rules("440100")  # clearing year 2026, the only Guangzhou rule set here
RECEIVED = datetime(2026, 6, 12, 9, 0, tzinfo=CST)
SETTINGS = Settings()

Outcome = tuple[str, str | None, float | None, str | None, str | None]


class Case(msgspec.Struct, kw_only=True):
    area: str = "440100"
    insured: str | None = None
    code: str = "H44010000001"
    dscg: str = "2026-06-10 10:00:00"
    level: str | None = "3"  # the hospital's registered level; None: not in the registry
    doc: dict[str, Any] = {}  # arguments of dip_document
    pipeline_edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    offline_edit: dict[str, Any] = {}  # the same defect in the case facts `dipgw score` reads
    reason: str | None = None


def _no_diagnosis(doc: dict[str, Any]) -> dict[str, Any]:
    doc["input"]["diseinfo"] = []
    return doc


def _diagnosis(code: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(doc: dict[str, Any]) -> dict[str, Any]:
        doc["input"]["diseinfo"][0]["diag_code"] = code
        doc["input"]["oprninfo"] = []
        return doc

    return edit


CASES = {
    "scored": Case(),
    "cross_city": Case(insured="440300", doc={"total": "25000.00", "insutype": "390"}),
    "out_of_province": Case(insured="110105"),
    "no_rules_for_year": Case(dscg="2027-01-03 10:00:00", reason="DIP_NO_RULES"),
    "no_rules_for_city": Case(area="440600", code="H44060000003", reason="DIP_NO_RULES"),
    "no_hospital_level": Case(
        level=None, offline_edit={"hospital_level": ""}, reason="DIP_NO_LEVEL"
    ),
    "level_not_in_rules": Case(level="9", reason="DIP_SCORE"),
    "unmappable": Case(
        pipeline_edit=_no_diagnosis, offline_edit={"main_diag_code": ""}, reason="DIP_UNMAPPABLE"
    ),
    "ungroupable_diagnosis": Case(
        pipeline_edit=_diagnosis("R69.X00"),
        offline_edit={"main_diag_code": "R69.X00", "operations": ()},
    ),
    "treated_outside_province": Case(area="450100", reason="DIP_ROUTE"),
}


def _pipeline(c: Case, doc: dict[str, Any], rules: list[RuleSet]) -> Outcome:
    setl_id = doc["input"]["setlinfo"]["setl_id"]
    msg = AcceptedSettlement(
        receipt_id="r-1",
        case_key=f"{c.code}:{setl_id}",
        fixmedins_code=c.code,
        setl_id=setl_id,
        revision=1,
        received_at=RECEIVED,
        mdtrtarea_admvs=c.area,
        insuplc_admdvs=c.insured,
        document=msgspec.Raw(msgspec.json.encode(doc)),
    )
    stored = {
        (rs.city, rs.clearing_year): StoredRules(
            ruleset_id=i + 1, seq=1, imported_at=RECEIVED, sources=[], rules=rs
        )
        for i, rs in enumerate(rules)
    }

    async def rules_of(city: str, year: int) -> StoredRules | None:
        return stored.get((city, year))

    grouped = asyncio.run(group_message(msg, c.level, rules_of, RECEIVED))
    lookup = None  # what the scoring worker looks up
    key = rules_key(grouped.facts, grouped.received_at) if grouped.facts is not None else None
    if key is not None:
        lookup = stored.get(key)
    scored, _ = score_grouped(grouped, lookup, SETTINGS, RECEIVED)
    return (
        scored.status,
        scored.group_code,
        scored.case_score,
        scored.unscored.rule if scored.unscored else None,
        scored.scope if scored.status == "scored" else None,
    )


def _offline(facts: CaseFacts, rules: list[RuleSet]) -> Outcome:
    (o,) = run_cases(
        [facts], RulesBook(rules), True, province=SETTINGS.worker.province, received_at=RECEIVED
    )
    if o.scored is not None:
        return ("scored", o.scored.group_code, o.scored.case_score, None, o.route_scope)
    group = o.grouped.group_code if o.grouped is not None else None
    return ("unscored", group, None, o.error["rule"] if o.error else None, None)


@pytest.mark.parametrize("name", list(CASES))
def test_offline_and_pipeline_agree(name: str) -> None:
    c = CASES[name]
    doc = dip_document(code=c.code, area=c.area, insured=c.insured, dscg=c.dscg, **c.doc)
    setl_id = doc["input"]["setlinfo"]["setl_id"]
    facts = case_facts(  # what the grouping worker maps (or `dipgw score` reads from a file)
        msgspec.json.encode(doc),
        case_key=f"{c.code}:{setl_id}",
        fixmedins_code=c.code,
        treating_admdvs=c.area,
        insured_admdvs=c.insured,
        hospital_level=c.level or "",
    )
    facts = msgspec.structs.replace(facts, **c.offline_edit)
    piped = msgspec.json.decode(msgspec.json.encode(doc))  # the pipeline's own copy
    if c.pipeline_edit is not None:
        piped = c.pipeline_edit(piped)
    pipeline = _pipeline(c, piped, [GZ])
    assert _offline(facts, [GZ]) == pipeline
    assert pipeline[3] == c.reason
