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

`--peer` runs the obvious peer (gateway.bench.peer.ingest_app: aiohttp + pydantic +
`send_and_wait` per record + one receipt INSERT per record) beside dipgw, started the same way
(a subprocess on the same broker and database), and drives both with the same load generator
and client, the same records (one seed) and the same loads, in alternating rounds (dipgw
first, then the peer first, …) so that both see the same machine. Each side's figures are
those of all its rounds together; the ratios are dipgw's over the peer's
(`batched_ratio` above 1 and `single_p99_ratio` below 1 favour dipgw).
"""

from __future__ import annotations

import asyncio
import dataclasses
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
from adapters.runtime.stages import STAGES
from contracts import CST
from contracts.samples import make_settlement
from gateway.bench.common import (
    Buckets,
    achieved_rate,
    add_buckets,
    add_counts,
    bucket_delta,
    bucket_quantile,
    cluster_facts,
    count_records,
    effective_child_settings,
    open_loop_latencies_ms,
    percentile,
    rate_met,
    run_settings,
    scrape_histograms,
    send_lag_ms,
)
from gateway.bench.peer import PYDANTIC_MISSING, pydantic_available
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
    rounds: int = 1  # each load this many times, its figures over all of them
    # With --peer: the peer's figures in the same run, and dipgw's over the peer's.
    peer_batched_records_per_s: float | None = None
    batched_ratio: float | None = None  # above 1: dipgw accepts more records/s
    peer_single_p99_ms: float | None = None
    single_p99_ratio: float | None = None  # below 1: dipgw's p99 is shorter
    peer: dict[str, Any] | None = None  # every figure of the peer, as dipgw's
    # Where dipgw's single pushes spent their time (its dipgw_push_stage_seconds over the
    # single rounds, p99 per stage, ms), and how late its event loop ran (p99, ms).
    single_stage_p99_ms: dict[str, float] | None = None
    single_loop_lag_p99_ms: float | None = None


class CpuMeter:
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


class Load:
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


async def run_batched(
    load: Load, seconds: float, batch: int, concurrency: int, meter: CpuMeter
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


async def _single(load: Load, seconds: float, rate: float, meter: CpuMeter | None) -> _Single:
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


def _weighted(parts: list[tuple[dict[str, float], int]]) -> dict[str, float]:
    """Per-unit CPU of several rounds together (each weighed by its units)."""
    units = sum(n for _cpu, n in parts)
    keys = {k for cpu, _n in parts for k in cpu}
    return {
        k: round(sum(cpu.get(k, 0.0) * n for cpu, n in parts) / max(1, units), 3)
        for k in sorted(keys)
    }


def merge_batched(rounds: list[_Batched]) -> _Batched:
    """The batched load of several rounds as one: its time, counts and latencies summed."""
    records: dict[str, int] = {}
    answers: dict[str, int] = {}
    for part in rounds:
        add_counts(records, part.records)
        add_counts(answers, part.answers)
    return _Batched(
        seconds=sum(p.seconds for p in rounds),
        records=records,
        answers=answers,
        latencies_ms=[ms for p in rounds for ms in p.latencies_ms],
        cpu=_weighted([(p.cpu, p.records.get("accepted", 0)) for p in rounds]),
    )


def merge_single(rounds: list[_Single], rate: float) -> _Single:
    """The single-record load of several rounds as one schedule: each round's moments are
    moved to follow the previous round's schedule, so latencies (from the scheduled send) are
    unchanged and the achieved rate is that of all rounds."""
    samples: list[tuple[float, float, float]] = []
    sent: list[float] = []
    records: dict[str, int] = {}
    answers: dict[str, int] = {}
    start = rounds[0].started
    at = start
    for part in rounds:
        shift = at - part.started
        samples += [(d + shift, s + shift, e + shift) for d, s, e in part.samples]
        sent += [t + shift for t in part.sent]
        add_counts(records, part.records)
        add_counts(answers, part.answers)
        # The next round follows this one's schedule, or its last send if the generator lagged.
        at = max(at + len(part.sent) / rate, max(sent, default=at) + 1 / rate)
    cpu = _weighted([(p.cpu, len(p.sent)) for p in rounds])
    return _Single(samples, sent, start, records, answers, cpu)


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


PEER_TOPIC = "peer.accepted"


def start_peer(
    settings: Settings, child: Settings, services: LocalServices, port: int, secret: bytes
) -> subprocess.Popen[bytes]:
    """The obvious peer, on the same broker and database as dipgw; its own topic (as many
    partitions and replicas as dipgw's) and table. Its errors go to peer.log in the state
    directory, quoted if it does not come up."""
    log = (settings.state_path / "peer.log").open("wb")
    with log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.bench.peer.ingest_app",
                *("--port", str(port), "--dsn", services.dsn),
                *("--bootstrap", services.bootstrap, "--topic", PEER_TOPIC),
                *("--hospital", HOSPITAL, "--partitions", str(child.topics.partitions)),
                *("--replication-factor", str(child.topics.replication_factor)),
                *("--pool-max", str(child.pg.pool_max)),
            ],
            env={**os.environ, "PEER_HOSPITAL_SECRET": secret.decode()},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


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


async def wait_up(url: str, timeout: float = 60, *, what: str = "the gateway") -> None:
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
    raise BenchError(f"{what} did not come up")


async def register_bench_hospital(dsn: str, settings: Settings) -> bytes:
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


@dataclass
class _Side:
    """One gateway under load: its address, its generator and its CPU meter."""

    name: str
    load: Load
    meter: CpuMeter
    batched: list[_Batched]
    single: list[_Single]
    metrics_urls: list[str] = dataclasses.field(default_factory=list)
    stages: dict[str, Buckets] = dataclasses.field(default_factory=dict)
    loop_lag: dict[str, Buckets] = dataclasses.field(default_factory=dict)

    async def timed_single(self, seconds: float, rate: float) -> _Single:
        """A single round, with the stage and loop-lag histograms it moved (dipgw only: the
        peer has none)."""
        if not self.metrics_urls:
            return await _single(self.load, seconds, rate, self.meter)
        stages = await scrape_histograms(self.metrics_urls, STAGE_SERIES, "stage")
        lag = await scrape_histograms(self.metrics_urls, LAG_SERIES, "")
        single = await _single(self.load, seconds, rate, self.meter)
        after = await scrape_histograms(self.metrics_urls, STAGE_SERIES, "stage")
        add_buckets(self.stages, bucket_delta(after, stages))
        lag_after = await scrape_histograms(self.metrics_urls, LAG_SERIES, "")
        add_buckets(self.loop_lag, bucket_delta(lag_after, lag))
        return single

    def stage_figures(self) -> dict[str, Any]:
        if not self.metrics_urls:
            return {}
        p99 = {stage: bucket_quantile(b, 0.99) * 1000 for stage, b in self.stages.items()}
        lag = bucket_quantile(self.loop_lag.get("", {}), 0.99) * 1000
        return {
            "single_stage_p99_ms": {
                stage: round(p99[stage], 2) for stage in STAGES if stage in p99
            },
            "single_loop_lag_p99_ms": round(lag, 2),
        }


STAGE_SERIES = "dipgw_push_stage_seconds"
LAG_SERIES = "dipgw_event_loop_lag_seconds"


def ratio(a: float, b: float) -> float:
    """dipgw's figure over the peer's, to 3 decimals (NaN when the peer's is not positive)."""
    return round(a / b, 3) if b > 0 else float("nan")


def with_peer(dipgw: IngestFigures, peer: IngestFigures) -> IngestFigures:
    """dipgw's figures with the peer's of the same run beside them, and the ratios."""
    return dataclasses.replace(
        dipgw,
        peer_batched_records_per_s=peer.batched_records_per_s,
        batched_ratio=ratio(dipgw.batched_records_per_s, peer.batched_records_per_s),
        peer_single_p99_ms=peer.single_p99_ms,
        single_p99_ratio=ratio(dipgw.single_p99_ms, peer.single_p99_ms),
        peer=dataclasses.asdict(peer),
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
    peer: bool = False,
    rounds: int = 1,
) -> IngestFigures:
    if peer and not pydantic_available():
        raise BenchError(PYDANTIC_MISSING)
    if port == 0:
        port = free_ports(1)[0]  # shared by the gateway processes
    services = local_services(settings, brokers)
    services.start()
    gateways: list[subprocess.Popen[bytes]] = []
    try:
        secret = asyncio.run(register_bench_hospital(services.dsn, settings))
        # The gateways create topics and apply migrations themselves at start.
        env = _gateway_env(settings, services, port)
        # Each gateway process's own metrics listener (process i on port + i): the stages.
        metrics_port = free_ports(1)[0]
        env["DIPGW_METRICS_LISTEN"] = f"127.0.0.1:{metrics_port}"
        gateways = _start_gateways(env, processes)
        child = effective_child_settings(env)
        url = f"http://127.0.0.1:{port}"
        peer_url = ""
        if peer:
            peer_port = free_ports(1)[0]
            gateways.append(start_peer(settings, child, services, peer_port, secret))
            peer_url = f"http://127.0.0.1:{peer_port}"

        async def measure() -> IngestFigures:
            await wait_up(url)
            if peer:
                await wait_up(peer_url, what=peer_failed(settings))
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
                rounds=rounds,
            )
            seed = int(time.time())  # the same records for both sides
            dipgw_pids = [p.pid for p in gateways[:processes]]
            dipgw_side = _Side(
                "dipgw", Load(url, secret, seed), CpuMeter(dipgw_pids, services), [], []
            )
            dipgw_side.metrics_urls = [
                f"http://127.0.0.1:{metrics_port + i}" for i in range(processes)
            ]
            sides = [dipgw_side]
            if peer:
                peer_meter = CpuMeter([gateways[-1].pid], services)
                sides.append(_Side("peer", Load(peer_url, secret, seed), peer_meter, [], []))
            for side in sides:  # warm-up: connections, JIT of the broker
                await _single(side.load, 1.0, 50, None)
            for turn in range(rounds):
                order = sides if turn % 2 == 0 else sides[::-1]
                for side in order:
                    side.batched.append(
                        await run_batched(side.load, seconds, batch, concurrency, side.meter)
                    )
                for side in order:
                    side.single.append(await side.timed_single(seconds, rate))
            figures = [
                dataclasses.replace(
                    _figures(
                        processes if side.name == "dipgw" else 1,
                        batch,
                        concurrency,
                        rate,
                        merge_batched(side.batched),
                        merge_single(side.single, rate),
                        ran_with if side.name == "dipgw" else PEER_SETTINGS,
                    ),
                    rounds=rounds,
                    **side.stage_figures(),
                )
                for side in sides
            ]
            return with_peer(*figures) if peer else figures[0]

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


# What the peer is, beside its figures (its broker, topic and database are dipgw's).
PEER_SETTINGS = {
    "gateway": "gateway.bench.peer.ingest_app",
    "stack": "aiohttp + pydantic v2 + aiokafka send_and_wait (acks=all, idempotent)"
    " + asyncpg INSERT per record",
    "topic": PEER_TOPIC,
    "table": "peer_receipts",
}


def peer_failed(settings: Settings) -> str:
    """The peer's own words when it did not come up (the tail of its log)."""
    try:
        tail = (settings.state_path / "peer.log").read_text(errors="replace")[-1500:]
    except OSError:
        tail = ""
    return "the peer (gateway.bench.peer.ingest_app)" + (f": {tail.strip()}" if tail else "")
