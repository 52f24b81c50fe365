"""`dipgw bench ingest`: HTTP push → acknowledged Kafka write, measured on this machine.

The gateway runs in its own process(es) (`dipgw up --workers ''`), as in production; this
process runs the local Kafka and PostgreSQL (or uses the configured ones) and the load
generator, all on the same host and loopback only. Two loads, each bounded in time:

- batched: `concurrency` clients each pushing 200-record batches back to back (closed loop)
  → records/s, counted from the per-record results of the answers: only `accepted` records
  count; duplicate, rejected, unavailable and unanswered ones are reported apart;
- single: one record per request at a fixed rate (open loop: latency is measured from the
  moment a request was *due*, so neither a slow gateway nor a lagging generator can hide
  queueing) → p50/p99 ms over 202 answers only, and the request rate actually achieved
  against the target.

Answers other than 200 (batch) / 202 (single) are counted by status and kept out of the
latencies. The settings the gateways ran with (broker count, topics, producer, limits) are
part of the figures: `settings`, with what differs from the defaults under `non_default`.

`--brokers 3` runs the same loads against a fresh local 3-node KRaft cluster: the gateways
create their topics with 3 replicas and min.insync.replicas 2, so every acks=all write the
figures count was on at least 2 brokers. The brokers, replication factor and min ISR shown
are what the cluster reports (`cluster_facts`), and the broker CPU is that of all 3 nodes.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import msgspec
import psutil

from adapters.runtime.errors import DipgwError
from adapters.runtime.settings import Settings
from contracts import CST
from contracts.samples import make_settlement
from gateway.bench.common import (
    achieved_rate,
    add_counts,
    cluster_facts,
    count_records,
    effective_child_settings,
    open_loop_latencies_ms,
    percentile,
    rate_met,
    run_settings,
    send_lag_ms,
)
from gateway.localkafka import free_ports
from gateway.runtime import LocalServices
from gateway.signing import signed_headers

HOSPITAL = "H44010000001"

# What the gateways run with besides the defaults. The budgets (requests, records, bytes, per
# hospital and per address) are lifted because the bench is one hospital pushing far above a
# hospital's share; the larger pool keeps 4 batch clients
# from queueing for connections. Both are reported with the figures and in docs/operations.md.
TUNING = {
    "DIPGW_LIMITS_RATE_PER_S": "1000000",
    "DIPGW_LIMITS_BURST": "1000000",
    "DIPGW_LIMITS_RECORDS_PER_S": "1000000000",
    "DIPGW_LIMITS_RECORDS_BURST": "1000000000",
    "DIPGW_LIMITS_BYTES_PER_S": "1000000000000",
    "DIPGW_LIMITS_BYTES_BURST": "1000000000000",
    "DIPGW_LIMITS_SOURCE_RATE_PER_S": "1000000",
    "DIPGW_LIMITS_SOURCE_BURST": "1000000",
    "DIPGW_LIMITS_SOURCE_BYTES_PER_S": "1000000000000",
    "DIPGW_LIMITS_SOURCE_BYTES_BURST": "1000000000000",
    "DIPGW_PG_POOL_MAX": "20",
}


@dataclass
class IngestFigures:
    cores: int
    gateway_processes: int
    batch_size: int
    concurrency: int
    batched_seconds: float
    # Records by the outcome the gateway gave each one; records/s counts `accepted` only.
    batched_records: dict[str, int]
    batched_records_per_s: float
    # Answers by HTTP status ("0": no answer, a transport error); latency over 200s only.
    batched_answers: dict[str, int]
    batched_p50_ms: float
    batched_p99_ms: float
    batched_errors: int  # answers other than 200
    single_target_rps: float
    single_achieved_rps: float  # requests actually sent per second over the schedule
    single_rate_met: bool  # achieved ≥ 95 % of the target
    single_answered_per_s: float  # 202 answers ÷ (last one − start): did the gateway keep up
    single_requests: int
    single_answers: dict[str, int]
    single_records: dict[str, int]
    # From the scheduled send time (open loop), over 202 answers only.
    single_p50_ms: float
    single_p90_ms: float
    single_p99_ms: float
    single_max_ms: float
    single_send_lag_p99_ms: float  # how late the generator itself sent (its own lag)
    single_errors: int  # answers other than 202
    # CPU milliseconds spent per accepted record (batched) / per request (single), by process
    # group: where the two cores go, whatever else the machine was doing.
    batched_cpu_ms_per_record: dict[str, float]
    single_cpu_ms_per_request: dict[str, float]
    settings: dict[str, Any]


class _CpuMeter:
    """CPU seconds used by the gateway(s), the broker, PostgreSQL and this load generator."""

    def __init__(self, gateways: list[int], services: LocalServices) -> None:
        self._groups: dict[str, list[psutil.Process]] = {
            "gateway": [psutil.Process(pid) for pid in gateways],
            "kafka": [  # every node of a local cluster
                psutil.Process(pid)
                for pid in (services.kafka.node_pids().values() if services.kafka else [])
                if pid is not None
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

    async def post(self, http: aiohttp.ClientSession, path: str, body: bytes) -> tuple[int, Any]:
        """(HTTP status, decoded JSON answer or None); status 0 when no answer came."""
        headers = {
            "Content-Type": "application/json",
            **signed_headers(HOSPITAL, self.secret, "POST", path, body),
        }
        try:
            async with http.post(self.url + path, data=body, headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError):
            return 0, None
        try:
            return status, msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return status, None


@dataclass
class _Batched:
    seconds: float
    records: dict[str, int]
    answers: dict[str, int]
    latencies_ms: list[float]
    cpu: dict[str, float]


async def _batched(
    load: _Load, seconds: float, batch: int, concurrency: int, meter: _CpuMeter
) -> _Batched:
    # Bodies are prepared before the clock starts, enough for 12,000 records/s (twice the
    # target): the figure is the gateway's, not the generator's.
    bodies = [
        msgspec.json.encode({"records": load.documents(batch)})
        for _ in range(max(8, int(seconds * 12_000 / batch)))
    ]
    records: dict[str, int] = {}
    answers: dict[str, int] = {}
    latencies: list[float] = []
    index = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def client() -> None:
            nonlocal index
            while time.perf_counter() < deadline and index < len(bodies):
                body = bodies[index]
                index += 1
                sent = time.perf_counter()
                status, answer = await load.post(http, "/v1/settlements/batch", body)
                done = time.perf_counter()
                answers[str(status)] = answers.get(str(status), 0) + 1
                add_counts(records, count_records(status, answer, batch))
                if status == 200:  # closed loop: no schedule, so from the actual send
                    latencies.append((done - sent) * 1000)

        before = meter.sample()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = meter.per_unit(before, meter.sample(), records.get("accepted", 0))
    return _Batched(elapsed, records, answers, latencies, cpu)


@dataclass
class _Single:
    samples: list[tuple[float, float, float]]  # (scheduled, sent, done) of 202 answers
    sent: list[float]  # every request's actual send time
    started: float
    records: dict[str, int]
    answers: dict[str, int]
    cpu: dict[str, float]


async def _single(load: _Load, seconds: float, rate: float, meter: _CpuMeter | None) -> _Single:
    count = int(seconds * rate)
    bodies = [msgspec.json.encode(doc) for doc in load.documents(count)]
    samples: list[tuple[float, float, float]] = []
    sent: list[float] = []
    records: dict[str, int] = {}
    answers: dict[str, int] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as http:
        before = meter.sample() if meter else {}
        started = time.perf_counter()

        async def one(i: int) -> None:
            due = started + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            at = time.perf_counter()
            sent.append(at)
            status, answer = await load.post(http, "/v1/settlements", bodies[i])
            done = time.perf_counter()
            answers[str(status)] = answers.get(str(status), 0) + 1
            add_counts(records, count_records(status, answer, 1))
            if status == 202:
                samples.append((due, at, done))

        await asyncio.gather(*(one(i) for i in range(count)))
        cpu = meter.per_unit(before, meter.sample(), count) if meter else {}
    return _Single(samples, sent, started, records, answers, cpu)


def _gateway_env(settings: Settings, services: LocalServices, port: int) -> dict[str, str]:
    """The gateways' whole environment: no DIPGW_* of ours leaks in, so what they run with is
    the defaults + this (read back by `effective_child_settings` for the report)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(
        DIPGW_STATE_DIR=str(settings.state_path),
        DIPGW_KAFKA_BOOTSTRAP=services.bootstrap,
        DIPGW_PG_DSN=services.dsn,
        DIPGW_HTTP_PORT=str(port),
        DIPGW_LOG_LEVEL="warning",
        # The gateways create the topics: with as many replicas as the local cluster has nodes.
        DIPGW_TOPICS_REPLICATION_FACTOR=str(services.settings.topics.replication_factor),
        **TUNING,
    )
    return env


