"""`dipgw bench pipeline [--json]`: DIP throughput, pure and end to end on this machine.

1. Pure group + score, one core (`workers.dip.bench_group_score`).
2. End to end, push → scored row in PostgreSQL, everything on this machine: a fresh local Kafka
   and embedded PostgreSQL under a temporary directory (never the configured ones), the
   gateway and the workers as two `dipgw up` processes (one event loop each, so both cores
   are used), and signed batches (`POST /v1/settlements/batch`) of valid settlement lists
   (`contracts.samples`) from the demo's six hospitals over loopback. Measured:
   - the p99 latency at a steady 1,000 cases/s (push sent → `scored_cases.stored_at`);
   - the sustained maximum: a backlog pushed as fast as the gateway takes it, divided by the
     time until its last case is stored;
   - CPU seconds per 1,000 cases of the gateway, the workers, the broker and PostgreSQL.
Bounded in time (about a minute, the broker's start included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import msgspec

from gateway.commands._common import UsageError, fail, settings_from
from gateway.demo_feed import HOSPITALS
from gateway.localkafka import KafkaError
from gateway.registry import Registry
from gateway.runtime import LocalServices
from gateway.sealing import Sealer, load_master_key
from gateway.settings import Settings
from gateway.signing import signed_headers
from workers.dip import SAMPLE_RULES, bench_group_score
from workers.rules_store import import_rules, read_rules_files

ROOT = Path(__file__).resolve().parent.parent.parent
PATH = "/v1/settlements/batch"
CST = ZoneInfo("Asia/Shanghai")


def register(subparsers: Any) -> None:
    """Plug `pipeline` into the `bench` noun (gateway.commands.bench)."""
    del subparsers
    from gateway.commands.bench import add_verb

    add_verb("pipeline", _setup)


def _setup(verbs: Any) -> None:
    parser = verbs.add_parser(
        "pipeline",
        help="DIP group+score cases/s per core; push → scored row throughput and p99 latency",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--rate", type=int, default=1000, help="steady rate, cases/s (1000)")
    parser.add_argument("--steady-s", type=float, default=8.0, help="steady phase seconds (8)")
    parser.add_argument("--max-cases", type=int, default=24000, help="backlog size (24000)")
    parser.add_argument("--pure-s", type=float, default=3.0, help="pure bench seconds (3)")
    parser.add_argument(
        "--worker-processes",
        default="sink,grouping,scoring,scored_sink",
        help="workers of each worker process, processes separated by / (default: one)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.rate < 1 or args.steady_s <= 0 or args.max_cases < 1 or args.pure_s <= 0:
        return fail("--rate, --steady-s, --max-cases and --pure-s must be positive")
    try:
        base = settings_from(args)
    except UsageError as exc:
        return fail(str(exc))
    say: Callable[[str], None] = (lambda _m: None) if args.json else _say
    say("pure group + score (one core)…")
    result: dict[str, Any] = {}
    pure = bench_group_score(2000, args.pure_s)
    result["group_score_cases_per_s"] = round(pure["group_score_cases_per_s"])
    say(f"  {result['group_score_cases_per_s']:,} cases/s")
    with tempfile.TemporaryDirectory(prefix="dipgw-bench-") as tmp:
        settings = msgspec.structs.replace(
            base,
            state_dir=tmp,
            kafka=msgspec.structs.replace(base.kafka, bootstrap=""),
            pg=msgspec.structs.replace(base.pg, dsn=""),
            log=msgspec.structs.replace(base.log, level="warning"),
        )
        say("starting a local Kafka and PostgreSQL for the bench…")
        try:
            with LocalServices(settings) as services:
                result.update(asyncio.run(_e2e(services, settings, args, say)))
        except KafkaError as exc:
            return fail(str(exc), 1)
    result["cores"] = os.cpu_count()
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"group+score {result['group_score_cases_per_s']:,} cases/s per core; end to end"
            f" {result['e2e_cases_per_s']:,} cases/s sustained (target ≥ 3,000); at"
            f" {args.rate:,} cases/s p99 {result['e2e_p99_ms']} ms, p50 {result['e2e_p50_ms']} ms"
            " (target ≤ 500 ms)"
        )
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _spawn(settings: Settings, bootstrap: str, dsn: str, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(
        DIPGW_STATE_DIR=settings.state_dir,
        DIPGW_KAFKA_BOOTSTRAP=bootstrap,
        DIPGW_PG_DSN=dsn,
        DIPGW_HTTP_HOST="127.0.0.1",
        DIPGW_HTTP_PORT="0",
        DIPGW_LOG_LEVEL="warning",
        DIPGW_LOG_FORMAT="json",
        DIPGW_LIMITS_RATE_PER_S="1000",
        DIPGW_LIMITS_BURST="1000",
        DIPGW_WORKER_MAX_BATCH="1000",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "up", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


async def _ready(proc: subprocess.Popen[str]) -> str:
    """Wait for `dipgw up`'s ready line; returns the gateway URL (or '(off)')."""
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)
    if not line.startswith("dipgw is up"):
        raise RuntimeError(f"dipgw up did not start: {line!r}")
    return line.split()[4].rstrip(",")


