"""Every topic's message type is declared once, in `contracts.messages.TOPIC_TYPES` (keyed by
the `TopicSettings` field naming the topic), and a message of each type round-trips."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest

from adapters.runtime.settings import TopicSettings
from contracts import Problem
from contracts.dip import GroupResult
from contracts.messages import (
    ACCEPTED_DECODER,
    ENCODER,
    GROUPED_DECODER,
    QUALITY_ALERT_DECODER,
    REJECTED_DECODER,
    SCORED_ALL_DECODER,
    SCORED_DECODER,
    TOPIC_TYPES,
    AcceptedSettlement,
    GroupedCase,
    InternalScoredCase,
    QualityAlert,
    RejectedSettlement,
    ScoredCase,
)
from tests.builders import dip_case

AT = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
ENVELOPE = {
    "receipt_id": "0f8e3b7c-1d2a-4c5b-9e6f-7a8b9c0d1e2f",
    "case_key": "H44010000001:S1",
    "fixmedins_code": "H44010000001",
    "setl_id": "S1",
    "revision": 2,
    "received_at": AT,
}
FACTS = dip_case(
    insured_admdvs="440305",
    main_diag_code="K35.800x002",
    total_cost=Decimal("12345.67"),
    operations=(("47.0900x001", "surgery"),),
)
NO_RULES = Problem(
    rule="DIP_NO_RULES",
    field="treating_admdvs",
    dimension="",
    severity="error",
    message="无规则",
    message_en="no rules",
)

SAMPLES: dict[str, msgspec.Struct] = {
    "accepted": AcceptedSettlement(
        **ENVELOPE, mdtrtarea_admvs="440104", document=msgspec.Raw(b'{"infno":"4101A"}')
    ),
    "rejected": RejectedSettlement(
        fixmedins_code="H44010000001", received_at=AT, errors=[NO_RULES]
    ),
    "grouped": GroupedCase(
        **ENVELOPE,
        treating_admdvs="440104",
        insured_admdvs="440305",
        contract_version="4101A-2023.08+dipgw.1",
        clearing_year=2026,
        grouped_at=AT,
        facts=FACTS,
        grouping=GroupResult(
            case_key="H44010000001:S1",
            status="core",
            group_code="K35.8:47.09",
            group_score=812.5,
            treatment="surgery",
            catalog_version="c1",
            ruleset_version="r1",
        ),
    ),
    "scored": ScoredCase(
        **ENVELOPE,
        scored_at=AT,
        role="insured",
        scope="cross_city",
        treating_admdvs="440104",
        insured_admdvs="440305",
        treating_city="440100",
        insured_city="440300",
        clearing_year=2026,
        status="scored",
        case_score=812.5,
        point_value=Decimal("15.2"),
        estimated_payment=Decimal("12350.00"),
    ),
    "scored_all": InternalScoredCase(
        **ENVELOPE,
        scored_at=AT,
        role="treating",
        scope="same_city",
        treating_admdvs="440104",
        insured_admdvs="440104",
        treating_city="440100",
        insured_city="440100",
        clearing_year=None,
        status="unscored",
        unscored=NO_RULES,
        facts=FACTS,
    ),
    "out_of_province": ScoredCase(
        **ENVELOPE,
        scored_at=AT,
        role="out_of_province",
        scope="out_of_province",
        treating_admdvs="440104",
        insured_admdvs="110105",
        treating_city="440100",
        insured_city="110100",
        clearing_year=2026,
        status="scored",
    ),
    "quality_alerts": QualityAlert(
        alert_key="silent:H44010000001:2026-03-01T08:30:00+00:00",
        kind="silent",
        city="440100",
        fixmedins_code="H44010000001",
        value=26.0,
        threshold=24.0,
        message="已 26 小时未上传",
        message_en="silent for 26 h",
        raised_at=AT,
    ),
}


def test_every_topic_of_the_settings_has_one_message_type() -> None:
    topics = {f.name for f in msgspec.structs.fields(TopicSettings) if f.type is str}
    assert set(TOPIC_TYPES) == topics
    decoders = {
        "accepted": ACCEPTED_DECODER,
        "rejected": REJECTED_DECODER,
        "grouped": GROUPED_DECODER,
        "scored": SCORED_DECODER,
        "scored_all": SCORED_ALL_DECODER,
        "out_of_province": SCORED_DECODER,
        "quality_alerts": QUALITY_ALERT_DECODER,
    }
    assert {name: d.type for name, d in decoders.items()} == TOPIC_TYPES


@pytest.mark.parametrize("topic", sorted(TOPIC_TYPES))
def test_a_message_of_each_topic_round_trips(topic: str) -> None:
    message = SAMPLES[topic]
    assert type(message) is TOPIC_TYPES[topic]
    data = ENCODER.encode(message)
    assert msgspec.json.decode(data, type=TOPIC_TYPES[topic]) == message
    assert ENCODER.encode(msgspec.json.decode(data, type=TOPIC_TYPES[topic])) == data


def test_money_travels_as_text() -> None:
    doc = msgspec.json.decode(ENCODER.encode(SAMPLES["scored"]))
    assert doc["estimated_payment"] == "12350.00" and doc["point_value"] == "15.20"


def test_money_has_two_decimals_and_ratios_four_however_made() -> None:
    case = msgspec.structs.replace(
        SAMPLES["scored"],
        total_cost=Decimal("12000.0"),
        estimated_payment=Decimal("9876.545"),
        point_value=Decimal("13.4567"),
        ratio=1.2345678,
        level_coefficient=1.15,
        adjustment=0.333333333,
        case_score=812.123456,  # rounded by the DIP core to the city's score_decimals
    )
    doc = msgspec.json.decode(ENCODER.encode(case))
    assert (doc["total_cost"], doc["estimated_payment"], doc["point_value"]) == (
        "12000.00",
        "9876.55",
        "13.4567",  # a rate keeps the city's precision
    )
    assert (doc["ratio"], doc["level_coefficient"], doc["adjustment"]) == (1.2346, 1.15, 0.3333)
    assert doc["case_score"] == 812.123456
    # a stored message written before the rule is read the same way
    old = ENCODER.encode(SAMPLES["scored"]).replace(b'"12350.00"', b'"12350.0"')
    assert SCORED_DECODER.decode(old).estimated_payment == Decimal("12350.00")
    assert str(SCORED_DECODER.decode(old).estimated_payment) == "12350.00"


@pytest.mark.parametrize("topic", sorted(TOPIC_TYPES))
def test_every_moment_is_written_in_china_standard_time(topic: str) -> None:
    text = ENCODER.encode(SAMPLES[topic]).decode()
    moments = re.findall(r'"\d{4}-\d{2}-\d{2}T[^"]*"', text)
    assert moments and all(m.endswith('+08:00"') for m in moments), moments
    assert "2026-03-01T16:30:00+08:00" in text  # AT, 08:30 UTC


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "1E+40"])
def test_an_amount_that_has_no_two_decimal_form_is_refused(amount: str) -> None:
    data = ENCODER.encode(SAMPLES["scored"]).replace(b'"12350.00"', f'"{amount}"'.encode())
    with pytest.raises(msgspec.ValidationError, match="two decimals"):
        SCORED_DECODER.decode(data)


def test_a_moment_without_an_offset_is_refused() -> None:
    data = ENCODER.encode(SAMPLES["rejected"]).replace(b"+08:00", b"")
    with pytest.raises(msgspec.ValidationError, match="offset"):
        REJECTED_DECODER.decode(data)


def test_city_copies_carry_no_internal_fields() -> None:
    internal = SAMPLES["scored_all"]
    assert isinstance(internal, InternalScoredCase) and internal.facts is not None
    public = internal.public()
    assert type(public) is ScoredCase
    doc = msgspec.json.decode(ENCODER.encode(public))
    assert "facts" not in doc
    assert doc == {k: v for k, v in msgspec.json.decode(ENCODER.encode(internal)).items()
                   if k != "facts"}  # fmt: skip