def _start_gateways(env: dict[str, str], processes: int) -> list[subprocess.Popen[bytes]]:
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
    from adapters.runtime.postgres import create_pool
    from gateway.accounts import Registry, RegistryError
    from gateway.sealing import sealer_for

    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        registry = Registry(pool, sealer_for(settings.auth, settings.state_path))
        try:
            secret = await registry.add_hospital(HOSPITAL, "压测医院", "440100", "3")
        except RegistryError:
            secret = await registry.rotate_secret(HOSPITAL)
        return secret.encode()
    finally:
        await pool.close()


class BenchError(DipgwError, RuntimeError):
    """The bench cannot run as asked, or its figures would not mean what they say."""


def local_services(settings: Settings, brokers: int) -> LocalServices:
    """The broker(s) and database of a run: the seam for `--brokers N`.

    Without a configured cluster, a fresh local one of `brokers` nodes (1, or 3: every topic
    then has 3 replicas and min.insync.replicas 2, so acks=all means at least 2 copies); a
    configured cluster is used as it is, and the run checks it has the brokers asked for.
    """
    if settings.kafka.bootstrap:
        return LocalServices(settings)
    if brokers not in (1, 3):
        raise BenchError(f"--brokers {brokers}: a local Kafka cluster has 1 or 3 nodes")
    return LocalServices(
        msgspec.structs.replace(
            settings, kafka=msgspec.structs.replace(settings.kafka, local_brokers=brokers)
        )
    )