class _Pusher:
    def __init__(self, url: str, secrets: dict[str, bytes], http: aiohttp.ClientSession) -> None:
        self.url, self.secrets, self.http = url, secrets, http

    async def push(self, code: str, docs: list[bytes]) -> None:
        body = b'{"records":[' + b",".join(docs) + b"]}"
        headers = {
            "Content-Type": "application/json",
            **signed_headers(code, self.secrets[code], "POST", PATH, body),
        }
        for _ in range(20):
            async with self.http.post(self.url + PATH, data=body, headers=headers) as resp:
                answer = await resp.read()
                if resp.status == 200:
                    accepted = msgspec.json.decode(answer)["accepted"]
                    if accepted != len(docs):
                        raise RuntimeError(
                            f"{len(docs) - accepted} lists refused: {answer[:300]!r}"
                        )
                    return
                if resp.status not in (429, 503):
                    raise RuntimeError(f"push refused: {resp.status} {answer[:300]!r}")
            await asyncio.sleep(0.2)
            headers.update(signed_headers(code, self.secrets[code], "POST", PATH, body))
        raise RuntimeError("push kept being refused")


def _feed(n: int, rng: random.Random, first: int) -> dict[str, list[tuple[str, bytes]]]:
    """n valid settlement lists (contracts.samples) from the demo hospitals, 20 % of the
    patients insured in another city: per hospital, (setl_id, JSON)."""
    from contracts.samples import make_settlement

    now = datetime.now(CST).replace(tzinfo=None)
    out: dict[str, list[tuple[str, bytes]]] = {code: [] for code, *_ in HOSPITALS}
    cities = sorted({admdvs for _, _, admdvs, _ in HOSPITALS})
    for i in range(first, first + n):
        code, _, area, _ = HOSPITALS[i % len(HOSPITALS)]
        insured = area if rng.random() < 0.8 else rng.choice(cities)
        doc = make_settlement(
            rng,
            now=now,
            mdtrtarea_admvs=area,
            insuplc_admdvs=insured,
            fixmedins_code=code,
            serial=i,
        )
        out[code].append((doc["input"]["setlinfo"]["setl_id"], msgspec.json.encode(doc)))
    return out


def _cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) so far of each root process and its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
    out = {}
    for name, root in roots.items():
        total = 0.0
        for pid in used:
            p = pid
            while p > 1 and p != root:
                p = parent.get(p, 0)
            if p == root:
                total += used[pid]
        out[name] = total
    return out


async def _count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM scored_cases"))


