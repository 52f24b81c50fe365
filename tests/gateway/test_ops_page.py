"""The `/ops` dashboard opened in a real headless Chromium (Debian's package) after a real run.

Driven over the DevTools protocol: the session cookie is set as the login form would, the page
loads its script and data from the gateway alone (no other host is contacted), and a screenshot
is kept in `test-artifacts/ops-dashboard.png`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
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
from tests.builders import new_code, push_mix, wait_received
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
        for _ in range(200):
            if await tools.evaluate("document.body && document.body.dataset.ready") == "1":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(
                f"the dashboard did not render: {await tools.evaluate('document.body.innerText')}"
            )
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
    assert "张三" not in text  # no personal data on the page

    # Everything came from the gateway: no CDN, no other host.
    urls = [
        e["params"]["request"]["url"]
        for e in tools.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert any(u.endswith("/ops/static/ops.js") for u in urls)
    assert all(u.startswith(stack.url) or u.startswith("data:") for u in urls), urls
