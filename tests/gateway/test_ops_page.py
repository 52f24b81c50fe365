"""The `/ops` dashboard opened in a real headless Chromium (Debian's package) after a real run.

Driven over the DevTools protocol: the session cookie is set as the login form would, the page
loads its script and data from the gateway alone (no other host is contacted), and a screenshot
is kept in `test-artifacts/ops-dashboard.png`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.ops.session import COOKIE
from gateway.runtime import Stack
from tests.builders import document, new_code, push_mix, wait_received
from tests.conftest import register_hospital

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
ARTIFACTS = ROOT / "test-artifacts"


def _chromium() -> str:
    """Debian's chromium; installed by deploy/bootstrap.sh (as root) when missing."""
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0:
        subprocess.run(["bash", str(ROOT / "deploy" / "bootstrap.sh")], check=False, timeout=900)
        found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "chromium is not installed and deploy/bootstrap.sh could not install it: install"
            " Debian's chromium package (apt-get install chromium fonts-noto-cjk); this test"
            " never skips, so a run without it cannot pass for one that looked at the page"
        )
    return found


class DevTools:
    """The few DevTools protocol calls the test needs, over one page's websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self.ws.receive_json(), 30)
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


@pytest.fixture
async def browser() -> AsyncIterator[tuple[aiohttp.ClientSession, int]]:
    chromium = _chromium()
    profile = Path(tempfile.mkdtemp(prefix="dipgw-chromium-"))
    proc = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().count("\n") >= 1:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("chromium did not open its DevTools port")
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            yield http, port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.asynccontextmanager
async def opened_page(
    stack: Stack, browser: tuple[aiohttp.ClientSession, int], token: str
) -> AsyncIterator[DevTools]:
    """/ops opened in the browser with a session of `token`, once its script has drawn it."""
    http, port = browser
    async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
        (page,) = [t for t in await resp.json() if t["type"] == "page"]
    async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
        tools = DevTools(ws)
        await tools.call("Network.enable")
        await tools.call("Page.enable")
        await tools.call(
            "Emulation.setDeviceMetricsOverride",
            width=1440,
            height=1500,
            deviceScaleFactor=1,
            mobile=False,
        )
        # What POST /ops/login sets (tested in test_ops_api); here opened directly.
        session = await stack.registry.open_session(token, timedelta(hours=1))
        await tools.call(
            "Network.setCookie",
            name=COOKIE,
            value=session,
            url=stack.url,
            httpOnly=True,
            sameSite="Strict",
        )
        await tools.call("Page.navigate", url=f"{stack.url}/ops")
        await until(tools, "document.body && document.body.dataset.ready === '1'")
        yield tools


async def until(tools: DevTools, condition: str) -> None:
    """Wait (up to 20 s) until `condition` holds in the page; the page's text if it never does."""
    for _ in range(200):
        if await tools.evaluate(condition):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{condition}: {await tools.evaluate('document.body.innerText')}")


