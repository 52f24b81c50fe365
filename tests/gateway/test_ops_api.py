"""The quality API over a real run: what ops and a city bureau see, and what they may not."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import date, timedelta
from typing import Any

import aiohttp
import msgspec
import pytest

from gateway.ops import COOKIE
from gateway.ops.reports import period
from gateway.runtime import Stack
from tests.builders import new_code, push_mix, wait_received
from tests.conftest import Client, city_client, register_hospital


@pytest.fixture(scope="module")
async def two_cities(stack: Stack) -> dict[str, str]:
    """One hospital in Guangzhou and one in Shenzhen, each with the mixed upload of 9 lists."""
    gz, sz = new_code(), f"H4403{new_code()[5:]}"
    for code, admdvs in ((gz, "440100"), (sz, "440300")):
        client = await register_hospital(stack, code, admdvs)
        await push_mix(client, code, admdvs)
    for code in (gz, sz):
        await wait_received(stack.pool, code, 9)
    return {"gz": gz, "sz": sz}


def _row(body: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    (row,) = [r for r in body["rows"] if r[key] == value]
    return row


def test_the_default_period_is_the_last_seven_days() -> None:
    assert period(None, None, today=date(2026, 3, 10)) == (date(2026, 3, 4), date(2026, 3, 10))
    assert period("2026-01-01", "2026-01-31") == (date(2026, 1, 1), date(2026, 1, 31))


@pytest.mark.integration
async def test_ops_sees_every_hospital_with_rates_lags_and_dimensions(
    stack: Stack, ops: Client, two_cities: dict[str, str]
) -> None:
    gz = two_cities["gz"]
    status, body = await ops.get(f"/v1/quality/report?by=hospital&hospital={gz}")
    assert status == 200, body
    row = _row(body, "fixmedins_code", gz)
    assert row["name"].startswith("测试医院") and row["city"] == "440100"
    assert (row["received"], row["accepted"], row["rejected"], row["warned"]) == (9, 7, 2, 2)
    assert (row["revisions"], row["resubmissions"]) == (1, 1)
    assert row["pass_rate"] == round(7 / 9, 4) and row["clean_rate"] == round(5 / 9, 4)
    assert row["timely_rate"] == 1.0 and row["lag_known"] == 9  # discharged ~3 days ago
    assert 48 <= row["lag_p50_h"] <= 96
    assert row["dimensions"]["完整性"] == {"reject": 2, "warn": 0}
    assert row["dimensions"]["规范性"] == {"reject": 0, "warn": 2}

    status, body = await ops.get("/v1/quality/report?by=city")
    cities = {r["city"]: r for r in body["rows"]}
    assert {"440100", "440300"} <= set(cities)
    assert cities["440300"]["received"] >= 9 and cities["440300"]["hospitals"] >= 1

    status, body = await ops.get(f"/v1/quality/top-rules?hospital={gz}")
    assert status == 200
    (top,) = body["rows"]  # reject rules only by default
    assert (top["rule"], top["dimension"], top["records"]) == ("REQ_FIELD", "完整性", 2)
    assert top["examples"] and all(e.startswith("rejected:") for e in top["examples"])
    status, body = await ops.get(f"/v1/quality/top-rules?hospital={gz}&severity=all")
    assert [r["rule"] for r in body["rows"]] == ["FMT_POSCODE", "REQ_FIELD"]


@pytest.mark.integration
async def test_csv_export_has_one_line_per_hospital_and_flat_dimensions(
    ops: Client, two_cities: dict[str, str]
) -> None:
    gz = two_cities["gz"]
    status, body, headers = await ops.request(
        "GET", f"/v1/quality/report?by=hospital&hospital={gz}&format=csv"
    )
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == 1 and rows[0]["fixmedins_code"] == gz
    assert rows[0]["received"] == "9" and rows[0]["完整性_reject"] == "2"
    status, body, _ = await ops.request(
        "GET", f"/v1/quality/report?by=rule&hospital={gz}", headers={"Accept": "text/csv"}
    )
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("rule,severity,dimension") and len(lines) == 3


@pytest.mark.integration
async def test_a_city_bureau_sees_its_own_city_only(
    stack: Stack, two_cities: dict[str, str]
) -> None:
    gz, sz = two_cities["gz"], two_cities["sz"]
    shenzhen = await city_client(stack, "440300")
    status, body = await shenzhen.get("/v1/quality/report?by=hospital")
    assert status == 200
    codes = {r["fixmedins_code"] for r in body["rows"]}
    assert sz in codes and gz not in codes
    assert {r["city"] for r in body["rows"]} == {"440300"}
    status, body = await shenzhen.get("/v1/quality/report?by=city")
    assert [r["city"] for r in body["rows"]] == ["440300"]

    for path in (
        "/v1/quality/report?city=440100",
        f"/v1/quality/report?hospital={gz}",
        f"/v1/quality/top-rules?hospital={gz}",
        "/v1/quality/dashboard?city=440100",
    ):
        status, body = await shenzhen.get(path)
        assert status == 403, path
        assert body["errors"][0]["rule"] == "FORBIDDEN_REGION"
    status, body = await shenzhen.get("/v1/quality/dashboard")
    assert status == 200 and body["scope"] == {"role": "city", "city": "440300"}
    assert {h["fixmedins_code"] for h in body["hospitals"]} >= {sz}
    assert gz not in {h["fixmedins_code"] for h in body["hospitals"]}
    assert body["pipeline"] == []  # pipeline internals are for ops


@pytest.mark.integration
async def test_hospitals_and_strangers_are_refused(
    stack: Stack, hospital: Client, two_cities: dict[str, str]
) -> None:
    for path in ("/v1/quality/report", "/v1/quality/alerts", "/v1/quality/dashboard"):
        status, body = await hospital.get(path)
        assert status == 403 and body["errors"][0]["rule"] == "FORBIDDEN_ROLE", path
    for path in ("/v1/quality/report", "/v1/quality/alerts", "/v1/quality/dashboard"):
        status, body = await Client(stack).get(path)
        assert status == 401 and body["errors"][0]["rule"] == "AUTH_MISSING", path
    status, body = await Client(stack, token="not-a-token").get("/v1/quality/report")
    assert status == 401


@pytest.mark.integration
async def test_bad_queries_are_400(ops: Client, two_cities: dict[str, str]) -> None:
    for query in (
        "by=patient",
        "from=2026-13-01",
        "from=2026-02-01&to=2026-01-01",
        "city=44",
        "hospital=X1",
        "timely_days=30",
        "timely_days=²",
        "city=440100%0A",
    ):
        status, body = await ops.get(f"/v1/quality/report?{query}")
        assert status == 400 and body["errors"][0]["rule"] == "BAD_QUERY", query
    for path in (
        "/v1/quality/top-rules?limit=abc",
        "/v1/quality/top-rules?limit=²",
        "/v1/quality/top-rules?severity=fatal",
        "/v1/quality/alerts?limit=0",
        "/v1/quality/dashboard?to=yesterday",
    ):
        status, body = await ops.get(path)
        assert status == 400 and body["errors"][0]["rule"] == "BAD_QUERY", path


def test_the_endpoints_describe_themselves_for_the_openapi_document() -> None:
    from aiohttp import web

    from gateway import openapi
    from gateway.ops import add_routes

    add_routes(web.Application())
    for path in ("/v1/quality/report", "/v1/quality/top-rules", "/v1/quality/alerts"):
        operation = openapi._EXTRA_PATHS[path]["get"]
        assert {"400", "401", "403"} <= set(operation["responses"])
    report = openapi._EXTRA_PATHS["/v1/quality/report"]["get"]
    assert {"from", "to", "city", "hospital", "by", "format"} <= {
        p["name"] for p in report["parameters"]
    }


@pytest.mark.integration
async def test_no_personal_data_in_any_answer(
    stack: Stack, ops: Client, two_cities: dict[str, str]
) -> None:
    everything = b""
    for path in (
        "/v1/quality/report?by=hospital",
        "/v1/quality/report?by=rule",
        "/v1/quality/report?by=day&format=csv",
        "/v1/quality/top-rules?severity=all",
        "/v1/quality/alerts",
        "/v1/quality/dashboard",
    ):
        status, body, _ = await ops.request("GET", path)
        assert status == 200, path
        everything += body if isinstance(body, bytes) else msgspec.json.encode(body)
    # document() names every patient 张三; certno and phone numbers are 18/11 digits.
    assert "张三".encode() not in everything
    # (a whole token: not the digits inside a hospital code, a receipt id or a timestamp)
    assert not re.search(rb"(?<![\w.:+-])(\d{17}[\dX]|1[3-9]\d{9})(?![\w.:])", everything)


@pytest.mark.integration
async def test_login_sets_an_httponly_strict_cookie_and_the_page_needs_it(
    stack: Stack, two_cities: dict[str, str]
) -> None:
    token = await stack.registry.issue_token("ops", "test-ops-login")
    jar = aiohttp.CookieJar(unsafe=True)  # the gateway listens on an IP address
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(stack.url + "/ops", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/ops/login"
        async with http.request("TRACE", stack.url + "/ops/login") as resp:
            assert resp.status == 405 and resp.headers["Allow"] == "GET, HEAD, POST"
        csrf = await _login_form(http, stack)
        async with http.post(
            stack.url + "/ops/login", data={"token": "wrong", "csrf": csrf}, allow_redirects=False
        ) as resp:
            assert resp.status == 401
        csrf = await _login_form(http, stack)
        async with http.post(
            stack.url + "/ops/login", data={"token": token, "csrf": csrf}, allow_redirects=False
        ) as resp:
            assert resp.status == 303
            cookie = resp.cookies[COOKIE]
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
            # the session's own id, not the long-lived token
            assert cookie.value.startswith("dipgw_session_") and token not in str(resp.headers)
        session = cookie.value
        async with http.get(stack.url + "/ops") as resp:
            assert resp.status == 200 and "数据质量" in await resp.text()
            assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        async with http.get(stack.url + "/v1/quality/dashboard") as resp:
            assert resp.status == 200
        async with http.get(stack.url + "/ops/static/ops.js") as resp:
            assert resp.status == 200 and "javascript" in resp.headers["Content-Type"]
        async with http.get(stack.url + "/ops/static/..%2Fops.py") as resp:
            assert resp.status == 404
        async with http.post(stack.url + "/ops/logout", allow_redirects=False) as resp:
            assert resp.status == 303
        async with http.get(stack.url + "/ops", allow_redirects=False) as resp:
            assert resp.status == 303
    # logging out ended the session on the server: the old cookie value is worthless
    status, _, _ = await Client(stack, token=session).request("GET", "/v1/quality/dashboard")
    assert status == 401


async def _login_form(http: aiohttp.ClientSession, stack: Stack, **headers: str) -> str:
    async with http.get(stack.url + "/ops/login", headers=headers) as resp:
        assert resp.status == 200
        found = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert found is not None
        return found[1]


@pytest.mark.integration
async def test_login_refuses_cross_site_posts_and_marks_the_cookie_secure_behind_https(
    stack: Stack,
) -> None:
    """Login CSRF (issue 11): a cross-origin POST got a session cookie."""
    token = await stack.registry.issue_token("ops", "test-ops-csrf")
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        csrf = await _login_form(http, stack)
        login = stack.url + "/ops/login"
        for data, headers in (
            ({"token": token, "csrf": csrf}, {"Origin": "https://evil.example"}),
            ({"token": token}, {}),  # the form's own value missing
            ({"token": token, "csrf": "guessed"}, {}),
        ):
            async with http.post(login, data=data, headers=headers, allow_redirects=False) as r:
                assert r.status == 403 and COOKIE not in r.cookies, data
                assert (await r.json())["errors"][0]["rule"] == "FORBIDDEN_CSRF"
        proxied = {"X-Forwarded-Proto": "https"}
        csrf = await _login_form(http, stack, **proxied)
    async with aiohttp.ClientSession() as http:  # a fresh jar: the cookie set over "https"
        http.cookie_jar.update_cookies({"dipgw_csrf": csrf})
        async with http.post(
            login, data={"token": token, "csrf": csrf}, headers=proxied, allow_redirects=False
        ) as resp:
            assert resp.status == 303
            assert resp.cookies[COOKIE]["secure"]


@pytest.mark.integration
async def test_revoking_the_token_ends_its_sessions(stack: Stack) -> None:
    token = await stack.registry.issue_token("ops", "test-ops-revoke")
    session = await stack.registry.open_session(token, timedelta(hours=1))
    assert session is not None
    assert (await Client(stack, token=session).request("GET", "/v1/quality/dashboard"))[0] == 200
    await stack.registry.revoke_token("test-ops-revoke")
    assert (await Client(stack, token=session).request("GET", "/v1/quality/dashboard"))[0] == 401


def test_the_grafana_dashboard_uses_only_metrics_the_gateway_exports() -> None:
    from pathlib import Path

    from adapters.runtime.metrics import REGISTRY

    exported = set()
    for metric in REGISTRY.collect():
        exported |= {sample.name for sample in metric.samples} | {metric.name}
    # Labelled series exist once observed; their names are known up front.
    exported |= {f"{m.name}_bucket" for m in REGISTRY.collect() if m.type == "histogram"}
    exported |= {f"{m.name}_total" for m in REGISTRY.collect() if m.type == "counter"}
    dashboard = msgspec.json.decode(
        (Path(__file__).parents[2] / "deploy" / "grafana" / "dipgw-pipeline.json").read_bytes()
    )
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(dipgw_[a-z_]+)", target["expr"])
    }
    assert used and used <= exported, used - exported
    assert {"dipgw_consumer_lag_messages", "dipgw_stage_latency_seconds_bucket"} <= used


@pytest.mark.integration
async def test_metrics_show_consumer_lag_per_worker_and_partition_and_stage_latency(
    stack: Stack, ops: Client, two_cities: dict[str, str]
) -> None:
    text = ""
    for _ in range(50):
        _, body, _ = await ops.request("GET", "/metrics")
        text = body.decode()
        if 'worker="quality"' in text and "dip.settlement.rejected.v1" in text:
            break
        await asyncio.sleep(0.2)
    lag = [line for line in text.splitlines() if line.startswith("dipgw_consumer_lag_messages{")]
    assert any(
        'worker="quality"' in line and 'topic="dip.settlement.rejected.v1"' in line for line in lag
    )
    assert any('worker="sink"' in line and 'partition="' in line for line in lag)
    assert 'dipgw_stage_latency_seconds_count{worker="quality"}' in text
    depth = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("dipgw_topic_end_offset{") and "dip.settlement.rejected.v1" in line
    ]
    assert sum(depth) >= 4  # both hospitals' rejected lists at least
