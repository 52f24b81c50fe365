"""Every process is scrapeable: its own metrics listener (`metrics.listen`) with `/metrics`,
`/readyz` and `/healthz`; the gateway's `/readyz`; the request histogram per canonical route,
build and process metrics; hospitals as a label only when `metrics.per_hospital` is on."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest

from adapters.runtime import metrics
from adapters.runtime.metrics_http import (
    MetricsListener,
    MetricsListenError,
    dependency_probes,
    listen_on,
    nth_listen,
)
from adapters.runtime.settings import MetricsSettings, Settings, load_settings
from gateway.children import child_env, spawn_up, stop_all
from gateway.runtime import LocalServices, Stack, running_stack
from tests.builders import document
from tests.clock import CLOCK
from tests.conftest import Client


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


def _series(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_processes_get_one_metrics_port_each() -> None:
    assert [nth_listen("0.0.0.0:9464", i) for i in range(3)] == [
        "0.0.0.0:9464",
        "0.0.0.0:9465",
        "0.0.0.0:9466",
    ]
    assert nth_listen("[::1]:9464", 2) == "[::1]:9466"
    assert nth_listen("127.0.0.1:0", 5) == "127.0.0.1:0"  # any free port, each its own


def test_metrics_settings_default_to_no_listener_and_no_hospital_label() -> None:
    assert load_settings(environ={}).metrics == MetricsSettings(listen="", per_hospital=False)
    loaded = load_settings(
        environ={"DIPGW_METRICS_LISTEN": "[::]:9464", "DIPGW_METRICS_PER_HOSPITAL": "true"}
    ).metrics
    assert (loaded.listen, loaded.per_hospital) == ("[::]:9464", True)


@pytest.mark.integration
async def test_a_worker_only_process_serves_metrics_and_readiness_on_its_own_address(
    services: LocalServices,
) -> None:
    """`dipgw up --no-gateway` listens on no HTTP port, yet Prometheus scrapes it and a probe
    asks whether its Kafka and PostgreSQL answer."""
    base: Settings = services.settings
    prefix = f"m{uuid.uuid4().hex[:8]}."
    topics = msgspec.structs.replace(
        base.topics,
        **{
            name: prefix + getattr(base.topics, name)
            for name in ("accepted", "rejected", "grouped", "scored_all", "out_of_province")
        },
    )
    settings = msgspec.structs.replace(
        base,
        topics=topics,
        worker=msgspec.structs.replace(base.worker, group_prefix=prefix.rstrip(".")),
        metrics=MetricsSettings(listen="127.0.0.1:0"),
    )
    async with running_stack(
        settings, services.bootstrap, services.dsn, gateway=False, workers=("sink",), clock=CLOCK
    ) as stack:
        assert stack.url == "" and stack.metrics_url.startswith("http://127.0.0.1:")
        status, text = await _get(stack.metrics_url + "/metrics")
        assert status == 200
        series = _series(text)
        assert series['dipgw_worker_up{worker="sink"}'] == 1
        assert series["process_cpu_seconds_total"] > 0
        assert series['dipgw_dependency_up{dependency="postgres"}'] == 1
        assert "process_resident_memory_bytes" in series
        build = next(name for name in series if name.startswith("dipgw_build_info{"))
        assert 'version="' in build and 'python="3.' in build
        status, text = await _get(stack.metrics_url + "/readyz")
        assert status == 200
        answer = msgspec.json.decode(text)
        assert answer["down"] == [] and answer["checks"] == {"kafka": "ok", "postgres": "ok"}
        assert await _get(stack.metrics_url + "/healthz") == (200, '{"status": "ok"}')


@pytest.mark.integration
async def test_readyz_is_503_naming_postgresql_when_it_does_not_answer(stack: Stack) -> None:
    dead = await asyncpg.create_pool(
        f"postgresql://dipgw@127.0.0.1:{_free_port()}/dipgw", min_size=0, max_size=1
    )
    listener = MetricsListener(dependency_probes(dead, stack.producer))
    try:
        url = await listen_on(listener, "127.0.0.1:0")
        status, text = await _get(url + "/readyz")
        assert status == 503
        answer = msgspec.json.decode(text)
        assert answer["down"] == ["postgres"]
        assert answer["checks"]["kafka"] == "ok"
        assert "ConnectionRefused" in answer["checks"]["postgres"]
        assert (await _get(url + "/healthz"))[0] == 200  # liveness never asks
        status, text = await _get(url + "/metrics")  # what the alert rules see
        series = _series(text)
        assert series['dipgw_dependency_up{dependency="postgres"}'] == 0
        assert series['dipgw_dependency_up{dependency="kafka"}'] == 1
    finally:
        await listener.stop()
        await dead.close()


@pytest.mark.integration
async def test_a_busy_metrics_address_is_a_start_up_report_naming_the_setting(
    stack: Stack,
) -> None:
    first = MetricsListener({})
    url = await listen_on(first, "127.0.0.1:0")
    taken = url.removeprefix("http://")
    try:
        with pytest.raises(MetricsListenError, match=f"metrics.listen = '{taken}'"):
            await listen_on(MetricsListener({}), taken)
    finally:
        await first.stop()


@pytest.mark.integration
async def test_the_gateways_readyz_needs_no_token_and_checks_both(stack: Stack) -> None:
    status, text = await _get(stack.url + "/readyz")
    assert status == 200
    assert msgspec.json.decode(text)["checks"] == {"kafka": "ok", "postgres": "ok"}


async def _scrape(stack: Stack) -> dict[str, float]:
    token = await stack.registry.issue_token("metrics", f"scraper-{uuid.uuid4().hex[:6]}")
    status, text, _ = await Client(stack, token=token).request("GET", "/metrics")
    assert status == 200
    return _series(text.decode() if isinstance(text, bytes) else str(text))


@pytest.mark.integration
async def test_request_durations_are_per_canonical_route_never_the_raw_path(
    stack: Stack, ops: Client
) -> None:
    receipt = uuid.uuid4()
    count = (
        'dipgw_http_request_duration_seconds_count{method="GET",route="/v1/receipts/{receipt_id}"}'
    )
    before = await _scrape(stack)
    assert (await ops.get(f"/v1/receipts/{receipt}"))[0] == 404
    await ops.request("PROPFIND", "/healthz")  # one of the parser's ~30, none of ours
    after = await _scrape(stack)
    assert after[count] - before.get(count, 0) == 1
    assert not any(str(receipt) in name for name in after)
    assert not any('method="PROPFIND"' in name for name in after)
    assert any('method="other"' in name for name in after)


@pytest.mark.integration
async def test_hospitals_are_a_metrics_label_only_when_enabled(hospital: Client) -> None:
    """Off by default: tens of thousands of hospital × rule series would swamp Prometheus."""

    def rejected(code: str) -> str:
        return (
            f'dipgw_rejections_total{{dimension="完整性",fixmedins_code="{code}",rule="REQ_FIELD"}}'
        )

    async def reject_one() -> dict[str, Any]:
        bad = document(f"M{uuid.uuid4().hex[:9]}")
        del bad["mdtrtarea_admvs"]
        before = await _scrape(hospital.stack)
        assert (await hospital.post("/v1/settlements", bad))[0] == 422
        after = await _scrape(hospital.stack)
        return {name: after[name] - before.get(name, 0) for name in after}

    assert not metrics.per_hospital()  # the session stack runs with the defaults
    grew = await reject_one()
    assert grew[rejected("")] == 1
    assert all("H44010000001" not in name for name, delta in grew.items() if delta)
    metrics.configure(per_hospital=True)
    try:
        grew = await reject_one()
    finally:
        metrics.configure(per_hospital=False)
    assert grew[rejected("H44010000001")] == 1
    assert grew.get(rejected(""), 0) == 0


@pytest.mark.integration
def test_dipgw_up_names_its_metrics_address_or_says_why_it_cannot(
    services: LocalServices, scratch_dir: Path
) -> None:
    """A worker-only `dipgw up` prints where it is scraped; a taken address is a one-line
    start-up report naming the setting, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        env = child_env(
            str(scratch_dir), services.bootstrap, services.dsn, DIPGW_METRICS_LISTEN=busy
        )
        run = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "up", "--no-gateway", "--workers", ""],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"dipgw: metrics.listen = '{busy}': cannot listen there" in run.stderr
    assert "Traceback" not in run.stderr
    free = f"127.0.0.1:{_free_port()}"
    env["DIPGW_METRICS_LISTEN"] = free
    proc = spawn_up(env, "--no-gateway", "--workers", "")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("dipgw is up: gateway (off),") and f"metrics http://{free}." in line
    finally:
        stop_all([proc])
