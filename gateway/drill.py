"""The fault drill: steady signed uploads through several gateway and worker processes on a
replicated Kafka cluster, while rounds of faults hit them; then a reconciliation of every
acknowledged upload against what was stored, scored and counted.

Everything runs on this machine, on loopback, under a fresh state directory: a local Kafka
cluster (`LocalKafkaCluster`, 3 nodes, replication 3, min.insync.replicas 2), an embedded
PostgreSQL, and `dipgw up` child processes (`gateway.children`) — gateways sharing one port
(SO_REUSEPORT, as behind a load balancer) and worker processes running every stage. A fault
is real: SIGKILL of a gateway, a worker process or a broker (restarted after the fault's
time), PostgreSQL stopped and started again, a broker stalled with SIGSTOP and resumed.

The hospitals behave as the upload guide tells them to: every answer other than 202 (503, a
broken connection, a timeout) is retried, signed anew, until it is 202. Uploads are new lists,
corrections (new content for a case already acknowledged: its next revision) and identical
resends (answered with the original receipt). Reconciliation, once the pipeline has drained:

- lost: an acknowledged receipt not stored, or a case whose stored or scored revision is
  not the latest acknowledged one;
- duplicated: a second receipt for content already acknowledged, quality counting more
  uploads than were acknowledged, a stored case or receipt nobody was given;
- scores: each case's scored row against a recomputation from the list the hospital sent,
  with the pure DIP core and the rule files (not the database's copy), in this process;
- late: acknowledged records scored more than `late_after_s` after their 202.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import random
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec

from adapters.runtime.kafka import ensure_topics
from adapters.runtime.postgres import create_pool
from adapters.runtime.settings import Settings, load_settings
from contracts import CST
from contracts.samples import make_settlement
from gateway.accounts import Registry
from gateway.children import child_env, spawn_up, stop_all, wait_ready
from gateway.demo_feed import RATED_HOSPITALS
from gateway.localkafka import LocalKafkaCluster, free_ports
from gateway.localpg import EmbeddedPostgres
from gateway.sealing import sealer_for
from gateway.signing import signed_headers
from workers.casefacts_map import case_facts
from workers.dip import SAMPLE_RULES, RuleSet, group_and_score, load_rules, rules_for_year
from workers.rules_store import import_rules, read_rules_files

FAULTS = ("kill_gateway", "kill_worker", "kill_broker", "stop_postgres", "stall_broker")
PATH = "/v1/settlements"


@dataclass(frozen=True)
class DrillOptions:
    rounds: int = 5
    """Faults injected, one per round, cycling through `faults` in a seeded order."""
    rate_per_s: float = 8.0
    """New uploads started per second (lists, corrections and resends)."""
    calm_s: float = 5.0
    """Load without a fault before each fault (and after the last one)."""
    fault_s: float = 6.0
    """How long a fault lasts before the process, broker or server is back."""
    brokers: int = 3
    gateways: int = 2
    worker_processes: int = 2
    settle_s: float = 240.0
    """After the load: how long the pipeline may take to store and score everything."""
    late_after_s: float = 120.0
    seed: int = 20261130
    faults: tuple[str, ...] = FAULTS
    kafka_heap_mb: int = 384


@dataclass
class _Case:
    code: str
    setl_id: str
    admdvs: str
    level: str
    acks: dict[int, tuple[str, bytes, float]] = field(default_factory=dict)
    """revision → (receipt id, the list sent, wall time of its 202)."""
    busy: bool = False

    @property
    def key(self) -> str:
        return f"{self.code}:{self.setl_id}"


@dataclass
class _Fault:
    round: int
    kind: str
    target: str
    started: float  # wall clock
    repaired: float = 0.0
    longest_upload_s: float = 0.0
    """Longest first-attempt → 202 of the uploads started while the fault lasted."""
    longest_to_scored_s: float = 0.0
    """Longest 202 → scored of the records acknowledged while the fault lasted."""


class _Load:
    """The hospitals: steady uploads, each retried (re-signed) until it is answered 202."""

    def __init__(self, url: str, secrets: dict[str, bytes], rng: random.Random) -> None:
        self.url, self.secrets, self.rng = url, secrets, rng
        self.cases: list[_Case] = []
        self.answers: dict[str, int] = {}
        self.uploads: list[tuple[float, float]] = []  # (first attempt, 202) wall times
        self.tasks: set[asyncio.Task[None]] = set()
        self.serial = rng.randrange(10**8)

    def _document(self, case: _Case) -> bytes:
        now = datetime.now(CST).replace(tzinfo=None)
        doc = make_settlement(
            self.rng,
            now=now,
            mdtrtarea_admvs=case.admdvs,
            insuplc_admdvs=case.admdvs,
            fixmedins_code=case.code,
        )
        doc["input"]["setlinfo"]["setl_id"] = case.setl_id
        return msgspec.json.encode(doc)

    def next_upload(self) -> tuple[_Case, bytes]:
        acked = [c for c in self.cases if c.acks and not c.busy]
        roll = self.rng.random()
        if acked and roll < 0.2:  # a correction: new content, the case's next revision
            case = self.rng.choice(acked)
            return case, self._document(case)
        if acked and roll < 0.3:  # an identical resend of the latest content
            case = self.rng.choice(acked)
            return case, case.acks[max(case.acks)][1]
        code, _, admdvs, level = self.rng.choice(RATED_HOSPITALS)
        self.serial += 1
        case = _Case(code, f"DRILL{self.serial:010d}", admdvs, level)
        self.cases.append(case)
        return case, self._document(case)

    async def run(self, http: aiohttp.ClientSession, rate: float, stop: asyncio.Event) -> None:
        tick = 1 / rate
        due = time.monotonic()
        while not stop.is_set():
            case, body = self.next_upload()
            case.busy = True
            task = asyncio.create_task(self._until_accepted(http, case, body))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            due += tick
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0, due - time.monotonic()))

    async def _until_accepted(self, http: aiohttp.ClientSession, case: _Case, body: bytes) -> None:
        first = time.time()
        try:
            while True:
                headers = {
                    "Content-Type": "application/json",
                    **signed_headers(case.code, self.secrets[case.code], "POST", PATH, body),
                }
                try:
                    async with http.post(
                        self.url + PATH,
                        data=body,
                        headers=headers,
                        timeout=aiohttp.ClientTimeout(total=40),
                    ) as resp:
                        status, raw = resp.status, await resp.read()
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    status, raw = 0, type(exc).__name__.encode()
                self.answers[str(status)] = self.answers.get(str(status), 0) + 1
                if status == 202:
                    answer = msgspec.json.decode(raw)
                    revision = int(answer["revision"])
                    known = case.acks.get(revision)
                    if known is not None and known[0] != answer["receipt_id"]:
                        raise AssertionError(f"revision {revision} of {case.key} re-receipted")
                    if known is None:
                        case.acks[revision] = (answer["receipt_id"], body, time.time())
                    self.uploads.append((first, time.time()))
                    return
                if status not in (0, 429, 503):
                    raise RuntimeError(f"upload refused: {status} {raw[:300]!r}")
                await asyncio.sleep(0.5)
        finally:
            case.busy = False


class Drill:
    """One drill under `home`: start everything, load, faults, drain, reconcile, stop."""

    def __init__(
        self,
        home: Path,
        options: DrillOptions,
        say: Callable[[str], None] = print,
        *,
        tamper: Callable[[asyncpg.Pool], Awaitable[None]] | None = None,
    ) -> None:
        """`tamper` (for the drill's own test) changes the stores after the reconciliation,
        which then runs again into `report["after_tamper"]`: proof that it can fail."""
        self.home, self.options, self.say, self.tamper = home, options, say, tamper
        self.rng = random.Random(options.seed)
        self.kafka = LocalKafkaCluster(
            home / "kafka", brokers=options.brokers, heap_mb=options.kafka_heap_mb
        )
        self.pg = EmbeddedPostgres(home / "pgdata")
        self.gateways: list[subprocess.Popen[str]] = []
        self.workers: list[subprocess.Popen[str]] = []
        self.faults: list[_Fault] = []
        self.env: dict[str, str] = {}
        self.settings: Settings | None = None

    async def run(self) -> dict[str, Any]:
        o = self.options
        self.say(f"starting a {o.brokers}-broker Kafka cluster and PostgreSQL…")
        bootstrap = await asyncio.to_thread(self.kafka.start, owned=True)
        dsn = await asyncio.to_thread(self.pg.start)
        try:
            return await self._run(bootstrap, dsn)
        finally:
            stop_all(self.gateways + self.workers)
            await asyncio.to_thread(self.kafka.stop)
            await asyncio.to_thread(self.pg.stop)

    async def _run(self, bootstrap: str, dsn: str) -> dict[str, Any]:
        o = self.options
        self.env = child_env(
            str(self.home),
            bootstrap,
            dsn,
            DIPGW_HTTP_PORT=str(free_ports(1)[0]),
            DIPGW_TOPICS_REPLICATION_FACTOR=str(o.brokers),
        )
        self.settings = settings = load_settings(None, environ=self.env)
        from gateway.runtime import all_topics

        await ensure_topics(settings, bootstrap, all_topics(settings))
        pool = await create_pool(dsn, min_size=0, max_size=4)  # no reconnect noise in outages
        try:
            secrets = await _setup_database(pool, settings)
            self.say(f"starting {o.gateways} gateway and {o.worker_processes} worker processes…")
            for _ in range(o.gateways):
                self.gateways.append(spawn_up(self.env, "--workers", "", log=self._log()))
            url = ""
            for proc in self.gateways:
                url = await wait_ready(proc)
            for _ in range(o.worker_processes):
                self.workers.append(spawn_up(self.env, "--no-gateway", log=self._log()))
            for proc in self.workers:
                await wait_ready(proc)
            load = _Load(url, secrets, self.rng)
            stop = asyncio.Event()
            started = time.time()
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, force_close=True)
            ) as http:
                runner = asyncio.create_task(load.run(http, o.rate_per_s, stop))
                try:
                    await self._rounds(runner)
                finally:
                    stop.set()
                    await runner
                self.say("load stopped; waiting for every upload to be answered 202…")
                if load.tasks:
                    await asyncio.wait(load.tasks, timeout=o.settle_s)
            load_s = time.time() - started
            self.say("waiting for the pipeline to store and score everything…")
            drained = await _until_drained(pool, load.cases, o.settle_s)
            report = await _reconcile(pool, load, self.faults, o)
            if self.tamper is not None:
                await self.tamper(pool)
                report["after_tamper"] = await _reconcile(pool, load, self.faults, o)
            report.update(
                drained_in_s=drained,
                load_s=round(load_s, 1),
                answers=load.answers,
                settings={
                    "brokers": o.brokers,
                    "replication_factor": settings.topics.replication_factor,
                    "min_insync_replicas": 2 if o.brokers >= 3 else 1,
                    "partitions": settings.topics.partitions,
                    "gateway_processes": o.gateways,
                    "worker_processes": o.worker_processes,
                    "kafka_request_timeout_ms": settings.kafka.request_timeout_ms,
                    "rate_per_s": o.rate_per_s,
                    "rounds": o.rounds,
                    "fault_s": o.fault_s,
                    "calm_s": o.calm_s,
                },
            )
            return report
        finally:
            await pool.close()

    def _log(self) -> Path:
        return self.home / "processes.log"

    async def _rounds(self, runner: asyncio.Task[None]) -> None:
        o = self.options
        order = list(o.faults)
        self.rng.shuffle(order)
        for n in range(o.rounds):
            await self._calm(runner, o.calm_s)
            kind = order[n % len(order)]
            fault = await self._inject(n + 1, kind)
            self.say(f"round {n + 1}: {kind} {fault.target}")
            await self._calm(runner, o.fault_s)
            await self._repair(fault)
            fault.repaired = time.time()
            self.faults.append(fault)
        await self._calm(runner, o.calm_s)

    @staticmethod
    async def _calm(runner: asyncio.Task[None], seconds: float) -> None:
        done, _ = await asyncio.wait([runner], timeout=seconds)
        if done:
            runner.result()  # the load generator failed: say why
            raise RuntimeError("the load generator stopped")

    async def _inject(self, round_: int, kind: str) -> _Fault:
        now = time.time()
        if kind == "kill_gateway":
            i = self.rng.randrange(len(self.gateways))
            self.gateways[i].kill()
            return _Fault(round_, kind, f"gateway#{i}", now)
        if kind == "kill_worker":
            i = self.rng.randrange(len(self.workers))
            self.workers[i].kill()
            return _Fault(round_, kind, f"workers#{i}", now)
        if kind in ("kill_broker", "stall_broker"):
            node = self.rng.randrange(1, self.options.brokers + 1)
            if kind == "kill_broker":
                self.kafka.kill_node(node)
            else:
                self.kafka.pause_node(node)
            return _Fault(round_, kind, f"broker#{node}", now)
        if kind == "stop_postgres":
            await asyncio.to_thread(self.pg.stop)
            return _Fault(round_, kind, "postgres", now)
        raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")

    async def _repair(self, fault: _Fault) -> None:
        if fault.kind == "kill_gateway":
            i = int(fault.target.split("#")[1])
            self.gateways[i].wait()
            self.gateways[i] = spawn_up(self.env, "--workers", "", log=self._log())
            await wait_ready(self.gateways[i])
        elif fault.kind == "kill_worker":
            i = int(fault.target.split("#")[1])
            self.workers[i].wait()
            self.workers[i] = spawn_up(self.env, "--no-gateway", log=self._log())
            await wait_ready(self.workers[i])
        elif fault.kind == "kill_broker":
            await asyncio.to_thread(self.kafka.start_node, int(fault.target.split("#")[1]))
        elif fault.kind == "stall_broker":
            self.kafka.resume_node(int(fault.target.split("#")[1]))
        elif fault.kind == "stop_postgres":
            await asyncio.to_thread(self.pg.start)


async def _setup_database(pool: asyncpg.Pool, settings: Settings) -> dict[str, bytes]:
    """Register the hospitals (their signing secrets back) and import the sample rules for
    this year and the last (lists are discharged up to a few weeks before today)."""
    registry = Registry(pool, sealer_for(settings.auth, settings.state_path))
    secrets = {
        code: (await registry.add_hospital(code, name, admdvs, level)).encode()
        for code, name, admdvs, level in RATED_HOSPITALS
    }
    year = datetime.now(CST).year
    for path in SAMPLE_RULES.values():
        rules, sources = read_rules_files([path])
        for clearing_year in (year - 1, year):
            await import_rules(pool, rules_for_year(rules, clearing_year), sources)
    return secrets


async def _until_drained(pool: asyncpg.Pool, cases: list[_Case], within_s: float) -> float:
    """Seconds until every case's latest acknowledged revision has a scored row (or the
    limit: what is missing then is reported as lost)."""
    latest = {(c.code, c.setl_id): max(c.acks) for c in cases if c.acks}
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        rows = await pool.fetch("SELECT fixmedins_code, setl_id, revision FROM scored_cases")
        scored = {(r["fixmedins_code"], r["setl_id"]): r["revision"] for r in rows}
        if all(scored.get(k, 0) >= v for k, v in latest.items()):
            break
        await asyncio.sleep(1)
    return round(time.monotonic() - started, 1)


@functools.cache
def _rule_files(admdvs: str, year: int) -> RuleSet:
    """A city's sample rules from their files (not the database's copy), read once."""
    return rules_for_year(load_rules(SAMPLE_RULES[admdvs]), year)


def _expected_score(case: _Case, revision: int) -> tuple[str, float]:
    """The case's group and score recomputed from the list the hospital sent."""
    _, body, _ = case.acks[revision]
    facts = case_facts(
        body,
        case_key=case.key,
        fixmedins_code=case.code,
        treating_admdvs=case.admdvs,
        insured_admdvs=case.admdvs,
        hospital_level=case.level,
    )
    grouped, scored = group_and_score(
        facts, _rule_files(case.admdvs, int(facts.discharge_date[:4]))
    )
    return grouped.group_code, scored.case_score


