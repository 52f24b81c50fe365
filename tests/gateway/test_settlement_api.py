"""The settlement API over real HTTP (issue 16, point 5) and special review's (point 3): who
sees which runs, lines and simulations, and a request opened, refused and decided by role.

The rows are stored as `dipgw settle` and `dipgw rules simulate` store them, for clearing years
2031 and 2032, which no other test uses (the session's database is shared)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.runtime import Stack
from tests.builders import new_code
from tests.conftest import Client, city_client, register_hospital
from tests.gateway.settlement_rows import policy, scored_cases, settlement_run, simulation

pytestmark = pytest.mark.integration
YEAR = 2031
REVIEWED = 2032  # the special reviews' year: no settlement policy until the test stores one


@dataclass
class World:
    h1: Client
    h2: Client
    sz: Client  # a hospital of 440300
    gz_bureau: Client
    sz_bureau: Client
    month: int
    year_run: int
    sz_run: int
    sim: int
    sz_sim: int


def _code(client: Client) -> str:
    assert client.hospital is not None
    return client.hospital


@pytest.fixture(scope="module")
async def world(stack: Stack) -> AsyncIterator[World]:
    """Scored rows, runs and simulations in the session's database; the scored rows are
    removed afterwards, so later tests' views of /v1/scored do not count them."""
    h1 = await register_hospital(stack, new_code(), "440100")
    h2 = await register_hospital(stack, new_code(), "440100")
    sz = await register_hospital(stack, f"H4403{new_code()[5:]}", "440300")
    for client, city in ((h1, "440100"), (h2, "440100"), (sz, "440300")):
        await scored_cases(stack.pool, _code(client), 5, city=city, year=REVIEWED)
    lines = [
        (_code(h1), "employee", "1200.50"),
        (_code(h1), "resident", "300.00"),
        (_code(h2), "employee", "999.99"),
    ]
    yield World(
        h1=h1,
        h2=h2,
        sz=sz,
        gz_bureau=await city_client(stack, "440100"),
        sz_bureau=await city_client(stack, "440300"),
        month=await settlement_run(stack.pool, "440100", f"{YEAR}-10", lines),
        year_run=await settlement_run(stack.pool, "440100", str(YEAR), lines),
        sz_run=await settlement_run(
            stack.pool, "440300", f"{YEAR}-10", [(_code(sz), "employee", "1.00")]
        ),
        sim=await simulation(
            stack.pool,
            "440100",
            YEAR,
            [(_code(h1), "100.00", "90.50"), (_code(h2), "50.00", "60.00")],
        ),
        sz_sim=await simulation(stack.pool, "440300", YEAR, [(_code(sz), "1.00", "2.00")]),
    )
    await stack.pool.execute(
        "DELETE FROM scored_cases WHERE fixmedins_code = ANY($1::text[])",
        [_code(h1), _code(h2), _code(sz)],
    )


async def test_runs_and_lines_by_role(world: World, ops: Client) -> None:
    status, listed = await world.gz_bureau.get(f"/v1/settlement/runs?period={YEAR}-10")
    assert status == 200, listed
    assert [r["run_id"] for r in listed["runs"]] == [world.month]
    assert listed["runs"][0]["totals"] == {"payable": "2500.49"}
    assert listed["runs"][0]["created_at"].endswith("+08:00")

    status, run = await world.gz_bureau.get(f"/v1/settlement/runs/{world.month}")
    assert status == 200
    assert [(line["fixmedins_code"], line["fund"], line["payable"]) for line in run["lines"]] == (
        sorted(
            [
                (_code(world.h1), "employee", "1200.50"),
                (_code(world.h1), "resident", "300.00"),
                (_code(world.h2), "employee", "999.99"),
            ]
        )
    )
    assert all(line["deductions"] == "0.00" for line in run["lines"])  # text, two decimals
    assert all(line["name"].startswith("测试医院") for line in run["lines"])
    assert run["point_values"] == {"employee": "12.3456", "resident": "10.9876"}

    # A bureau reads its own city only: another city's run is as absent, asking is refused.
    status, _ = await world.gz_bureau.get(f"/v1/settlement/runs/{world.sz_run}")
    assert status == 404
    status, refused = await world.gz_bureau.get("/v1/settlement/runs?city=440300")
    assert status == 403 and refused["errors"][0]["rule"] == "FORBIDDEN_REGION"
    status, sz_runs = await world.sz_bureau.get(f"/v1/settlement/runs?period={YEAR}-10")
    assert [r["run_id"] for r in sz_runs["runs"]] == [world.sz_run]

    status, everything = await ops.get("/v1/settlement/runs?kind=year&city=440100")
    assert status == 200 and world.year_run in [r["run_id"] for r in everything["runs"]]
    assert all(r["kind"] == "year" for r in everything["runs"])
    status, one = await ops.get(f"/v1/settlement/runs/{world.year_run}?hospital={_code(world.h2)}")
    assert [line["fixmedins_code"] for line in one["lines"]] == [_code(world.h2)]


