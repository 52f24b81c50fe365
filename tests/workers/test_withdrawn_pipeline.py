"""A list withdrawn by national 4102 (`stas_type` 0) stops counting, end to end (issue 14
point 4): through the real gateway, Kafka, the grouping and scoring workers and PostgreSQL,
the cities that received the case learn it is withdrawn, PostgreSQL's totals drop it, `dipgw
rescore` leaves it withdrawn, and its re-submission is scored again, counted once."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.runtime import LocalServices, Stack
from tests.builders import dip_document, push, read_topic, wait_scored
from tests.commands import cli_env, dipgw
from tests.conftest import Client

pytestmark = pytest.mark.integration

CODE = "H44010000001"


def _status_change(doc: dict[str, Any], stas: str) -> dict[str, Any]:
    """The national 4102 request withdrawing (0) or re-submitting (1) `doc`."""
    setlinfo = doc["input"]["setlinfo"]
    row = {"psn_no": setlinfo["psn_no"], "setl_id": setlinfo["setl_id"], "stas_type": stas}
    return {
        "infno": "4102",
        "msgid": f"{CODE}{uuid.uuid4().int % 10**18:018d}",
        "mdtrtarea_admvs": "440100",
        "inf_time": "2026-11-24 09:30:00",
        "fixmedins_code": CODE,
        "input": {"data": {"stastinfo": [row]}},
    }


async def _change(stack: Stack, hospital: Client, doc: dict[str, Any], stas: str) -> int:
    """Send the status change; wait until the scored sink has its revision. The revision."""
    status, answer = await hospital.post("/fsi/api/4102", _status_change(doc, stas))
    assert status == 200 and answer["infcode"] == 0, answer
    (row,) = answer["output"]["data"]
    revision = int(row["revision"])
    await wait_scored(stack.pool, {(CODE, doc["input"]["setlinfo"]["setl_id"]): revision})
    return revision


async def _totals(stack: Stack, setl_ids: list[str]) -> tuple[int, int, Decimal, float]:
    """What anything summing the scored cases sees for these lists: rows, scored rows, the
    sum of estimated payments and of case scores."""
    row = await stack.pool.fetchrow(
        """SELECT count(*) AS n, count(*) FILTER (WHERE status = 'scored') AS scored,
                  coalesce(sum(estimated_payment), 0) AS payment,
                  coalesce(sum(case_score), 0) AS score
           FROM scored_cases WHERE fixmedins_code = $1 AND setl_id = ANY($2)""",
        CODE,
        setl_ids,
    )
    return row["n"], row["scored"], row["payment"], row["score"]


async def test_a_withdrawn_list_stops_counting_and_counts_once_when_resubmitted(
    stack: Stack,
    services: LocalServices,
    hospital: Client,
    rules: dict[str, Any],
    tmp_path: Path,
) -> None:
    cross = dip_document(insured="440300", total="25000.00", insutype="390")  # two cities
    other = dip_document()  # stays submitted: the totals keep it
    await push(hospital, cross, other)
    setl_id, other_id = (d["input"]["setlinfo"]["setl_id"] for d in (cross, other))
    rows = await wait_scored(stack.pool, {(CODE, setl_id): 1, (CODE, other_id): 1})
    assert {r["status"] for r in rows.values()} == {"scored"}
    scored_payment = rows[(CODE, setl_id)]["estimated_payment"]
    other_payment = rows[(CODE, other_id)]["estimated_payment"]
    assert scored_payment == Decimal("14774.40")  # test_pipeline's hand-checked cross case
    both = [setl_id, other_id]
    count, scored, payment, _ = await _totals(stack, both)
    assert (count, scored, payment) == (2, 2, scored_payment + other_payment)

    # withdrawn: a new revision, marked, without group, score or payment
    assert await _change(stack, hospital, cross, "0") == 2
    row = (await wait_scored(stack.pool, {(CODE, setl_id): 2}))[(CODE, setl_id)]
    assert (row["status"], row["unscored_rule"], row["scope"]) == (
        "unscored",
        "DIP_WITHDRAWN",
        "cross_city",
    )
    assert (row["group_code"], row["case_score"], row["estimated_payment"]) == (None, None, None)
    count, scored, payment, score = await _totals(stack, both)
    assert (count, scored, payment) == (1 + 1, 1, other_payment)
    assert score == pytest.approx(rows[(CODE, other_id)]["case_score"])

    # the operator's rescore of the city and year does not bring it back
    env = cli_env(services.dsn, stack.bootstrap, tmp_path / "state")
    code, _, err = await dipgw("rescore", "440100", "2026", env=env)
    assert code == 0, err
    row = (await wait_scored(stack.pool, {(CODE, setl_id): 2}))[(CODE, setl_id)]
    assert (row["revision"], row["unscored_rule"]) == (2, "DIP_WITHDRAWN")
    assert (await _totals(stack, both))[:3] == (2, 1, other_payment)

    # re-submitted: scored again as its latest revision, one row, counted once
    assert await _change(stack, hospital, cross, "1") == 3
    row = (await wait_scored(stack.pool, {(CODE, setl_id): 3}))[(CODE, setl_id)]
    assert (row["status"], row["unscored_rule"]) == ("scored", None)
    assert row["estimated_payment"] == scored_payment
    assert (await _totals(stack, both))[:3] == (2, 2, scored_payment + other_payment)

    # What the cities read with a plain Kafka consumer, in order: scored, withdrawn (with the
    # reason in the one error shape), scored again — nothing from the rescore in between.
    key = f"{CODE}:{setl_id}"
    for topic, role in (
        ("dip.case.scored.440100.v1", "treating"),
        ("dip.case.scored.440300.v1", "insured"),
    ):
        seen = await read_topic(stack.bootstrap, topic, {key}, expect=3)
        assert [(m["revision"], m["status"], m["role"]) for m in seen[:3]] == [
            (1, "scored", role),
            (2, "unscored", role),
            (3, "scored", role),
        ], topic
        gone = seen[1]
        assert gone["unscored"]["rule"] == "DIP_WITHDRAWN"
        assert gone["unscored"]["field"] == "setlinfo.stas_type"
        assert "withdrawn" in gone["unscored"]["message_en"]
        assert gone["estimated_payment"] is None and gone["case_score"] is None
        assert gone["group_code"] is None
        assert seen[2]["estimated_payment"] == str(scored_payment)