async def test_the_dashboard_shows_a_real_run_in_chromium(
    stack: Stack, browser: tuple[aiohttp.ClientSession, int]
) -> None:
    # A real run: three hospitals in two cities, clean, warned, rejected and corrected lists.
    codes = [new_code(), new_code(), f"H4403{new_code()[5:]}"]
    for code in codes:
        area = "440300" if code.startswith("H4403") else "440100"
        await push_mix(await register_hospital(stack, code, area), code, area)
    for code in codes:
        await wait_received(stack.pool, code, 9)
    token = await stack.registry.issue_token("ops", "test-ops-page")
    await asyncio.sleep(2)  # the workers measure their lag once a second

    async with opened_page(stack, browser, token) as tools:
        await asyncio.sleep(0.3)  # let layout settle before the picture
        text = await tools.evaluate("document.body.innerText")
        bars = await tools.evaluate("document.querySelectorAll('#chart-days svg rect').length")
        league = await tools.evaluate(
            "[...document.querySelectorAll('table.league tr')].map(r => r.innerText)"
        )
        shot = await tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)

    ARTIFACTS.mkdir(exist_ok=True)
    picture = ARTIFACTS / "ops-dashboard.png"
    picture.write_bytes(base64.b64decode(shot["data"]))
    assert picture.stat().st_size > 20_000

    assert "填写规范率" in text and "上传及时率" in text and "REQ_FIELD" in text
    assert bars >= 2  # clean, warned and rejected stacks of today at least
    for code in codes:
        (row,) = [r for r in league if code in r]
        assert "77.8%" in row  # 7 of 9 passed every reject rule
        # the last upload as the server wrote it: China Standard Time, labelled
        assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} \+08:00", row), row
    assert "张三" not in text  # no personal data on the page
    assert re.search(r"更新于 updated \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+08:00", text)

    # Everything came from the gateway: no CDN, no other host.
    urls = [
        e["params"]["request"]["url"]
        for e in tools.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert any(u.endswith("/ops/static/ops.js") for u in urls)
    assert all(u.startswith(stack.url) or u.startswith("data:") for u in urls), urls


async def test_ops_browse_open_and_replay_messages_in_chromium(
    stack: Stack, browser: tuple[aiohttp.ClientSession, int]
) -> None:
    """The message browser on the page: a rejected list opened masked, a dead letter opened
    and replayed with one click (the page's POST, with its header), the audit row shown; a
    city bureau's page has no browser at all."""
    code = new_code()
    client = await register_hospital(stack, code, "440100")
    trigger = f"poison_page_{code.lower()}"
    await stack.pool.execute(  # quality cannot apply this hospital's lists: dead letters
        f"""CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'quality cannot apply this list'; END $$;
            CREATE TRIGGER {trigger} BEFORE INSERT ON quality_daily FOR EACH ROW
            WHEN (NEW.fixmedins_code = '{code}') EXECUTE FUNCTION {trigger}()"""
    )
    try:
        doc = document("PG1", code=code, medfee_sumamt=None)
        certno = doc["input"]["setlinfo"]["certno"]
        status, _ = await client.post("/v1/settlements", doc)
        assert status == 422
        for _ in range(300):
            if await stack.pool.fetchval(
                "SELECT count(*) FROM dead_letters WHERE key = $1", f"{code}:PG1"
            ):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("not dead-lettered")
    finally:
        await stack.pool.execute(f"DROP TRIGGER {trigger} ON quality_daily")
        await stack.pool.execute(f"DROP FUNCTION {trigger}()")
    status, _ = await client.post("/v1/settlements", document("PG2", code=code, medfee_sumamt=None))
    assert status == 422
    await wait_received(stack.pool, code, 1)  # PG2, kept for the browser

    token = await stack.registry.issue_token("ops", "test-ops-browser")
    async with opened_page(stack, browser, token) as tools:
        assert await tools.evaluate("!document.getElementById('browser').hidden")
        await tools.evaluate(
            f"document.getElementById('m-hospital').value = '{code}';"
            "document.querySelector('#m-filters button').click()"
        )
        await until(tools, f"document.getElementById('m-list').innerText.includes('{code}')")
        listed = await tools.evaluate("document.getElementById('m-list').innerText")
        assert "REQ_FIELD" in listed and re.search(r"\d{2}:\d{2}:\d{2} \+08:00", listed)
        await tools.evaluate("document.querySelector('#m-list tr[data-path]').click()")
        await until(tools, "document.querySelector('#m-detail pre') !== null")
        opened = await tools.evaluate("document.getElementById('m-detail').innerText")
        assert "PG2" in opened and "REQ_FIELD" in opened
        assert "张三" not in opened and certno not in opened
        # a top rule's example opens in the browser too
        await tools.evaluate("document.getElementById('m-detail').replaceChildren()")
        await tools.evaluate("document.querySelector('#rules td.link').click()")
        await until(tools, "$('m-detail').innerText.includes('rejected list')")

        await tools.evaluate("document.querySelector('#m-tabs [data-kind=dead-letters]').click()")
        await until(tools, "document.getElementById('m-list').innerText.includes('RaiseError')")
        await tools.evaluate("document.querySelector('#m-list tr[data-path]').click()")
        await until(tools, "document.getElementById('m-replay') !== null")
        opened = await tools.evaluate("document.getElementById('m-detail').innerText")
        assert "PG1" in opened and "张三" not in opened and certno not in opened
        await tools.evaluate("document.getElementById('m-replay').click()")
        await until(tools, "document.getElementById('m-replay-result') !== null")
        result = await tools.evaluate("document.getElementById('m-replay-result').innerText")
        assert result.startswith("replayed") and "+08:00" in result and "test-ops-browser" in result
        await until(tools, "document.getElementById('m-audit').innerText.includes('replayed')")
        audit = await tools.evaluate("document.getElementById('m-audit').innerText")
        assert "test-ops-browser" in audit and "replayed" in audit
        assert await tools.evaluate("document.getElementById('m-replay').disabled")
        await asyncio.sleep(0.3)
        shot = await tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "ops-message-browser.png").write_bytes(base64.b64decode(shot["data"]))
    await wait_received(stack.pool, code, 2)  # the replayed PG1 counted

    bureau = await stack.registry.issue_token("city", "test-city-browser", "440100")
    async with opened_page(stack, browser, bureau) as tools:
        assert await tools.evaluate("document.getElementById('browser').hidden")


async def test_the_feeds_card_shows_a_failing_feed_with_its_error_in_chromium(
    stack: Stack, browser: tuple[aiohttp.ClientSession, int]
) -> None:
    """One line per feed source for ops: a feed whose intermediate database cannot be reached
    shows as failing, with the error and since when (+08:00), never the password."""
    from adapters.feeds import FeedConfig
    from gateway.feeds import FeedStore

    code = new_code()
    await register_hospital(stack, code, "440100")
    name = f"page-{code[-6:]}"
    store = FeedStore(stack.pool)
    await store.add(
        FeedConfig(
            name=name,
            kind="postgres",
            hospitals=[code],
            options={
                "dsn": "postgresql://dip@127.0.0.1:9/his",  # nothing listens on port 9
                "password": "Pa55word",
                "table": "his_setl",
                "time_column": "upd_time",
                "key_column": "id",
                "connect_timeout_s": 1,
            },
            poll_interval_s=0.2,
        )
    )
    try:
        for _ in range(300):
            (row,) = await store.rows(name)
            if row.state["last_error"]:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the feed never failed")
        token = await stack.registry.issue_token("ops", "test-ops-feeds")
        async with opened_page(stack, browser, token) as tools:
            await until(tools, "!document.getElementById('feeds-card').hidden")
            line = await tools.evaluate(
                f"document.querySelector('#feeds tr[data-feed=\"{name}\"]').innerText"
            )
        assert "failing" in line and "postgres" in line and code in line
        assert "127.0.0.1:9" in line  # the error names the host it could not reach
        assert re.search(r"\d{2}:\d{2}:\d{2} \+08:00", line), line
        assert "Pa55word" not in line
    finally:
        await store.remove(name)