async def test_a_hospital_sees_only_its_own_lines(world: World) -> None:
    status, run = await world.h1.get(f"/v1/settlement/runs/{world.month}")
    assert status == 200, run
    assert {line["fixmedins_code"] for line in run["lines"]} == {_code(world.h1)}
    assert "totals" not in run  # the city's figures are the bureau's
    status, refused = await world.h1.get(
        f"/v1/settlement/runs/{world.month}?hospital={_code(world.h2)}"
    )
    assert status == 403
    status, listed = await world.h1.get(f"/v1/settlement/runs?period={YEAR}-10")
    assert [r["run_id"] for r in listed["runs"]] == [world.month]
    assert all("totals" not in r for r in listed["runs"])
    status, _ = await world.h1.get(f"/v1/settlement/runs/{world.sz_run}")
    assert status == 404
    status, refused = await world.h1.get("/v1/simulations")
    assert status == 403 and refused["errors"][0]["rule"] == "FORBIDDEN_ROLE"


async def test_simulations_by_role(world: World, ops: Client) -> None:
    status, listed = await world.gz_bureau.get(f"/v1/simulations?year={YEAR}")
    assert status == 200, listed
    assert [s["sim_id"] for s in listed["simulations"]] == [world.sim]
    assert listed["simulations"][0]["delta"] == "0.50"
    status, sim = await world.gz_bureau.get(f"/v1/simulations/{world.sim}")
    assert status == 200
    # biggest loss first
    assert [(line["fixmedins_code"], line["delta"]) for line in sim["lines"]] == [
        (_code(world.h1), "-9.50"),
        (_code(world.h2), "10.00"),
    ]
    assert sim["point_values"]["draft"] == {"employee": "11.98"}
    status, _ = await world.gz_bureau.get(f"/v1/simulations/{world.sz_sim}")
    assert status == 404
    status, _ = await ops.get(f"/v1/simulations/{world.sz_sim}")
    assert status == 200
    for bad in ("/v1/simulations/abc", "/v1/simulations/0", "/v1/settlement/runs/x"):
        status, _ = await ops.get(bad)
        assert status == 404, bad
    status, refused = await ops.get("/v1/simulations?year=1999")
    assert status == 400 and refused["errors"][0]["field"] == "year"


def _rule(payload: Any) -> tuple[str, str]:
    error = payload["errors"][0]
    return error["rule"], error["field"]