def _figures(
    processes: int,
    batch: int,
    concurrency: int,
    rate: float,
    batched: _Batched,
    single: _Single,
    settings: dict[str, Any],
) -> IngestFigures:
    latencies = open_loop_latencies_ms(single.samples)
    achieved = achieved_rate(single.started, single.sent, rate)
    return IngestFigures(
        cores=os.cpu_count() or 1,
        gateway_processes=processes,
        batch_size=batch,
        concurrency=concurrency,
        batched_seconds=round(batched.seconds, 2),
        batched_records=batched.records,
        batched_records_per_s=round(batched.records.get("accepted", 0) / batched.seconds, 1),
        batched_answers=batched.answers,
        batched_p50_ms=round(percentile(batched.latencies_ms, 0.50), 2),
        batched_p99_ms=round(percentile(batched.latencies_ms, 0.99), 2),
        batched_errors=sum(n for status, n in batched.answers.items() if status != "200"),
        single_target_rps=rate,
        single_achieved_rps=round(achieved, 1),
        single_rate_met=rate_met(achieved, rate),
        single_answered_per_s=round(
            len(single.samples)
            / max(1e-9, max((d for *_, d in single.samples), default=0.0) - single.started),
            1,
        ),
        single_requests=len(single.sent),
        single_answers=single.answers,
        single_records=single.records,
        single_p50_ms=round(percentile(latencies, 0.50), 2),
        single_p90_ms=round(percentile(latencies, 0.90), 2),
        single_p99_ms=round(percentile(latencies, 0.99), 2),
        single_max_ms=round(max(latencies, default=float("nan")), 2),
        single_send_lag_p99_ms=round(percentile(send_lag_ms(single.samples), 0.99), 2),
        single_errors=sum(n for status, n in single.answers.items() if status != "202"),
        batched_cpu_ms_per_record=batched.cpu,
        single_cpu_ms_per_request=single.cpu,
        settings=settings,
    )


def run_ingest_bench(
    settings: Settings,
    *,
    seconds: float,
    batch: int,
    concurrency: int,
    rate: float,
    processes: int,
    port: int,
    brokers: int = 1,
) -> IngestFigures:
    if port == 0:
        port = free_ports(1)[0]  # shared by the gateway processes
    services = local_services(settings, brokers)
    services.start()
    gateways: list[subprocess.Popen[bytes]] = []
    try:
        secret = asyncio.run(_register(services.dsn, settings))
        # The gateways create topics and apply migrations themselves at start.
        env = _gateway_env(settings, services, port)
        gateways = _start_gateways(env, processes)
        url = f"http://127.0.0.1:{port}"

        async def measure() -> IngestFigures:
            await _wait_up(url)
            child = effective_child_settings(env)
            cluster = await cluster_facts(services.bootstrap, child.topics.accepted)
            if cluster["brokers"] != brokers:
                raise BenchError(
                    f"asked for {brokers} broker(s), the cluster has {cluster['brokers']}"
                )
            ran_with = run_settings(
                child,
                **cluster,
                gateway_processes=processes,
                batch_size=batch,
                batch_concurrency=concurrency,
                single_rate=rate,
                seconds=seconds,
            )
            load = _Load(url, secret, seed=int(time.time()))
            await _single(load, 1.0, 50, None)  # warm-up: connections, JIT of the broker
            meter = _CpuMeter([p.pid for p in gateways], services)
            batched = await _batched(load, seconds, batch, concurrency, meter)
            single = await _single(load, seconds, rate, meter)
            return _figures(processes, batch, concurrency, rate, batched, single, ran_with)

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
