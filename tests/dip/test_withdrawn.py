"""A withdrawn list (national 4102, `stas_type` 0) is routed but neither grouped nor scored:
`assess`'s `withdrawn`, the grouping worker's reading of the status, and the scoring stage's
`DIP_WITHDRAWN` case for every city that had it (issue 14 point 4)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from adapters.runtime.settings import Settings
from contracts.messages import AcceptedSettlement
from tests.builders import dip_case, dip_document
from tests.clock import START
from workers.casefacts_map import withdrawn
from workers.dip import RulesBook, assess, reasons, sample_rules
from workers.grouping import group_message
from workers.rules_store import StoredRules
from workers.scoring import destinations, score_grouped

GZ = sample_rules("440100")
STORED = StoredRules(ruleset_id=7, seq=1, imported_at=START, sources=[], rules=GZ)
CROSS = dip_case(insured_admdvs="440304", discharge_date="2026-03-02")


def test_a_withdrawn_case_is_routed_but_not_grouped_or_scored() -> None:
    live = assess(CROSS, RulesBook([GZ]), province="440000", received_at=START)
    assert live.status == "scored"
    for rules in (RulesBook([GZ]), RulesBook([])):  # whatever the rules in force
        a = assess(CROSS, rules, province="440000", received_at=START, withdrawn=True)
        assert a.status == "unscored" and a.reason == reasons.WITHDRAWN.problem()
        assert (a.rules, a.grouping, a.score) == (None, None, None)
        assert a.route == live.route and a.route is not None  # its recipients learn it
    # before the level or the diagnosis are looked at: a withdrawn list is only withdrawn
    odd = msgspec.structs.replace(CROSS, hospital_level="", main_diag_code=" ")
    a = assess(odd, RulesBook([GZ]), province="440000", received_at=START, withdrawn=True)
    assert a.reason is not None and a.reason.rule == "DIP_WITHDRAWN"
    assert reasons.REASONS["DIP_WITHDRAWN"] is reasons.WITHDRAWN


@pytest.mark.parametrize(
    ("status", "expected"),
    [("0", True), (0, True), (" 0 ", True), ("1", False), (1, False), (None, False)],
)
def test_the_status_is_read_from_the_document(status: Any, expected: bool) -> None:
    doc = dip_document()
    doc["input"]["setlinfo"]["stas_type"] = status
    assert withdrawn(msgspec.json.encode(doc)) is expected
    del doc["input"]["setlinfo"]["stas_type"]  # absent: submitted
    assert withdrawn(msgspec.json.encode(doc)) is False
    assert withdrawn(b"{not json") is False  # the mapping names what is wrong with it


def _accepted(doc: dict[str, Any], revision: int) -> AcceptedSettlement:
    setl_id = doc["input"]["setlinfo"]["setl_id"]
    return AcceptedSettlement(
        receipt_id="00000000-0000-0000-0000-000000000001",
        case_key=f"H44010000001:{setl_id}",
        fixmedins_code="H44010000001",
        setl_id=setl_id,
        revision=revision,
        received_at=START,
        mdtrtarea_admvs="440100",
        insuplc_admdvs=doc["insuplc_admdvs"],
        document=msgspec.Raw(msgspec.json.encode(doc)),
    )


async def _rules(city: str, year: int) -> StoredRules | None:
    return STORED if (city, year) == ("440100", 2026) else None


async def test_grouping_and_scoring_mark_a_withdrawn_list_for_every_recipient() -> None:
    doc = dip_document(insured="440300")  # scored cross-city while submitted
    settings = Settings()
    live = await group_message(_accepted(doc, 1), "3", _rules, START)
    scored, _ = score_grouped(live, STORED, settings, START)
    assert scored.status == "scored" and scored.estimated_payment is not None

    doc["input"]["setlinfo"]["stas_type"] = "0"
    for level in ("3", None):  # an unregistered hospital's withdrawal is a withdrawal too
        g = await group_message(_accepted(doc, 2), level, _rules, START)
        assert g.unscored == reasons.WITHDRAWN.problem()
        assert (g.grouping, g.ruleset_id) == (None, None)
        assert g.facts is not None and g.insured_admdvs == "440300"
        case, route = score_grouped(g, STORED, settings, START)
        assert (case.status, case.revision, case.scope) == ("unscored", 2, "cross_city")
        assert case.unscored == reasons.WITHDRAWN.problem()
        assert (case.group_code, case.case_score, case.estimated_payment) == (None, None, None)
        assert case.hospital_level == level  # null, not "", when the hospital has none
        topics = [t for t, _ in destinations(case, route, settings)]
        assert topics == [  # the cities that received the scored revision learn it
            settings.topics.scored_all,
            "dip.case.scored.440100.v1",
            "dip.case.scored.440300.v1",
        ]
    # an unmappable withdrawn list still goes to its cities, by the envelope's regions
    del doc["input"]["diseinfo"]
    g = await group_message(_accepted(doc, 3), "3", _rules, START)
    assert g.unscored == reasons.WITHDRAWN.problem() and g.facts is None
    case, route = score_grouped(g, STORED, settings, START)
    assert case.unscored == reasons.WITHDRAWN.problem() and route is not None
    assert route.scope == "cross_city"
    # re-submitted (stas_type 1): grouped and scored again
    doc = dip_document(insured="440300")
    doc["input"]["setlinfo"]["stas_type"] = "1"
    g = await group_message(_accepted(doc, 4), "3", _rules, START)
    assert g.unscored is None
    assert score_grouped(g, STORED, settings, START)[0].status == "scored"


def _stored_row(**over: Any) -> dict[str, Any]:
    """A `workers.rescore` row of a stored case (scored_cases joined to cases and hospitals)."""
    doc = dip_document()
    row: dict[str, Any] = {
        "fixmedins_code": "H44010000001",
        "setl_id": doc["input"]["setlinfo"]["setl_id"],
        "revision": 2,
        "receipt_id": "00000000-0000-0000-0000-000000000002",
        "received_at": START,
        "treating_admdvs": "440100",
        "insured_admdvs": "440100",
        "facts": None,
        "record": msgspec.json.encode(doc).decode(),
        "record_revision": 2,
        "level": "3",
    }
    return {**row, **over}


def test_rescore_does_not_bring_a_withdrawn_list_back() -> None:
    from workers.rescore import _grouped

    assert _grouped(_stored_row(), START) is not None  # re-mapped from the stored list
    doc = dip_document()
    doc["input"]["setlinfo"]["stas_type"] = "0"
    gone = _stored_row(record=msgspec.json.encode(doc).decode())
    assert _grouped(gone, START) is None
    # a newer revision (a withdrawal, say) on its way: the stored facts are not re-scored
    facts = msgspec.json.encode(CROSS).decode()
    assert _grouped(_stored_row(facts=facts), START) is not None
    assert _grouped(_stored_row(facts=facts, record_revision=3), START) is None