async def _wait_count(pool: asyncpg.Pool, target: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await _count(pool) >= target:
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise RuntimeError(f"only {await _count(pool)} of {target} cases stored in {timeout}s")


async def _e2e(
    services: LocalServices, settings: Settings, args: argparse.Namespace, say: Any
) -> dict[str, Any]:
    pool = await asyncpg.create_pool(services.dsn, min_size=1, max_size=4)
    procs: list[subprocess.Popen[str]] = []
    try:
        gateway = _spawn(settings, services.bootstrap, services.dsn, "--workers", "")
        procs.append(gateway)
        url = await _ready(gateway)  # migrations are applied once it is up
        for workers in args.worker_processes.split("/"):
            procs.append(
                _spawn(
                    settings, services.bootstrap, services.dsn, "--no-gateway", "--workers", workers
                )
            )
            await _ready(procs[-1])
        for path in SAMPLE_RULES.values():
            await import_rules(pool, *read_rules_files([path]))
        registry = Registry(pool, Sealer(load_master_key("", settings.state_path)))
        secrets = {
            code: (await registry.add_hospital(code, name, admdvs, level)).encode()
            for code, name, admdvs, level in HOSPITALS
        }
        rng = random.Random(20261124)
        steady_n = int(args.rate * args.steady_s)
        say(f"generating {1000 + steady_n + args.max_cases:,} settlement lists…")
        first = rng.randrange(10**9)  # serials → unique setl_ids
        warm = _feed(1000, rng, first)
        steady = _feed(steady_n, rng, first + 1000)
        backlog = _feed(args.max_cases, rng, first + 1000 + steady_n)
        connector = aiohttp.TCPConnector(limit=32)
        async with aiohttp.ClientSession(connector=connector) as http:
            pusher = _Pusher(url, secrets, http)
            say("warming up…")
            await asyncio.gather(
                *(pusher.push(c, [d for _, d in docs]) for c, docs in warm.items() if docs)
            )
            await _wait_count(pool, 1000, 60)
            say(f"steady {args.rate:,} cases/s for {args.steady_s:g} s…")
            p50, p99, stages = await _steady(pool, pusher, steady, args.rate, 1000)
            say(f"  p50 {p50} ms, p99 {p99} ms; stage p50s (ms) {stages}")
            say(f"backlog of {args.max_cases:,} cases as fast as possible…")
            base = await _count(pool)
            roots = {"gateway": procs[0].pid}
            if len(procs) == 2:
                roots["workers"] = procs[1].pid
            else:
                roots.update((f"workers:{p.args[-1]}", p.pid) for p in procs[1:])
            if services.kafka is not None and services.kafka.pid() is not None:
                roots["kafka"] = services.kafka.pid() or 0
            if services.pg is not None:
                pidfile = services.pg.pgdata / "postmaster.pid"
                roots["postgres"] = int(pidfile.read_text().split()[0])
            cpu_before = _cpu_seconds(roots)
            started = time.monotonic()
            queue = [
                (code, [d for _, d in docs[i : i + 500]])
                for code, docs in backlog.items()
                for i in range(0, len(docs), 500)
            ]
            rng.shuffle(queue)
            sem = asyncio.Semaphore(8)

            async def one(code: str, docs: list[bytes]) -> None:
                async with sem:
                    await pusher.push(code, docs)

            await asyncio.gather(*(one(c, d) for c, d in queue))
            pushed = time.monotonic()
            done = await _wait_count(pool, base + args.max_cases, 120)
            cpu_after = _cpu_seconds(roots)
        cpu = {
            name: round((cpu_after[name] - cpu_before[name]) / args.max_cases * 1000, 2)
            for name in roots
        }
        say(f"  CPU seconds per 1,000 cases: {cpu}")
        rate = round(args.max_cases / (done - started))
        say(f"  {rate:,} cases/s (pushes took {pushed - started:.1f} s)")
        return {
            "e2e_cases_per_s": rate,
            "e2e_push_cases_per_s": round(args.max_cases / (pushed - started)),
            "e2e_p99_ms": p99,
            "e2e_p50_ms": p50,
            "e2e_stage_p50_ms": stages,
            "e2e_steady_rate": args.rate,
            "e2e_steady_cases": steady_n,
            "e2e_backlog_cases": args.max_cases,
            "e2e_cpu_s_per_1000_cases": cpu,
        }
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        await pool.close()


async def _steady(
    pool: asyncpg.Pool,
    pusher: _Pusher,
    feed: dict[str, list[tuple[str, bytes]]],
    rate: int,
    base: int,
) -> tuple[float, float, dict[str, float]]:
    """Push `feed` at `rate` cases/s in 100 ms ticks; latencies push-sent → stored."""
    items = [(code, sid, doc) for code, docs in feed.items() for sid, doc in docs]
    random.Random(7).shuffle(items)
    per_tick = max(1, rate // 10)
    sent_at: dict[tuple[str, str], float] = {}
    tasks: list[asyncio.Task[None]] = []
    start = time.time()
    for tick, i in enumerate(range(0, len(items), per_tick)):
        delay = start + tick * 0.1 - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = items[i : i + per_tick]
        by_code: dict[str, list[bytes]] = {}
        now = time.time()
        for code, sid, doc in chunk:
            by_code.setdefault(code, []).append(doc)
            sent_at[(code, sid)] = now
        tasks.extend(asyncio.create_task(pusher.push(c, d)) for c, d in by_code.items())
    await asyncio.gather(*tasks)
    await _wait_count(pool, base + len(items), 60)
    rows = await pool.fetch(
        """SELECT s.fixmedins_code, s.setl_id, extract(epoch FROM s.stored_at) AS t,
                  extract(epoch FROM r.received_at) AS received,
                  extract(epoch FROM r.accepted_at) AS accepted,
                  extract(epoch FROM s.scored_at) AS scored
           FROM scored_cases s JOIN receipts r USING (receipt_id)
           WHERE s.setl_id = ANY($1)""",
        [sid for _, sid, _ in items],
    )
    latencies = sorted(
        (float(r["t"]) - sent_at[(r["fixmedins_code"], r["setl_id"])]) * 1000 for r in rows
    )

    def pct(values: list[float], p: float) -> float:
        values = sorted(values)
        return round(values[min(len(values) - 1, int(p * len(values)))], 1)

    def gaps(start: str, end: str) -> list[float]:
        out = []
        for r in rows:
            a = sent_at[(r["fixmedins_code"], r["setl_id"])] if start == "sent" else r[start]
            if a is not None and r[end] is not None:
                out.append(float(r[end]) - float(a))
        return out

    stages = {
        "push_to_received": gaps("sent", "received"),
        "received_to_accepted": gaps("received", "accepted"),
        "accepted_to_scored": gaps("accepted", "scored"),
        "scored_to_stored": gaps("scored", "t"),
    }
    breakdown = {k: pct([x * 1000 for x in v], 0.5) for k, v in stages.items() if v}
    return pct(latencies, 0.50), pct(latencies, 0.99), breakdown
