"""`dipgw bench ingest`: HTTP push → acknowledged Kafka write, measured on this machine.

The gateway runs in its own process(es) (`dipgw up --workers ''`), as in production; this
process runs the local Kafka and PostgreSQL (or uses the configured ones) and the load
generator, all on the same host and loopback only. Two loads, each bounded in time:

- batched: `concurrency` clients each pushing 200-record batches back to back → records/s;
- single: one record per request at a fixed rate (open loop: latency is measured from the
  moment a request was due, so a slow gateway cannot hide queueing) → p50/p99 ms and req/s.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import msgspec
import psutil

from contracts import CST
from contracts.samples import make_settlement
from gateway.runtime import LocalServices
from gateway.settings import Settings
from gateway.signing import signed_headers

HOSPITAL = "H44010000001"


@dataclass
class IngestFigures:
    cores: int
    gateway_processes: int
    batch_size: int
    batched_records_per_s: float
    batched_seconds: float
    single_target_rps: float
    single_requests_per_s: float
    single_p50_ms: float
    single_p90_ms: float
    single_p99_ms: float
    single_max_ms: float
    single_errors: int
    batched_errors: int
    # CPU milliseconds spent per record (batched) / per request (single), by process group:
    # where the two cores go, whatever else the machine was doing.
    batched_cpu_ms_per_record: dict[str, float]
    single_cpu_ms_per_request: dict[str, float]


class _CpuMeter:
    """CPU seconds used by the gateway(s), the broker, PostgreSQL and this load generator."""

    def __init__(self, gateways: list[int], services: LocalServices) -> None:
        self._groups: dict[str, list[psutil.Process]] = {
            "gateway": [psutil.Process(pid) for pid in gateways],
            "kafka": [
                psutil.Process(pid)
                for pid in (
                    [services.kafka.pid()] if services.kafka and services.kafka.pid() else []
                )
            ],
            "postgres": self._postgres(services),
            "loadgen": [psutil.Process()],
        }

    @staticmethod
    def _postgres(services: LocalServices) -> list[psutil.Process]:
        if services.pg is None:
            return []
        pgdata = str(services.pg.pgdata)
        return [
            p
            for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] and pgdata in " ".join(p.info["cmdline"])
        ]

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, procs in self._groups.items():
            total = 0.0
            for proc in procs:
                try:
                    family = [proc] + (proc.children(recursive=True) if name == "postgres" else [])
                    for member in family:
                        times = member.cpu_times()
                        total += times.user + times.system
                except psutil.Error:
                    continue
            out[name] = total
        return out

    @staticmethod
    def per_unit(before: dict[str, float], after: dict[str, float], units: int) -> dict[str, float]:
        return {k: round((after[k] - before[k]) * 1000 / max(1, units), 3) for k in before}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Load:
    def __init__(self, url: str, secret: bytes, seed: int) -> None:
        self.url = url
        self.secret = secret
        self.rng = random.Random(seed)
        self.run = seed % 10**6
        self.counter = 0

    def documents(self, n: int) -> list[dict[str, Any]]:
        """Realistic lists (≈ 8 diagnoses, 3 operations) that pass every default rule."""
        now = datetime.now(CST).replace(tzinfo=None)
        docs = []
        for _ in range(n):
            self.counter += 1
            docs.append(
                make_settlement(
                    self.rng,
                    now=now,
                    mdtrtarea_admvs="440100",
                    fixmedins_code=HOSPITAL,
                    serial=self.run * 10**7 + self.counter,
                )
            )
        return docs

    async def post(self, http: aiohttp.ClientSession, path: str, body: bytes) -> int:
        headers = {
            "Content-Type": "application/json",
            **signed_headers(HOSPITAL, self.secret, "POST", path, body),
        }
        async with http.post(self.url + path, data=body, headers=headers) as resp:
            await resp.read()
            return resp.status


async def _batched(
    load: _Load, seconds: float, batch: int, concurrency: int, meter: _CpuMeter
) -> tuple[float, float, int, dict[str, float]]:
    # Bodies are prepared before the clock starts, enough for 12,000 records/s (twice the
    # target): the figure is the gateway's, not the generator's.
    bodies = [
        msgspec.json.encode({"records": load.documents(batch)})
        for _ in range(max(8, int(seconds * 12_000 / batch)))
    ]
    accepted = errors = 0
    index = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def client() -> None:
            nonlocal accepted, errors, index
            while time.perf_counter() < deadline and index < len(bodies):
                body = bodies[index]
                index += 1
                status = await load.post(http, "/v1/settlements/batch", body)
                if status == 200:
                    accepted += batch
                else:
                    errors += 1

        before = meter.sample()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = meter.per_unit(before, meter.sample(), accepted)
    return accepted / elapsed, elapsed, errors, cpu


async def _single(
    load: _Load, seconds: float, rate: float, meter: _CpuMeter | None = None
) -> tuple[list[float], float, int, dict[str, float]]:
    count = int(seconds * rate)
    bodies = [msgspec.json.encode(doc) for doc in load.documents(count)]
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as http:
        before = meter.sample() if meter else {}
        started = time.perf_counter()

        async def one(i: int) -> None:
            nonlocal errors
            due = started + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            status = await load.post(http, "/v1/settlements", bodies[i])
            latencies.append((time.perf_counter() - due) * 1000)
            if status != 202:
                errors += 1

        await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = time.perf_counter() - started
        cpu = meter.per_unit(before, meter.sample(), count) if meter else {}
    return latencies, count / elapsed, errors, cpu


def _start_gateways(
    settings: Settings, services: LocalServices, processes: int, port: int
) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(
        DIPGW_STATE_DIR=str(settings.state_path),
        DIPGW_KAFKA_BOOTSTRAP=services.bootstrap,
        DIPGW_PG_DSN=services.dsn,
        DIPGW_HTTP_PORT=str(port),
        DIPGW_LOG_LEVEL="warning",
        DIPGW_LIMITS_RATE_PER_S="1000000",
        DIPGW_LIMITS_BURST="1000000",
        DIPGW_PG_POOL_MAX="20",
    )
    return [
        subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "up", "--workers", ""],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]


async def _wait_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the gateway did not come up")


async def _register(dsn: str, settings: Settings) -> bytes:
    from gateway.db import create_pool
    from gateway.registry import Registry, RegistryError
    from gateway.sealing import Sealer, load_master_key

    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        registry = Registry(
            pool, Sealer(load_master_key(settings.auth.master_key, settings.state_path))
        )
        try:
            secret = await registry.add_hospital(HOSPITAL, "压测医院", "440100", "3")
        except RegistryError:
            secret = await registry.rotate_secret(HOSPITAL)
        return secret.encode()
    finally:
        await pool.close()


def run_ingest_bench(
    settings: Settings,
    *,
    seconds: float,
    batch: int,
    concurrency: int,
    rate: float,
    processes: int,
    port: int,
) -> IngestFigures:
    if port == 0:
        with socket.socket() as probe:  # a free port, shared by the gateway processes
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    services = LocalServices(settings).start()
    gateways: list[subprocess.Popen[bytes]] = []
    try:
        secret = asyncio.run(_register(services.dsn, settings))
        # The gateways create topics and apply migrations themselves at start.
        gateways = _start_gateways(settings, services, processes, port)
        url = f"http://127.0.0.1:{port}"

        async def measure() -> IngestFigures:
            await _wait_up(url)
            load = _Load(url, secret, seed=int(time.time()))
            await _single(load, 1.0, 50)  # warm-up: connections, JIT of the broker
            meter = _CpuMeter([p.pid for p in gateways], services)
            batched = await _batched(load, seconds, batch, concurrency, meter)
            records_per_s, elapsed, batch_errors, batched_cpu = batched
            latencies, rps, single_errors, single_cpu = await _single(load, seconds, rate, meter)
            return IngestFigures(
                cores=os.cpu_count() or 1,
                gateway_processes=processes,
                batch_size=batch,
                batched_records_per_s=round(records_per_s, 1),
                batched_seconds=round(elapsed, 2),
                single_target_rps=rate,
                single_requests_per_s=round(rps, 1),
                single_p50_ms=round(_percentile(latencies, 0.50), 2),
                single_p90_ms=round(_percentile(latencies, 0.90), 2),
                single_p99_ms=round(_percentile(latencies, 0.99), 2),
                single_max_ms=round(max(latencies, default=float("nan")), 2),
                single_errors=single_errors,
                batched_errors=batch_errors,
                batched_cpu_ms_per_record=batched_cpu,
                single_cpu_ms_per_request=single_cpu,
            )

        return asyncio.run(measure())
    finally:
        for proc in gateways:
            proc.send_signal(signal.SIGTERM)
        for proc in gateways:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        services.stop()
