"""The `/ops` page's settlement card in a real headless Chromium: the latest settlement runs,
simulations and open special reviews of the caller's scope, each linked to its API answer."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.runtime import Stack
from tests.builders import new_code
from tests.conftest import register_hospital
from tests.gateway.settlement_rows import scored_cases, settlement_run, simulation
from tests.gateway.test_ops_page import browser, opened_page, until  # noqa: F401

pytestmark = pytest.mark.integration


async def test_the_settlement_card_links_runs_simulations_and_reviews_in_chromium(
    stack: Stack,
    browser: tuple[aiohttp.ClientSession, int],  # noqa: F811
) -> None:
    code = new_code()
    client = await register_hospital(stack, code, "440100")
    await scored_cases(stack.pool, code, 2, year=2034)
    run = await settlement_run(stack.pool, "440100", "2034-03", [(code, "employee", "4321.09")])
    sim = await simulation(stack.pool, "440100", 2034, [(code, "100.00", "80.25")])
    status, review = await client.post(
        "/v1/special-reviews", {"fixmedins_code": code, "setl_id": "S000001", "reason": "ECMO"}
    )
    assert status == 201, review
    rid = review["review_id"]
    bureau = await stack.registry.issue_token("city", "test-city-settlement-page", "440100")

    async with opened_page(stack, browser, bureau) as tools:
        await until(tools, f"document.querySelector('#runs tr[data-run=\"{run}\"]') !== null")
        line = await tools.evaluate(
            f"document.querySelector('#runs tr[data-run=\"{run}\"]').innerText"
        )
        href = await tools.evaluate(
            f"document.querySelector('#runs tr[data-run=\"{run}\"] a').getAttribute('href')"
        )
        sim_line = await tools.evaluate(
            f"document.querySelector('#sims tr[data-sim=\"{sim}\"]').innerText"
        )
        review_line = await tools.evaluate(
            f"document.querySelector('#reviews tr[data-review=\"{rid}\"]').innerText"
        )
        reviews_href = await tools.evaluate("document.getElementById('reviews-link').href")
        # the link answers in the browser's session: the run with its lines
        fetched = await tools.call(
            "Runtime.evaluate",
            expression=f"fetch('{href}', {{credentials: 'same-origin'}}).then(r => r.text())",
            awaitPromise=True,
            returnByValue=True,
        )
        text = fetched["result"]["value"]
    assert href == f"/v1/settlement/runs/{run}"
    assert "2034-03" in line and "4321.09" in line and "+08:00" in line
    assert "-19.75" in sim_line and "2034" in sim_line
    assert f"{code}:S000001" in review_line
    assert reviews_href.endswith("/v1/special-reviews?city=440100&status=open")
    assert '"fixmedins_code":"' + code in text and '"payable":"4321.09"' in text
