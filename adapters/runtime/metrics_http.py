"""Each process's own metrics listener: `/metrics`, `/readyz` and `/healthz` on
`metrics.listen`, and the readiness check the gateway's `/readyz` shares.

Why a listener of its own: a worker-only process serves no HTTP at all, and with
`dipgw up --processes N` the gateway's port is shared (SO_REUSEPORT), so a scrape of it
reaches a random process and `rate()` over it is meaningless. One address per process makes
every process one Prometheus target. The listener asks no token: the operator binds it to an
address only the scraper reaches (the gateway's own `/metrics` keeps its token).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters.runtime.errors import DipgwError, describe_error
from adapters.runtime.metrics import DEPENDENCY_UP, REGISTRY

Probe = Callable[[], Awaitable[object]]
"""A readiness check: returns when its dependency answered, raises when not."""

READY_TIMEOUT_S = 2.0
"""Each check's bound: a stalled broker or database must make `/readyz` say so, not hang
the prober (Kubernetes' default probe timeout is 1 s; set the probe's to 3 s)."""


def dependency_probes(pool: Any, producer: Any) -> dict[str, Probe]:
    """Kafka (a metadata request over the process's own producer connection: the same
    address, credentials and TLS as its real traffic) and PostgreSQL (`select 1` from its
    pool). `producer` is a `RenewingProducer`; read at each check, since it is renewed."""

    async def kafka() -> object:
        return await producer.producer.client.fetch_all_metadata()

    async def postgres() -> object:
        return await pool.fetchval("select 1")

    return {"kafka": kafka, "postgres": postgres}


async def readiness(
    probes: Mapping[str, Probe], timeout_s: float = READY_TIMEOUT_S
) -> dict[str, str]:
    """Every check at once, each within `timeout_s`: name → "ok" or what failed; also
    `dipgw_dependency_up`, so that a failing readiness can alert from the scraped series."""

    async def one(probe: Probe) -> str:
        try:
            async with asyncio.timeout(timeout_s):
                await probe()
        except TimeoutError:
            return f"no answer within {timeout_s:g} s"
        except Exception as exc:
            return describe_error(exc) or "failed"
        return "ok"

    names = list(probes)
    results = await asyncio.gather(*(one(probes[name]) for name in names))
    for name, result in zip(names, results, strict=True):
        DEPENDENCY_UP.labels(name).set(1 if result == "ok" else 0)
    return dict(zip(names, results, strict=True))


async def readyz_response(probes: Mapping[str, Probe]) -> web.Response:
    """200 when every dependency answers; else 503 naming those that did not."""
    checks = await readiness(probes)
    down = sorted(name for name, result in checks.items() if result != "ok")
    body = {"status": "unavailable" if down else "ready", "down": down, "checks": checks}
    return web.json_response(body, status=503 if down else 200)


async def metrics_response(probes: Mapping[str, Probe]) -> web.Response:
    """The registry, after a readiness check (bounded by its timeout) has refreshed
    `dipgw_dependency_up`: Prometheus sees the dependencies as this process sees them."""
    await readiness(probes)
    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


class MetricsListenError(DipgwError, OSError):
    """`metrics.listen` names an address this process cannot listen on."""


def split_listen(listen: str) -> tuple[str, int]:
    """`host:port` (`[v6]:port`) → (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def nth_listen(listen: str, index: int) -> str:
    """The address of process `index` of `dipgw up --processes N`: port + index (port 0
    stays 0, any free port). One target per process: see the module's docstring."""
    host, port = split_listen(listen)
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port + index if port else 0}"


async def listen_on(listener: MetricsListener, listen: str) -> str:
    """Start `listener` on `listen`; a refused address is a start-up report naming the setting."""
    host, port = split_listen(listen)
    try:
        return await listener.start(host, port)
    except OSError as exc:
        raise MetricsListenError(
            f"metrics.listen = {listen!r}: cannot listen there ({exc.strerror or exc})"
        ) from exc


class MetricsListener:
    """`/metrics` (no token: see the module's docstring), `/readyz`, `/healthz`."""

    def __init__(self, probes: Mapping[str, Probe]) -> None:
        self._probes = dict(probes)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str, port: int) -> str:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        return await metrics_response(self._probes)

    async def _readyz(self, request: web.Request) -> web.Response:
        return await readyz_response(self._probes)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})