async def test_special_review_over_http(world: World, stack: Stack, ops: Client) -> None:
    code, other = _code(world.h1), _code(world.h2)
    body = {"fixmedins_code": code, "setl_id": "S000001", "reason": "ICU 45 天"}
    status, opened = await world.h1.post("/v1/special-reviews", body)
    assert status == 201, opened
    rid = opened["review_id"]
    assert opened["requested_by"] == code and opened["requested_at"].endswith("+08:00")

    cases = [
        (world.h1, {**body, "setl_id": "S000001"}, 409, ("REVIEW_DUPLICATE", "setl_id")),
        (world.h1, {**body, "fixmedins_code": other}, 403, ("REVIEW_NOT_YOURS", "fixmedins_code")),
        (world.h1, {**body, "setl_id": "NOPE"}, 404, ("REVIEW_CASE_UNKNOWN", "setl_id")),
        (world.sz_bureau, {**body, "setl_id": "S000002"}, 404, ("REVIEW_CASE_UNKNOWN", "setl_id")),
        (world.h1, {**body, "setl_id": "S000002", "reason": " "}, 422, ("REVIEW_FIELD", "reason")),
        (world.h1, {**body, "fixmedins_code": 7}, 422, ("REVIEW_FIELD", "fixmedins_code")),
        (world.h1, b"[1, 2]", 400, ("REVIEW_BODY", "$")),
        (world.h1, b"{not json", 400, ("REVIEW_BODY", "$")),
    ]
    for client, doc, want_status, want in cases:
        status, payload = await client.post("/v1/special-reviews", doc)
        assert (status, _rule(payload)) == (want_status, want), (doc, payload)

    # The bureau opens one for its city's hospital.
    status, second = await world.gz_bureau.post(
        "/v1/special-reviews", {"fixmedins_code": other, "setl_id": "S000003", "reason": "新技术"}
    )
    assert status == 201 and second["requested_by"].startswith("city 440100: test-city-440100")

    decision = {"decision": "approve", "approved_points": "850.5", "reason": "专家评议通过"}
    path = f"/v1/special-reviews/{rid}/decision"
    status, payload = await world.h1.post(path, decision)
    assert (status, _rule(payload)) == (403, ("FORBIDDEN_ROLE", "$"))
    status, payload = await world.sz_bureau.post(path, decision)
    assert (status, _rule(payload)) == (404, ("REVIEW_UNKNOWN", "review_id"))
    status, payload = await world.gz_bureau.post(path, {**decision, "approved_points": 0})
    assert (status, _rule(payload)) == (422, ("REVIEW_POINTS", "approved_points"))
    status, payload = await world.gz_bureau.post(path, {**decision, "decision": "yes"})
    assert (status, _rule(payload)) == (422, ("REVIEW_FIELD", "decision"))
    # No settlement policy for 440100/2032: nothing is approved, the error names what is missing.
    status, payload = await world.gz_bureau.post(path, decision)
    assert (status, _rule(payload)) == (422, ("REVIEW_NO_POLICY", "special_review_quota_permille"))
    assert "440100" in payload["errors"][0]["message_en"]

    # 10 scored cases of 440100 in 2032 at 100‰: one approval fits, the second does not.
    await policy(stack.pool, "440100", REVIEWED, "100")
    status, decided = await world.gz_bureau.post(path, decision)
    assert status == 200, decided
    assert (decided["status"], decided["approved_points"]) == ("approved", "850.5")
    status, payload = await ops.post(path, {"decision": "reject", "reason": "again"})
    assert (status, _rule(payload)) == (409, ("REVIEW_DECIDED", "review_id"))
    status, payload = await ops.post(
        f"/v1/special-reviews/{second['review_id']}/decision", decision
    )
    assert (status, _rule(payload)) == (422, ("REVIEW_QUOTA", "special_review_quota_permille"))
    assert "at most 1 approved (100‰ of 10 cases)" in payload["errors"][0]["message_en"]
    status, rejected = await ops.post(
        f"/v1/special-reviews/{second['review_id']}/decision",
        {"decision": "reject", "reason": "不符合条件"},
    )
    assert status == 200 and rejected["decided_by"].startswith("ops: test-ops")

    status, shown = await world.h1.get(f"/v1/special-reviews/{rid}")
    assert status == 200
    assert [(a["action"], a["actor"]) for a in shown["audit"]] == [
        ("open", code),
        ("approve", "city 440100: test-city-440100"),
    ]
    assert shown["audit"][1]["before"]["status"] == "open"
    assert shown["audit"][1]["after"]["approved_points"] == "850.5"
    status, payload = await world.h2.get(f"/v1/special-reviews/{rid}")
    assert (status, _rule(payload)) == (404, ("REVIEW_UNKNOWN", "review_id"))
    status, payload = await ops.get("/v1/special-reviews/abc")
    assert status == 404

    status, mine = await world.h2.get("/v1/special-reviews")
    assert [r["review_id"] for r in mine["reviews"]] == [second["review_id"]]
    status, city = await world.gz_bureau.get(f"/v1/special-reviews?year={REVIEWED}&status=approved")
    assert [r["review_id"] for r in city["reviews"]] == [rid]
    status, none = await world.sz_bureau.get(f"/v1/special-reviews?year={REVIEWED}")
    assert none == {"total": 0, "reviews": []}
    status, payload = await world.h1.get(f"/v1/special-reviews?hospital={other}")
    assert status == 403
