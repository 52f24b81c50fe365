"""One clock and one way of writing numbers, end to end (issue 14, point 6): uploads go through
the real gateway, Kafka and workers, and every answer about them (upload, receipt, case,
`/v1/scored` page and stream) and every message on every topic they reach is read back.

Nowhere may a moment be written without its offset or in UTC (`Z`, `+00:00`): all are +08:00.
Money (`total_cost`, `estimated_payment`) has exactly two decimals, a point value at least
two; ratios and coefficients at most `RATIO_DIGITS`. City topics carry no `facts` (the
internal `scored_all` copy does), `treatment` is never `""`, and a scored case names its
group (病种名称)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import msgspec
import pytest

from contracts.messages import RATIO_DIGITS
from gateway.runtime import Stack
from tests.builders import dip_document, read_topic, wait_scored, wait_stored
from tests.conftest import Client, city_client

pytestmark = pytest.mark.integration

_ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_MONEY = re.compile(r"-?\d+\.\d{2}")
_RATE = re.compile(r"\d+\.\d{2,}")


def _leaves(value: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def clean(where: str, doc: Any, *, public: bool = True) -> list[str]:
    """What in one answer or message breaks the rules above (empty: nothing). `public`: what
    cities and hospitals receive (the internal grouped topic carries the DIP core's own
    `GroupResult`, where no treatment is `""`)."""
    bad = []
    for path, value in _leaves(doc):
        name = path.rsplit(".", 1)[-1]
        moment = isinstance(value, str) and _ISO_MOMENT.match(value) is not None
        if moment and not value.endswith("+08:00"):
            utc = value.endswith(("Z", "+00:00"))
            bad.append(f"{where} {path}: {'UTC' if utc else 'moment'} {value!r}")
        money = name in ("total_cost", "estimated_payment") and value is not None
        if money and not (isinstance(value, str) and _MONEY.fullmatch(value)):
            bad.append(f"{where} {path}: money {value!r}")
        rate = name == "point_value" and value is not None
        if rate and not (isinstance(value, str) and _RATE.fullmatch(value)):
            bad.append(f"{where} {path}: point value {value!r}")
        ratio = name in ("ratio", "level_coefficient", "adjustment") and value is not None
        if ratio and round(value, RATIO_DIGITS) != value:
            bad.append(f"{where} {path}: {value!r} beyond {RATIO_DIGITS} decimals")
        if public and name == "treatment" and value == "":
            bad.append(f"{where} {path}: empty treatment")
    return bad


async def _stream(stack: Stack, client: Client, path: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(stack.url + path, headers=client.headers("GET", path, b"")) as resp,
    ):
        assert resp.status == 200, await resp.text()
        text = (await resp.read()).decode()
    return [
        msgspec.json.decode(line.removeprefix("data: "))
        for line in text.splitlines()
        if line.startswith("data: ")
    ]


async def test_answers_and_topics_have_one_clock_and_clean_numbers(
    stack: Stack, hospital: Client, ops: Client, rules: dict[str, Any]
) -> None:
    start = await stack.pool.fetchval("SELECT coalesce(max(pos), 0) FROM scored_cases")
    # K35.8 + 47.0100 (GZ-C002, a named core group with an operation), a cross-city case and
    # a conservative one (no operation): every kind of group a city receives.
    same = dip_document(total="12000.00")
    cross = dip_document(insured="440300", total="25000.00", insutype="390")
    plain = dip_document(diag="J18.900", oprn=None, total="6000.00")
    docs = [same, cross, plain]
    bad: list[str] = []

    status, answer = await hospital.post("/v1/settlements/batch", {"records": docs})
    assert status == 200 and answer["accepted"] == 3, answer
    bad += clean("upload answer", answer)
    status, single = await hospital.post("/v1/settlements", dip_document())
    assert status in (200, 202), single
    bad += clean("single upload answer", single)
    results = [*answer["results"], single]

    code = "H44010000001"
    keys = {f"{code}:{d['input']['setlinfo']['setl_id']}" for d in docs}
    await wait_scored(stack.pool, {tuple(k.split(":")): 1 for k in keys})  # type: ignore[misc]
    for result in results:
        receipt = await wait_stored(hospital, result["receipt_id"])
        bad += clean("receipt", receipt)
        assert receipt["received_at"] <= receipt["accepted_at"] <= receipt["stored_at"]
    status, case = await hospital.get(f"/v1/cases/{code}/{same['input']['setlinfo']['setl_id']}")
    assert status == 200 and case["stored_at"], case
    bad += clean("case", case)

    status, page = await ops.get(f"/v1/scored?after={start}&limit=1000")
    assert status == 200
    items = [i for i in page["items"] if i["case_key"] in keys]
    assert len(items) == 3 and all("facts" not in i for i in items)
    bad += clean("/v1/scored", items)
    gz = await city_client(stack, "440100")
    streamed = await _stream(
        stack, gz, f"/v1/scored/stream?after={start}&max_events=500&max_seconds=2"
    )
    assert keys <= {e["case_key"] for e in streamed}
    bad += clean("/v1/scored/stream", [e for e in streamed if e["case_key"] in keys])

    t = stack.settings.topics
    accepted = await read_topic(stack.bootstrap, t.accepted, keys, expect=3)
    grouped = await read_topic(stack.bootstrap, t.grouped, keys, expect=3)
    internal = await read_topic(stack.bootstrap, t.scored_all, keys, expect=3)
    city = await read_topic(stack.bootstrap, "dip.case.scored.440100.v1", keys, expect=3)
    cross_key = f"{code}:{cross['input']['setlinfo']['setl_id']}"
    insured = await read_topic(stack.bootstrap, "dip.case.scored.440300.v1", {cross_key}, expect=1)
    assert (len(accepted), len(grouped), len(internal), len(city), len(insured)) == (3, 3, 3, 3, 1)
    bad += clean("accepted", [{k: v for k, v in m.items() if k != "document"} for m in accepted])
    bad += clean("grouped", grouped, public=False)
    bad += clean("scored_all", internal, public=False)
    bad += clean("city 440100", city) + clean("city 440300", insured)
    assert not bad, "\n".join(bad)

    assert all(m["facts"] is not None for m in internal)  # the internal copy keeps them
    for m in city + insured:
        assert "facts" not in m, m
        assert m["status"] == "scored" and m["group_name"], m
    by_key = {m["case_key"]: m for m in city}
    same_key = f"{code}:{same['input']['setlinfo']['setl_id']}"
    assert by_key[same_key]["group_code"] == "GZ-C002"
    assert by_key[same_key]["group_name"] == "其他和未特指的急性阑尾炎 / 腹腔镜下阑尾切除术"
    assert by_key[same_key]["total_cost"] == "12000.00"
    assert by_key[same_key]["estimated_payment"] == "10892.70"
    assert by_key[same_key]["treatment"] is None  # GZ-C002 states none
