"""The subscription API: paged and streamed scored cases, authorised per city, over real HTTP
from a real pipeline (gateway → Kafka → workers → PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import msgspec
import pytest

from gateway.runtime import Stack
from tests.builders import dip_document, push, wait_scored
from tests.conftest import Client, city_client, register_hospital

pytestmark = pytest.mark.integration


def key(doc: dict[str, Any]) -> str:
    return f"{doc['fixmedins_code']}:{doc['input']['setlinfo']['setl_id']}"


async def events(
    stack: Stack, client: Client, path: str, last_event_id: int | None = None
) -> list[dict[str, Any]]:
    """The events of one SSE response, read to its end."""
    headers = client.headers("GET", path, b"")
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    async with (
        aiohttp.ClientSession() as http,
        http.get(stack.url + path, headers=headers) as resp,
    ):
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        text = (await resp.read()).decode()
    out = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if fields.get("event") == "case":
            item = msgspec.json.decode(fields["data"])
            assert int(fields["id"]) == item["pos"]
            out.append(item)
    return out


@pytest.fixture
async def scene(stack: Stack, hospital: Client, rules: dict[str, Any]) -> dict[str, Any]:
    """Three fresh cases after the current position: Guangzhou same-city, Guangzhou treating a
    Shenzhen patient (cross-city), Shenzhen same-city."""
    start = await stack.pool.fetchval("SELECT coalesce(max(pos), 0) FROM scored_cases")
    shenzhen = await register_hospital(stack, "H44030000001", "440300")
    gz = dip_document()
    cross = dip_document(insured="440300")
    sz = dip_document(code="H44030000001", area="440300")
    await push(hospital, gz, cross)
    await push(shenzhen, sz)
    await wait_scored(
        stack.pool,
        {(d["fixmedins_code"], d["input"]["setlinfo"]["setl_id"]): 1 for d in (gz, cross, sz)},
    )
    return {"start": start, "gz": key(gz), "cross": key(cross), "sz": key(sz), "doc": gz}


async def page(client: Client, query: str) -> tuple[int, Any]:
    return await client.get(f"/v1/scored?{query}")


async def test_each_city_sees_its_own_cases_with_its_role(
    stack: Stack, hospital: Client, ops: Client, scene: dict[str, Any]
) -> None:
    mine = {scene["gz"], scene["cross"], scene["sz"]}
    after = scene["start"]

    sz_city = await city_client(stack, "440300")
    status, body = await page(sz_city, f"after={after}&limit=1000")
    assert status == 200, body
    seen = {i["case_key"]: i["role"] for i in body["items"] if i["case_key"] in mine}
    assert seen == {scene["sz"]: "treating", scene["cross"]: "insured"}
    cross = next(i for i in body["items"] if i["case_key"] == scene["cross"])
    assert cross["treating_city"] == "440100" and cross["status"] == "scored"

    gz_city = await city_client(stack, "440100")
    status, body = await page(gz_city, f"after={after}&limit=1000")
    seen = {i["case_key"]: i["role"] for i in body["items"] if i["case_key"] in mine}
    assert seen == {scene["gz"]: "treating", scene["cross"]: "treating"}

    # A city token cannot read another city.
    status, body = await page(sz_city, "city=440100")
    assert status == 403 and body["errors"][0]["rule"] == "FORBIDDEN_CITY"
    assert set(body["errors"][0]) == {
        "rule",
        "field",
        "dimension",
        "severity",
        "message",
        "message_en",
    }

    status, body = await page(ops, f"after={after}&limit=1000")
    assert mine <= {i["case_key"] for i in body["items"]}
    status, body = await page(ops, f"after={after}&city=440300&role=insured")
    assert [i["case_key"] for i in body["items"] if i["case_key"] in mine] == [scene["cross"]]

    # A hospital sees only its own cases.
    status, body = await page(hospital, f"after={after}&limit=1000")
    assert status == 200
    assert {i["case_key"] for i in body["items"]} & mine == {scene["gz"], scene["cross"]}
    assert all(i["fixmedins_code"] == "H44010000001" for i in body["items"])

    # No identity in what subscribers get.
    text = msgspec.json.encode(body).decode()
    setl = scene["doc"]["input"]["setlinfo"]
    assert setl["certno"] not in text and setl["psn_name"] not in text
    assert "psn_name" not in text and "certno" not in text


async def test_paging_by_position_and_time(
    stack: Stack, ops: Client, scene: dict[str, Any]
) -> None:
    # One city's changes since the scene began: other tests of the session (and the cases
    # their rules let the re-scorer score meanwhile) may have written thousands elsewhere.
    city = "city=440300"
    status, whole = await page(ops, f"after={scene['start']}&{city}&limit=1000")
    assert status == 200 and not whole["has_more"] and whole["items"]
    keys, after, more = [], scene["start"], True
    for _ in range(1000):
        status, body = await page(ops, f"after={after}&{city}&limit=1")
        assert status == 200 and len(body["items"]) <= 1
        # has_more is exact: the previous page said whether this one has an item
        assert more == bool(body["items"]), (keys, body)
        if not body["items"]:
            assert body["next_after"] == after and not body["has_more"]
            break
        assert body["next_after"] == body["items"][0]["pos"] > after
        keys.append(body["items"][0]["case_key"])
        after, more = body["next_after"], body["has_more"]
    assert keys == [i["case_key"] for i in whole["items"]]
    assert not more  # the last full page (one item) said there was no other

    status, body = await page(ops, "since=2099-01-01T00:00:00%2B08:00")
    assert status == 200 and body["items"] == []
    stored = whole["items"][0]["stored_at"]
    assert stored.endswith("+08:00")  # one clock: China Standard Time, labelled
    first = stored.replace("+", "%2B")
    status, body = await page(ops, f"since={first}&{city}&limit=1000")
    assert {i["case_key"] for i in whole["items"]} <= {i["case_key"] for i in body["items"]}
    # the same moment without its offset is read in +08:00
    status, body = await page(ops, f"since={stored.removesuffix('+08:00')}&{city}&limit=1000")
    assert {i["case_key"] for i in whole["items"]} <= {i["case_key"] for i in body["items"]}
    later = whole["items"][-1]["stored_at"].removesuffix("+08:00")
    status, body = await page(ops, f"since={later}&{city}&limit=1000")
    assert status == 200 and whole["items"][-1]["case_key"] in {
        i["case_key"] for i in body["items"]
    }

    for bad in ("limit=abc", "limit=0", "since=yesterday", "role=payer", "city=44"):
        status, body = await page(ops, bad)
        assert status == 400 and body["errors"][0]["rule"] == "BAD_QUERY", bad


async def test_stream_delivers_stored_and_new_cases(
    stack: Stack, hospital: Client, scene: dict[str, Any]
) -> None:
    sz_city = await city_client(stack, "440300")
    # Other tests' cases of this city may be stored meanwhile: look at ours, in stream order.
    seen = await events(
        stack, sz_city, f"/v1/scored/stream?after={scene['start']}&max_events=200&max_seconds=3"
    )
    ours = {scene["cross"]: "insured", scene["sz"]: "treating"}
    got = [e for e in seen if ours.get(e["case_key"]) == e["role"]]
    assert sorted((e["case_key"], e["role"]) for e in got) == sorted(ours.items())
    assert [e["pos"] for e in seen] == sorted(e["pos"] for e in seen)
    # A reconnecting EventSource resumes after its Last-Event-ID.
    resumed = await events(
        stack, sz_city, "/v1/scored/stream?max_events=1", last_event_id=got[0]["pos"]
    )
    assert [e["pos"] for e in resumed] == [next(e["pos"] for e in seen if e["pos"] > got[0]["pos"])]

    # A live stream: the next cross-city case shows up as it is stored.
    last = max(e["pos"] for e in seen)
    wanted: tuple[str, str] | None = None

    async def follow() -> set[tuple[str, str]]:
        """One event per response, until ours (other tests' cases of the city may come
        first, and a response may end with none when the pipeline is slow)."""
        nonlocal last
        arrived: set[tuple[str, str]] = set()
        while wanted not in arrived:
            for event in await events(
                stack, sz_city, f"/v1/scored/stream?after={last}&max_events=1&max_seconds=5"
            ):
                last = event["pos"]
                arrived.add((event["case_key"], event["role"]))
        return arrived

    new = dip_document(insured="440300")
    wanted = (key(new), "insured")
    live = asyncio.create_task(follow())
    await asyncio.sleep(0.5)
    await push(hospital, new)
    assert wanted in await asyncio.wait_for(live, 60)

    status, _ = await sz_city.get("/v1/scored/stream?city=440100")
    assert status == 403


async def test_the_endpoints_describe_themselves_for_the_openapi_document(stack: Stack) -> None:
    from gateway import openapi

    # Registered when the app was built (gateway.openapi.register_paths).
    registered = openapi._EXTRA_PATHS
    for path in ("/v1/scored", "/v1/scored/stream"):
        operation = registered[path]["get"]
        assert {"400", "401", "403"} <= set(operation["responses"])
        assert {"city", "after", "since", "limit"} <= {p["name"] for p in operation["parameters"]}
    status, spec, _ = await Client(stack).request("GET", "/openapi.json")
    assert status == 200
    if "/v1/scored" in spec["paths"]:  # once gateway.openapi merges registered paths
        assert spec["paths"]["/v1/scored"] == registered["/v1/scored"]