async def _reconcile(
    pool: asyncpg.Pool, load: _Load, faults: list[_Fault], options: DrillOptions
) -> dict[str, Any]:
    receipts = {
        str(r["receipt_id"]): r
        for r in await pool.fetch(
            "SELECT receipt_id, fixmedins_code, setl_id, status FROM receipts"
        )
    }
    stored = {
        (r["fixmedins_code"], r["setl_id"]): r
        for r in await pool.fetch("SELECT fixmedins_code, setl_id, revision, receipt_id FROM cases")
    }
    scored = {
        (r["fixmedins_code"], r["setl_id"]): r
        for r in await pool.fetch(
            """SELECT fixmedins_code, setl_id, revision, status, group_code, case_score,
                      scored_at FROM scored_cases"""
        )
    }
    quality = {
        r["fixmedins_code"]: r["received"]
        for r in await pool.fetch(
            "SELECT fixmedins_code, sum(received)::int AS received FROM quality_daily GROUP BY 1"
        )
    }
    lost: list[str] = []
    duplicated: list[str] = []
    wrong_score: list[str] = []
    late = 0
    acked_ids: set[str] = set()
    per_hospital: dict[str, int] = {}
    scored_at: dict[str, float] = {}  # receipt id → scored time, for its latest revision
    for case in load.cases:
        if not case.acks:
            continue
        for revision, (receipt, _, _) in case.acks.items():
            acked_ids.add(receipt)
            per_hospital[case.code] = per_hospital.get(case.code, 0) + 1
            row = receipts.get(receipt)
            if row is None or row["status"] != "stored":
                lost.append(f"{case.key} r{revision}: receipt {row and row['status']}")
        latest = max(case.acks)
        receipt, _, acked_at = case.acks[latest]
        kept = stored.get((case.code, case.setl_id))
        if kept is None or kept["revision"] != latest or str(kept["receipt_id"]) != receipt:
            lost.append(f"{case.key}: stored {kept and kept['revision']}, latest r{latest}")
        row = scored.get((case.code, case.setl_id))
        if row is None or row["revision"] != latest:
            lost.append(f"{case.key}: scored {row and row['revision']}, latest r{latest}")
            continue
        scored_at[receipt] = row["scored_at"].timestamp()
        if scored_at[receipt] - acked_at > options.late_after_s:
            late += 1
        expected = _expected_score(case, latest)
        if (
            row["status"] != "scored"
            or row["group_code"] != expected[0]
            or abs(float(row["case_score"]) - expected[1]) > 1e-6
        ):
            wrong_score.append(
                f"{case.key}: {row['status']} {row['group_code']} {row['case_score']} ≠ {expected}"
            )
    for receipt, row in receipts.items():
        if receipt not in acked_ids and row["status"] != "pending":
            duplicated.append(
                f"receipt {receipt} of {row['setl_id']}: {row['status']}, never given"
            )
    for code, expected_count in per_hospital.items():
        counted = quality.get(code, 0)
        if counted > expected_count:
            duplicated.append(f"quality {code}: received {counted} > {expected_count} uploads")
        elif counted < expected_count:
            lost.append(f"quality {code}: received {counted} < {expected_count} uploads")
    for fault in faults:
        during = [
            done - first for first, done in load.uploads if fault.started <= first <= fault.repaired
        ]
        fault.longest_upload_s = round(max(during, default=0.0), 2)
        waits = [
            scored_at[receipt] - acked_at
            for case in load.cases
            for receipt, _, acked_at in case.acks.values()
            if fault.started <= acked_at <= fault.repaired and receipt in scored_at
        ]
        fault.longest_to_scored_s = round(max(waits, default=0.0), 2)
    return {
        "acknowledged_uploads": len(acked_ids),
        "cases": sum(1 for c in load.cases if c.acks),
        "revisions_beyond_first": sum(len(c.acks) - 1 for c in load.cases if c.acks),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "late": late,
        "wrong_scores": len(wrong_score),
        "problems": (lost + duplicated + wrong_score)[:50],
        "faults": [dataclasses.asdict(f) for f in faults],
    }


def scratch_home() -> Path:
    """A fresh state directory for one drill (not under /tmp's pytest trees: see conftest)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=f"dipgw-drill-{uuid.uuid4().hex[:6]}-"))
