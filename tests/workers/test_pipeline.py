"""Signed pushes through the gateway, real Kafka and PostgreSQL, to grouped and scored cases:
the grouping, scoring and scored-sink workers together, with the per-city topics."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from gateway.runtime import Stack
from tests.builders import dip_document, push, read_topic, wait_scored
from tests.conftest import Client, register_hospital
from workers.casefacts_map import case_facts
from workers.dip import group, sample_rules, score

pytestmark = pytest.mark.integration


async def test_cases_are_grouped_scored_and_routed_to_their_cities(
    stack: Stack, hospital: Client, rules: dict[str, Any]
) -> None:
    zhuhai = await register_hospital(stack, "H44040000003", "440400")  # no rules
    same = dip_document()  # K35.8 + 47.0100 at a level-3 Guangzhou hospital, 9000 yuan
    cross = dip_document(insured="440300", total="25000.00", insutype="390")
    out = dip_document(insured="110105", diag="J18.900", oprn=None, total="6000.00")
    excluded_ops = dip_document(oprn="89.5200", diag="J18.900", total="6500.00")
    await push(hospital, same, cross, out, excluded_ops)
    (unruled,) = await push(
        zhuhai, dip_document(code="H44040000003", area="440400", insured="440100")
    )
    code = "H44010000001"
    docs = {"same": same, "cross": cross, "out": out, "excl": excluded_ops}
    keys = {(code, d["input"]["setlinfo"]["setl_id"]): 1 for d in docs.values()}
    keys[("H44040000003", unruled["case_key"].split(":")[1])] = 1
    rows = await wait_scored(stack.pool, keys)

    def row(name: str) -> dict[str, Any]:
        return rows[(code, docs[name]["input"]["setlinfo"]["setl_id"])]

    # Hand-checked against workers/dip/data/440100-2026*: GZ-C002 (K35.8 + 47.0100) scores 980,
    # level "3" coefficient 0.90, same-level reference 9800 → ratio 0.918 (normal), no
    # adjustment: 980 × 0.90 = 882 points × 12.35 yuan (职工 310) = 10,892.70 yuan.
    r = row("same")
    assert (r["status"], r["group_code"], r["deviation"]) == ("scored", "GZ-C002", "normal")
    assert r["case_score"] == pytest.approx(882.0)
    assert r["estimated_payment"] == Decimal("10892.70")
    assert r["scope"] == "same_city" and r["revision"] == 1
    assert r["ruleset_id"] == rules["440100"].ruleset_id
    assert r["catalog_version"] == "GZ-DIP-2026.1-sample"

    # Cross-city: the TREATING city's (440100) rules; 25000 / 9800 = 2.551 > 2 → high case:
    # (2.551 − 2 + 1) × 980 × 0.90 = 1368.00 points × 10.80 (居民 390).
    r = row("cross")
    assert (r["scope"], r["treating_city"], r["insured_city"]) == (
        "cross_city",
        "440100",
        "440300",
    )
    assert (r["group_code"], r["deviation"]) == ("GZ-C002", "high")
    assert r["case_score"] == pytest.approx(1368.0)
    assert r["estimated_payment"] == Decimal("14774.40")

    # The ECG (89.5200) is on 440100's exclusion list: the case groups as conservative J18.9.
    facts = case_facts(
        msgspec.json.encode(excluded_ops),
        case_key="k",
        fixmedins_code=code,
        treating_admdvs="440100",
        insured_admdvs=None,
        hospital_level="3",
    )
    expected = score(group(facts, sample_rules("440100")), sample_rules("440100"), facts)
    r = row("excl")
    assert r["group_code"] == expected.group_code == "GZ-C017"
    assert r["case_score"] == pytest.approx(expected.case_score)
    assert r["estimated_payment"] == expected.estimated_payment

    r = row("out")
    assert (r["scope"], r["status"]) == ("out_of_province", "scored")

    r = rows[("H44040000003", unruled["case_key"].split(":")[1])]
    assert (r["status"], r["unscored_rule"], r["treating_city"]) == (
        "unscored",
        "DIP_NO_RULES",
        "440400",
    )
    assert r["case_score"] is None and r["clearing_year"] == 2026

    # Per-city topics: Guangzhou gets all its cases as treating city, Shenzhen the cross-city
    # one as insured city, the out-of-province channel its case, Zhuhai (no sample rules) its
    # unscored one.
    t = stack.settings.topics
    gz_keys = {f"{code}:{d['input']['setlinfo']['setl_id']}" for d in docs.values()}
    gz = await read_topic(stack.bootstrap, "dip.case.scored.440100.v1", gz_keys, expect=4)
    assert {m["role"] for m in gz} == {"treating"} and len(gz) == 4
    cross_key = f"{code}:{cross['input']['setlinfo']['setl_id']}"
    sz = await read_topic(stack.bootstrap, "dip.case.scored.440300.v1", {cross_key}, expect=1)
    assert len(sz) == 1
    assert (sz[0]["role"], sz[0]["scope"], sz[0]["treating_city"]) == (
        "insured",
        "cross_city",
        "440100",
    )
    assert sz[0]["case_score"] == pytest.approx(row("cross")["case_score"])
    assert "facts" not in sz[0]  # the city copy is the public type
    out_key = f"{code}:{out['input']['setlinfo']['setl_id']}"
    oop = await read_topic(stack.bootstrap, t.out_of_province, {out_key}, expect=1)
    assert [m["role"] for m in oop] == ["out_of_province"]
    zh = await read_topic(
        stack.bootstrap, "dip.case.scored.440400.v1", {unruled["case_key"]}, expect=1
    )
    assert zh[0]["status"] == "unscored" and zh[0]["unscored"]["rule"] == "DIP_NO_RULES"
    assert set(zh[0]["unscored"]) == {
        "rule",
        "field",
        "dimension",
        "severity",
        "message",
        "message_en",
    }
    # No personal data in what cities receive.
    for message in gz + sz + oop + zh:
        text = str(message)
        assert "psn_name" not in text and "certno" not in text
        assert same["input"]["setlinfo"]["certno"] not in text

    grouped = await read_topic(stack.bootstrap, t.grouped, {cross_key}, expect=1)
    assert grouped[0]["grouping"]["group_code"] == "GZ-C002"
    assert grouped[0]["catalog_version"] == "GZ-DIP-2026.1-sample"


async def test_a_corrected_list_replaces_the_scored_case(
    stack: Stack, hospital: Client, rules: dict[str, Any]
) -> None:
    first = dip_document(total="9000.00")
    setl_id = first["input"]["setlinfo"]["setl_id"]
    await push(hospital, first)
    await wait_scored(stack.pool, {("H44010000001", setl_id): 1})
    corrected = dip_document(setl_id=setl_id, total="3000.00")  # 3000/9800 < 0.5 → low case
    (result,) = await push(hospital, corrected)
    assert result["revision"] == 2
    rows = await wait_scored(stack.pool, {("H44010000001", setl_id): 2})
    r = rows[("H44010000001", setl_id)]
    assert (r["revision"], r["deviation"]) == (2, "low")
    assert r["case_score"] == pytest.approx(round(3000 / 9800 * 980, 4))  # no K for low cases
    count = await stack.pool.fetchval(
        "SELECT count(*) FROM scored_cases WHERE setl_id = $1", setl_id
    )
    assert count == 1
