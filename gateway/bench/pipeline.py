"""DIP throughput, pure and end to end on this machine (`dipgw bench pipeline`).

1. Pure group + score, one core (`workers.dip.bench_group_score`).
2. End to end, push → scored row in PostgreSQL, everything on this machine: a fresh local Kafka
   and embedded PostgreSQL under a temporary directory (never the configured ones), the
   gateway and the workers as two `dipgw up` processes (one event loop each, so both cores
   are used), and signed batches (`POST /v1/settlements/batch`) of valid settlement lists
   (`contracts.samples`) from the demo hospitals of the cities that have DIP rules (the
   bundled samples: 440100, 440300 and 440600) over loopback. Measured:
   - the p50/p99 latency at a steady 1,000 cases/s, open loop: from the moment each push was
     *scheduled* (not when the generator got round to it) to `scored_cases.stored_at`, over
     scored rows; and the rate actually achieved against the target (flagged below 95 %);
   - the sustained maximum: a backlog pushed as fast as the gateway takes it; scored cases
     divided by the time until its last case is stored;
   - CPU seconds per 1,000 cases of the gateway, the workers, the broker and PostgreSQL.
Only rows with status `scored` count as scored; unscored ones are reported by treating city,
clearing year and reason. The cases are generated from the real clock (the gateway stamps
`received_at` with its own and checks discharge ≤ receipt), so the sample rules are imported
for every clearing year the generated discharges fall in (`rules_for_year`); and the bench
fails (exit 1) when far fewer cases were scored than were sent to cities with rules, rather
than time a pipeline that scores nothing. The settings the processes ran with are reported.
`--brokers 3` runs these phases on a local 3-node cluster (replication 3, min ISR 2).
3. Scale-out (always, unless `--no-scale-out`), on a local 3-broker cluster (the one of
   `--brokers 3`, else a fresh one started after the first is stopped): the sustained phase
   twice, with one gateway process and every worker stage (sink, grouping, scoring,
   scored_sink) in 1 worker process, then in 2 (2 processes per stage: each stage's consumer
   group splits the 6 partitions) → `e2e_cases_per_s_1proc`, `e2e_cases_per_s_2proc`, with
   each layout's CPU seconds per 1,000 cases by process group (gateway, workers, all Kafka
   nodes, PostgreSQL). Both layouts get the same backlog (`--max-cases`), their own topics,
   consumer groups and database, and processes started for them alone.
4. Beside the obvious peer (`--peer`, issue 17): after the sustained phase, on the same
   broker and database, with dipgw's processes stopped, the ingest peer of `dipgw bench ingest
   --peer` (gateway.bench.peer.ingest_app: aiohttp + pydantic v2 + aiokafka `send_and_wait`
   per record with acks=all and idempotence + one asyncpg receipt INSERT per record; no
   grouping, no scoring) is started the same way and fed the sustained phase's very lists (its
   backlog, in order and again from the start if the peer gets through it; signed as the
   peer's one hospital, which is all it checks) by the same batched load generator
   (gateway.bench.ingest.run_batched) with `dipgw bench ingest`'s load: 200 lists a push, 4
   pushes at a time (`PEER_BATCH`, `PEER_CONCURRENCY`), not the sustained phase's 500 × 8 —
   the peer's rate falls steeply with the records it has in flight (`dipgw bench ingest
   --peer --seconds 4` on the shared 2-core machine, 2026-11-30: 823 records/s at 200 × 4,
   245 at 500 × 8, its CPU per record 4× higher; dipgw's ingest 3,663 and 3,540), so its
   rate at its own load is the one to beat, and the one issue 17 quotes. It runs as long as
   dipgw's sustained phase took but between `PEER_MIN_S` and `PEER_MAX_S` (the generator
   encodes its pushes beforehand, enough for 12,000 records/s: 10 s of them is `dipgw bench
   ingest`'s default), after a 1 s warm-up.
   Compared: dipgw's sustained end-to-end rate (`e2e_cases_per_s`: scored rows in PostgreSQL
   ÷ the time from the first push to the last row stored) over the peer's batched ingest rate
   (`peer_ingest_records_per_s`: records it answered `accepted` — in Kafka and in its
   receipts table — ÷ the time of its load) → `e2e_vs_peer_ingest_ratio` (issue 17's target:
   ≥ 5). The peer's own figures (outcomes, answers, latencies, CPU) are under `peer_ingest`.
Bounded in time (one to a few minutes, the brokers' starts included).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec

from adapters.runtime.errors import DipgwError
from adapters.runtime.settings import Settings
from contracts import CST, city_of
from gateway.accounts import Registry
from gateway.bench.common import (
    achieved_rate,
    add_counts,
    cluster_facts,
    count_records,
    effective_child_settings,
    non_default_settings,
    open_loop_latencies_ms,
    percentile,
    rate_met,
    run_settings,
    scale_out_keys,
    send_lag_ms,
)
from gateway.bench.ingest import (
    HOSPITAL,
    PEER_SETTINGS,
    BenchError,
    CpuMeter,
    Load,
    peer_failed,
    ratio,
    register_bench_hospital,
    run_batched,
    start_peer,
    wait_up,
)
from gateway.bench.peer import PYDANTIC_MISSING, pydantic_available
from gateway.children import child_env, spawn_up, stop_all, wait_ready
from gateway.demo_feed import HOSPITALS, RATED_HOSPITALS
from gateway.localkafka import KafkaError, free_ports
from gateway.runtime import LocalServices
from gateway.sealing import sealer_for
from gateway.signing import signed_headers
from workers.dip import SAMPLE_RULES, bench_group_score, rules_for_year
from workers.rules_store import import_rules, read_rules_files

PATH = "/v1/settlements/batch"


# What the `dipgw up` processes run with besides the defaults (reported with the figures and
# in docs/operations.md): workers take up to 1,000 messages per batch instead of 500, and the
# one bench hospital's records budget is lifted (it sends a province's rate alone).
TUNING = {
    "DIPGW_WORKER_MAX_BATCH": "1000",
    "DIPGW_LIMITS_RECORDS_PER_S": "1000000",
    "DIPGW_LIMITS_RECORDS_BURST": "1000000",
}

# Below this share of the cases sent to cities with rules scored, the run is a failure.
MIN_SCORED_SHARE = 0.95

# The sustained phase's pushes (and the peer's): lists per push, pushes at a time.
BACKLOG_BATCH = 500
BACKLOG_CONCURRENCY = 8
# The peer's load: `dipgw bench ingest`'s (lists a push, pushes at a time; see the module's
# docstring for why not the backlog's), as long as dipgw's sustained phase took, within bounds.
PEER_BATCH = 200
PEER_CONCURRENCY = 4
PEER_MIN_S = 2.0
PEER_MAX_S = 10.0


class BenchFailed(DipgwError, RuntimeError):
    """The run could not be made (a local broker did not start), or its figures would not mean
    what they say (too few cases scored, …)."""


@dataclass(frozen=True)
class PipelineOptions:
    """What a run is asked to do (`dipgw bench pipeline`'s options)."""

    rate: int  # of the steady phase, cases/s
    steady_s: float
    max_cases: int  # the backlog of the sustained phase and of each scale-out layout
    pure_s: float
    worker_processes: str  # the workers of each worker process, processes separated by /
    brokers: int  # 1 or 3
    scale_out: bool
    peer: bool = False  # also the obvious peer's batched ingest rate, and dipgw's over it


def run_pipeline_bench(
    base: Settings, options: PipelineOptions, say: Callable[[str], None]
) -> dict[str, Any]:
    """Every phase of a run; its figures. `say` is told the progress. Raises `BenchFailed`
    when the local services cannot start or the figures would not mean what they say."""
    if options.peer and not pydantic_available():
        raise BenchFailed(PYDANTIC_MISSING)
    say("pure group + score (one core)…")
    result: dict[str, Any] = {}
    pure = bench_group_score(2000, options.pure_s)
    result["group_score_cases_per_s"] = round(pure["group_score_cases_per_s"])
    say(f"  {result['group_score_cases_per_s']:,} cases/s")
    with tempfile.TemporaryDirectory(prefix="dipgw-bench-") as tmp:
        say(f"starting a local {options.brokers}-broker Kafka and PostgreSQL for the bench…")
        try:
            with LocalServices(_local(base, tmp, options.brokers)) as services:
                e2e, backlog = asyncio.run(_e2e(services, services.settings, options, say))
                result.update(e2e)
                if options.peer:
                    result.update(asyncio.run(_peer(services, backlog, e2e, say)))
                if options.scale_out and options.brokers == 3:
                    result.update(asyncio.run(_scale_out(services, options, say)))
            if options.scale_out and options.brokers != 3:
                say("starting a local 3-broker Kafka and PostgreSQL for the scale-out…")
                with LocalServices(_local(base, str(Path(tmp) / "scale-out"), 3)) as services:
                    result.update(asyncio.run(_scale_out(services, options, say)))
        except (KafkaError, BenchError) as exc:
            raise BenchFailed(str(exc)) from exc
    result["cores"] = os.cpu_count()
    return result


def void_reason(result: dict[str, Any]) -> str | None:
    """Why a run's figures are void (`scored_shortfall` of any phase, a peer that accepted
    nothing), or None."""
    problem = scored_shortfall(result["e2e_scored_check"])
    if "peer_ingest" in result and not result["peer_ingest_records_per_s"] > 0:
        problem = problem or (
            "the peer accepted no record (records by outcome:"
            f" {result['peer_ingest']['records']}): no ratio to give"
        )
    for name, run in result.get("e2e_scale_out", {}).get("layouts", {}).items():
        problem = problem or (
            f"scale-out {name}: {why}" if (why := scored_shortfall(run["scored_check"])) else None
        )
    return problem


def _local(base: Settings, state_dir: str, brokers: int) -> Settings:
    """A fresh local Kafka of `brokers` nodes and PostgreSQL under `state_dir`, never the
    configured ones."""
    return msgspec.structs.replace(
        base,
        state_dir=state_dir,
        kafka=msgspec.structs.replace(base.kafka, bootstrap="", local_brokers=brokers),
        pg=msgspec.structs.replace(base.pg, dsn=""),
        log=msgspec.structs.replace(base.log, level="warning"),
    )


def scored_shortfall(check: dict[str, Any], min_share: float = MIN_SCORED_SHARE) -> str | None:
    """Why a run's figures are void, or None: nothing scored, or far fewer cases scored than
    were sent to cities with rules (missing rules for a clearing year, say)."""
    sent, scored = check["sent_to_cities_with_rules"], check["scored"]
    if sent and scored == 0:
        return (
            f"no case was scored of {sent:,} sent to cities with rules: the bench timed a"
            " pipeline that scores nothing (are rules in force for the cases' clearing year?)"
        )
    if scored < min_share * sent:
        return (
            f"only {scored:,} of {sent:,} cases sent to cities with rules were scored"
            f" (< {min_share:.0%}): see the unscored reasons"
        )
    return None


def still_to_send(docs: list[bytes], outcome: list[Any], *, retry: bool) -> list[bytes]:
    """The lists of a push to send again: those answered `unavailable`.

    The bench's lists are all new and valid, so a `rejected` one is a failure, and so is a
    `duplicate` on a first send. On a retry (of lists answered `unavailable`), `duplicate` is
    what the gateway answers when the earlier send did reach Kafka after all (it may: the
    answer was given before the broker acknowledged): that list is in, not sent twice."""
    bad = ("rejected",) if retry else ("rejected", "duplicate")
    if len(outcome) != len(docs) or any(o in bad for o in outcome):
        raise ValueError("lists refused or duplicated")
    return [d for d, o in zip(docs, outcome, strict=True) if o == "unavailable"]


class _Pusher:
    def __init__(self, url: str, secrets: dict[str, bytes], http: aiohttp.ClientSession) -> None:
        self.url, self.secrets, self.http = url, secrets, http
        self.answers: dict[str, int] = {}  # every answer by HTTP status, retries included
        self.records: dict[str, int] = {}  # every record outcome, retries included

    async def push(self, code: str, docs: list[bytes]) -> None:
        """Push until every list is in; records unavailable (503) are sent again, alone
        (`still_to_send`)."""
        for attempt in range(20):
            body = b'{"records":[' + b",".join(docs) + b"]}"
            headers = {
                "Content-Type": "application/json",
                **signed_headers(code, self.secrets[code], "POST", PATH, body),
            }
            async with self.http.post(self.url + PATH, data=body, headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
            self.answers[str(status)] = self.answers.get(str(status), 0) + 1
            answer = msgspec.json.decode(raw) if raw[:1] in (b"{", b"[") else None
            add_counts(self.records, count_records(status, answer, len(docs)))
            if status in (200, 503) and isinstance(answer, dict):
                outcome = [r.get("status") for r in answer.get("results", [])]
                try:
                    docs = still_to_send(docs, outcome, retry=attempt > 0)
                except ValueError as exc:
                    raise RuntimeError(f"{exc}: {raw[:300]!r}") from None
                if not docs:
                    return
            elif status != 429:
                raise RuntimeError(f"push refused: {status} {raw[:300]!r}")
            await asyncio.sleep(0.2)
        raise RuntimeError("push kept being refused")


class _Case(msgspec.Struct, frozen=True):
    code: str
    setl_id: str
    city: str
    year: int  # the clearing year: the discharge's
    doc: bytes


def _feed(n: int, rng: random.Random, first: int, now: datetime | None = None) -> list[_Case]:
    """n valid settlement lists (contracts.samples) from the hospitals of cities with rules,
    20 % of the patients insured in another city of the demo (with rules or not), uploaded
    `now` (default: the real time, as the gateway's own clock will judge them)."""
    from contracts.samples import make_settlement

    now = now or datetime.now(CST).replace(tzinfo=None)
    cities = sorted({admdvs for _, _, admdvs, _ in HOSPITALS})
    out = []
    for i in range(first, first + n):
        code, _, area, _ = RATED_HOSPITALS[i % len(RATED_HOSPITALS)]
        insured = area if rng.random() < 0.8 else rng.choice(cities)
        doc = make_settlement(
            rng,
            now=now,
            mdtrtarea_admvs=area,
            insuplc_admdvs=insured,
            fixmedins_code=code,
            serial=i,
        )
        setl = doc["input"]["setlinfo"]
        year = int(setl["dscg_time"][:4])
        city = city_of(area) or area
        out.append(_Case(code, setl["setl_id"], city, year, msgspec.json.encode(doc)))
    return out


def _by_code(cases: list[_Case]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for case in cases:
        out.setdefault(case.code, []).append(case.doc)
    return out


def _cpu_seconds(roots: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds (user + system) so far of each group's root processes and their live
    descendants."""
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
    for name, group in roots.items():
        tops = set(group)
        total = 0.0
        for pid in used:
            p = pid
            while p > 1 and p not in tops:
                p = parent.get(p, 0)
            if p in tops:
                total += used[pid]
        out[name] = total
    return out


def _roots(
    services: LocalServices, gateway: int, workers: dict[str, list[int]]
) -> dict[str, list[int]]:
    """The process groups whose CPU a run reports: the gateway, the workers (`workers`: a
    group's name → its processes), every Kafka node, PostgreSQL."""
    roots: dict[str, list[int]] = {"gateway": [gateway], **workers}
    if services.kafka is not None:
        roots["kafka"] = [pid for pid in services.kafka.node_pids().values() if pid is not None]
    if services.pg is not None:
        pidfile = services.pg.pgdata / "postmaster.pid"
        roots["postgres"] = [int(pidfile.read_text().split()[0])]
    return roots


async def _count(pool: asyncpg.Pool) -> int:
    """Rows stored, scored or not: every case ends as one row, so this says when it is done."""
    return int(await pool.fetchval("SELECT count(*) FROM scored_cases"))


async def _wait_count(pool: asyncpg.Pool, target: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await _count(pool) >= target:
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise RuntimeError(f"only {await _count(pool)} of {target} cases stored in {timeout}s")


async def _outcomes(pool: asyncpg.Pool, cases: list[_Case]) -> list[dict[str, Any]]:
    """Rows of `cases` by treating city, clearing year, status and unscored reason."""
    rows = await pool.fetch(
        """SELECT treating_city, clearing_year, status, unscored_rule, count(*) AS n
           FROM scored_cases WHERE setl_id = ANY($1)
           GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4""",
        [c.setl_id for c in cases],
    )
    return [
        {
            "city": r["treating_city"],
            "year": r["clearing_year"],
            "status": r["status"],
            "reason": r["unscored_rule"],
            "cases": r["n"],
        }
        for r in rows
    ]


def scored_check(cases: list[_Case], outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Cases sent to cities with rules against the rows stored as `scored` (only those)."""
    sent = sum(1 for c in cases if c.city in SAMPLE_RULES)
    scored = sum(r["cases"] for r in outcomes if r["status"] == "scored")
    unscored = sum(r["cases"] for r in outcomes if r["status"] != "scored")
    return {
        "sent_to_cities_with_rules": sent,
        "scored": scored,
        "unscored": unscored,
        "scored_share": round(scored / sent, 4) if sent else None,
        "min_scored_share": MIN_SCORED_SHARE,
    }


def _sum_by(outcomes: list[dict[str, Any]], key: str, status: str = "scored") -> dict[str, int]:
    out: dict[str, int] = {}
    for row in outcomes:
        if row["status"] == status:
            name = str(row[key])
            out[name] = out.get(name, 0) + row["cases"]
    return out


async def _e2e(
    services: LocalServices, settings: Settings, args: PipelineOptions, say: Any
) -> tuple[dict[str, Any], list[_Case]]:
    """The steady and sustained phases; their figures, and the sustained phase's backlog."""
    pool = await asyncpg.create_pool(services.dsn, min_size=1, max_size=4)
    procs: list[subprocess.Popen[str]] = []
    try:
        env = _env(services, services.dsn)
        gateway = spawn_up(env, "--workers", "")
        procs.append(gateway)
        url = await wait_ready(gateway)  # migrations are applied once it is up
        layout = args.worker_processes.split("/")
        for workers in layout:
            procs.append(spawn_up(env, "--no-gateway", "--workers", workers))
            await wait_ready(procs[-1])
        child = effective_child_settings(env)
        ran_with = run_settings(
            child,
            **await cluster_facts(services.bootstrap, child.topics.accepted),
            gateway_processes=1,
            worker_processes=layout,
            push_batch_backlog=BACKLOG_BATCH,
            push_concurrency_backlog=BACKLOG_CONCURRENCY,
            steady_tick_ms=100,
        )
        secrets = await _hospitals(pool, settings)
        rng = random.Random(20261124)
        steady_n = int(args.rate * args.steady_s)
        say(f"generating {1000 + steady_n + args.max_cases:,} settlement lists…")
        first = rng.randrange(10**9)  # serials → unique setl_ids
        warm = _feed(1000, rng, first)
        steady = _feed(steady_n, rng, first + 1000)
        backlog = _feed(args.max_cases, rng, first + 1000 + steady_n)
        years = await _import_rules(pool, warm + steady + backlog)
        say(f"sample rules in force for clearing year(s) {years}")
        connector = aiohttp.TCPConnector(limit=32)
        async with aiohttp.ClientSession(connector=connector) as http:
            pusher = _Pusher(url, secrets, http)
            say("warming up…")
            await asyncio.gather(*(pusher.push(c, d) for c, d in _by_code(warm).items()))
            await _wait_count(pool, len(warm), 180)
            say(f"steady {args.rate:,} cases/s for {args.steady_s:g} s…")
            steady_figures = await _steady(pool, pusher, steady, args.rate, len(warm))
            say(
                f"  achieved {steady_figures['e2e_steady_achieved_rate']:,} cases/s;"
                f" p50 {steady_figures['e2e_p50_ms']} ms, p99 {steady_figures['e2e_p99_ms']} ms"
                f" (from the scheduled send); stage p50s (ms) {steady_figures['e2e_stage_p50_ms']}"
            )
            say(f"backlog of {args.max_cases:,} cases as fast as possible…")
            base = await _count(pool)
            roots = _roots(
                services,
                procs[0].pid,
                {"workers": [procs[1].pid]}
                if len(procs) == 2
                else {f"workers:{p.args[-1]}": [p.pid] for p in procs[1:]},
            )
            sustained = await _sustained(pool, pusher, backlog, base, roots, rng)
            say(f"  CPU seconds per 1,000 cases: {sustained['e2e_cpu_s_per_1000_cases']}")
            say(
                f"  {sustained['e2e_cases_per_s']:,} scored cases/s"
                f" ({sustained['e2e_rows_per_s']:,} rows/s; pushes took"
                f" {sustained['e2e_push_seconds']} s)"
            )
        outcomes = await _outcomes(pool, steady + backlog)
        figures = {
            **steady_figures,
            **sustained,
            "e2e_steady_rate": args.rate,
            "e2e_steady_cases": steady_n,
            "e2e_backlog_cases": args.max_cases,
            "e2e_rules_years": years,
            "e2e_outcomes": outcomes,
            "e2e_scored_by_year": _sum_by(outcomes, "year"),
            "e2e_scored_by_city": _sum_by(outcomes, "city"),
            "e2e_scored_check": scored_check(steady + backlog, outcomes),
            "e2e_push_answers": pusher.answers,
            "e2e_push_records": pusher.records,
            "settings": ran_with,
        }
        return figures, backlog
    finally:
        stop_all(procs)
        await pool.close()


def _env(services: LocalServices, dsn: str, **extra: str) -> dict[str, str]:
    """The whole environment of a run's `dipgw up` processes (`TUNING` besides the defaults;
    topics with as many replicas as the local cluster has nodes)."""
    return child_env(
        services.settings.state_dir,
        services.bootstrap,
        dsn,
        **TUNING,
        DIPGW_TOPICS_REPLICATION_FACTOR=str(services.settings.topics.replication_factor),
        **extra,
    )


class _Replay(Load):
    """The peer's load generator: the given lists, in order and round again, instead of new
    ones (the peer checks only the signature's hospital, not each list's)."""

    def __init__(self, url: str, secret: bytes, docs: list[bytes]) -> None:
        super().__init__(url, secret, seed=0)
        self._docs = docs

    def documents(self, n: int) -> list[dict[str, Any]]:
        start, self.counter = self.counter, self.counter + n
        return [
            msgspec.json.decode(self._docs[i % len(self._docs)]) for i in range(start, start + n)
        ]


async def _peer(
    services: LocalServices,
    backlog: list[_Case],
    e2e: dict[str, Any],
    say: Callable[[str], None],
) -> dict[str, Any]:
    """The obvious peer's batched ingest rate on this run's broker and database, fed the
    sustained phase's lists; dipgw's end-to-end rate over it."""
    settings = services.settings
    child = effective_child_settings(_env(services, services.dsn))
    secret = await register_bench_hospital(services.dsn, settings)
    port = free_ports(1)[0]
    proc = start_peer(settings, child, services, port, secret)
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_up(url, what=peer_failed(settings))
        load = _Replay(url, secret, [c.doc for c in backlog])
        meter = CpuMeter([proc.pid], services)
        seconds = peer_seconds(e2e["e2e_seconds"])
        say(f"the obvious peer's batched ingest, {seconds:g} s, the same lists…")
        await run_batched(load, 1.0, PEER_BATCH, PEER_CONCURRENCY, meter)  # warm-up
        load.counter = 0  # the measured load starts with the backlog's first list
        batched = await run_batched(load, seconds, PEER_BATCH, PEER_CONCURRENCY, meter)
    finally:
        stop_all([proc])  # type: ignore[list-item]  # bytes or text: it only signals, waits
    figures = peer_figures(
        batched.seconds,
        batched.records,
        batched.answers,
        batched.latencies_ms,
        batched.cpu,
        e2e["e2e_cases_per_s"],
    )
    say(
        f"  peer {figures['peer_ingest_records_per_s']:,} records/s ingested; dipgw end to end"
        f" ÷ peer ingest = {figures['e2e_vs_peer_ingest_ratio']}"
    )
    return figures


def peer_seconds(e2e_seconds: float) -> float:
    """How long the peer's load runs: as long as dipgw's sustained phase, within bounds."""
    return min(PEER_MAX_S, max(PEER_MIN_S, e2e_seconds))


def peer_figures(
    seconds: float,
    records: dict[str, int],
    answers: dict[str, int],
    latencies_ms: list[float],
    cpu: dict[str, float],
    e2e_cases_per_s: float,
) -> dict[str, Any]:
    """The peer's batched load as figures beside dipgw's: its accepted records/s, dipgw's
    end-to-end rate over it (`ratio`, as `dipgw bench ingest --peer`), and the rest of what
    its load gave (CPU in ms per accepted record = CPU seconds per 1,000, as dipgw's)."""
    per_s = round(records.get("accepted", 0) / seconds, 1) if seconds > 0 else 0.0
    return {
        "peer_ingest_records_per_s": per_s,
        "e2e_vs_peer_ingest_ratio": ratio(e2e_cases_per_s, per_s),
        "peer_ingest": {
            "seconds": round(seconds, 2),
            "batch_size": PEER_BATCH,
            "concurrency": PEER_CONCURRENCY,
            "hospital": HOSPITAL,
            "records": records,
            "answers": answers,
            "p50_ms": round(percentile(latencies_ms, 0.50), 2),
            "p99_ms": round(percentile(latencies_ms, 0.99), 2),
            "cpu_s_per_1000_records": cpu,
            "stack": PEER_SETTINGS,
        },
    }


# The scale-out's layouts: worker processes, each running every stage on the way from a push
# to a scored row (the quality worker is not on that path and runs in neither).
STAGES = "sink,grouping,scoring,scored_sink"
LAYOUTS = {"1proc": [STAGES], "2proc": [STAGES, STAGES]}


def layout_env(tag: str) -> dict[str, str]:
    """Topics and consumer groups of one layout's own (`bench-<tag>.` before every topic):
    a layout never reads another's backlog, nor resumes from its committed offsets."""
    from adapters.runtime.settings import TopicSettings

    topics = msgspec.structs.asdict(TopicSettings())
    env = {
        f"DIPGW_TOPICS_{field.upper()}": f"bench-{tag}.{name}"
        for field, name in topics.items()
        if isinstance(name, str)  # every topic name (not partitions, replication factor)
    }
    env["DIPGW_WORKER_GROUP_PREFIX"] = f"dipgw-bench-{tag}"
    return env


async def _fresh_database(dsn: str, name: str) -> str:
    """A new, empty database `name` on the server of `dsn`; its DSN."""
    from urllib.parse import urlsplit

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlsplit(dsn)._replace(path=f"/{name}").geturl()


async def _scale_out(
    services: LocalServices, args: PipelineOptions, say: Callable[[str], None]
) -> dict[str, Any]:
    """The sustained rate on the local 3-broker cluster with every stage in 1 worker process,
    then in 2 (each stage's consumer group then splits the partitions between 2 processes);
    one gateway process in both. Same backlog size; each layout on its own topics, consumer
    groups and database, with processes started for it and stopped after it."""
    runs = {}
    rng = random.Random(20261125)
    for tag, layout in LAYOUTS.items():
        say(f"scale-out {tag}: {len(layout)} worker process(es), {args.max_cases:,} cases…")
        runs[tag] = await _layout_run(services, tag, layout, args.max_cases, rng)
        say(
            f"  {runs[tag]['e2e_cases_per_s']:,} scored cases/s; CPU seconds per 1,000 cases"
            f" {runs[tag]['e2e_cpu_s_per_1000_cases']}"
        )
    try:
        keys = scale_out_keys(runs)
    except ValueError as exc:
        raise BenchFailed(f"scale-out: {exc}") from exc
    cluster = runs["1proc"]["cluster"]
    return {
        **keys,
        "e2e_scale_out": {
            **cluster,
            "backlog_cases": args.max_cases,
            "gateway_processes": 1,
            "layouts": runs,
        },
    }


async def _layout_run(
    services: LocalServices, tag: str, layout: list[str], n: int, rng: random.Random
) -> dict[str, Any]:
    settings = services.settings
    dsn = await _fresh_database(services.dsn, f"bench_{tag}")
    env = _env(services, dsn, **layout_env(tag))
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(spawn_up(env, "--workers", ""))
        url = await wait_ready(procs[0])  # migrations are applied once it is up
        for workers in layout:
            procs.append(spawn_up(env, "--no-gateway", "--workers", workers))
            await wait_ready(procs[-1])
        child = effective_child_settings(env)
        cluster = await cluster_facts(services.bootstrap, child.topics.accepted)
        secrets = await _hospitals(pool, settings)
        first = rng.randrange(10**9)
        warm = _feed(1000, rng, first)
        backlog = _feed(n, rng, first + 1000)
        await _import_rules(pool, warm + backlog)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as http:
            pusher = _Pusher(url, secrets, http)
            await asyncio.gather(*(pusher.push(c, d) for c, d in _by_code(warm).items()))
            await _wait_count(pool, len(warm), 180)
            roots = _roots(services, procs[0].pid, {"workers": [p.pid for p in procs[1:]]})
            sustained = await _sustained(pool, pusher, backlog, len(warm), roots, rng)
        return {
            **sustained,
            "worker_processes": layout,
            "scored_check": scored_check(backlog, await _outcomes(pool, backlog)),
            "push_answers": pusher.answers,
            "topics_prefix": f"bench-{tag}.",
            "database": f"bench_{tag}",
            "cluster": cluster,
            "non_default": non_default_settings(child),
        }
    finally:
        stop_all(procs)
        await pool.close()


async def _hospitals(pool: asyncpg.Pool, settings: Settings) -> dict[str, bytes]:
    """The demo hospitals of cities with rules, registered; their signing secrets."""
    registry = Registry(pool, sealer_for(settings.auth, settings.state_path))
    return {
        code: (await registry.add_hospital(code, name, admdvs, level)).encode()
        for code, name, admdvs, level in RATED_HOSPITALS
    }


async def _import_rules(pool: asyncpg.Pool, cases: list[_Case]) -> list[int]:
    """The sample rules, in force for every clearing year of `cases`; those years."""
    years = sorted({c.year for c in cases})
    for path in SAMPLE_RULES.values():
        rules, sources = read_rules_files([path])
        for year in years:
            await import_rules(pool, rules_for_year(rules, year), sources)
    return years


async def _sustained(
    pool: asyncpg.Pool,
    pusher: _Pusher,
    backlog: list[_Case],
    base: int,
    roots: dict[str, list[int]],
    rng: random.Random,
) -> dict[str, Any]:
    """The backlog pushed as fast as the gateway takes it (`BACKLOG_BATCH` a push,
    `BACKLOG_CONCURRENCY` at a time); scored cases ÷ the time until its last row is stored.
    One worker layout per call (the scale-out calls it once per layout, each on fresh topics
    and a fresh database)."""
    cpu_before = _cpu_seconds(roots)
    started = time.monotonic()
    queue = [
        (code, docs[i : i + BACKLOG_BATCH])
        for code, docs in _by_code(backlog).items()
        for i in range(0, len(docs), BACKLOG_BATCH)
    ]
    rng.shuffle(queue)
    sem = asyncio.Semaphore(BACKLOG_CONCURRENCY)

    async def one(code: str, docs: list[bytes]) -> None:
        async with sem:
            await pusher.push(code, docs)

    await asyncio.gather(*(one(c, d) for c, d in queue))
    pushed = time.monotonic()
    done = await _wait_count(pool, base + len(backlog), max(120.0, len(backlog) / 100))
    cpu_after = _cpu_seconds(roots)
    scored = int(
        await pool.fetchval(
            "SELECT count(*) FROM scored_cases WHERE status = 'scored' AND setl_id = ANY($1)",
            [c.setl_id for c in backlog],
        )
    )
    return {
        "e2e_cases_per_s": round(scored / (done - started)),
        "e2e_rows_per_s": round(len(backlog) / (done - started)),
        "e2e_push_cases_per_s": round(len(backlog) / (pushed - started)),
        "e2e_push_seconds": round(pushed - started, 2),
        "e2e_seconds": round(done - started, 2),  # from the first push to the last row
        "e2e_backlog_scored": scored,
        "e2e_cpu_s_per_1000_cases": {
            name: round((cpu_after[name] - cpu_before[name]) / len(backlog) * 1000, 2)
            for name in roots
        },
    }


async def _steady(
    pool: asyncpg.Pool, pusher: _Pusher, cases: list[_Case], rate: int, base: int
) -> dict[str, Any]:
    """Push `cases` at `rate` cases/s in 100 ms ticks, open loop: every case of a tick is
    *scheduled* at the tick's start, and its latency runs from then to its scored row — a
    generator (or connection pool) that falls behind shows up in the figures."""
    items = list(cases)
    random.Random(7).shuffle(items)
    per_tick = max(1, rate // 10)
    scheduled: dict[tuple[str, str], float] = {}
    sent_at: dict[tuple[str, str], float] = {}
    tasks: list[asyncio.Task[None]] = []
    start = time.time()
    for tick, i in enumerate(range(0, len(items), per_tick)):
        due = start + tick * 0.1
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = items[i : i + per_tick]
        now = time.time()
        for case in chunk:
            scheduled[(case.code, case.setl_id)] = due
            sent_at[(case.code, case.setl_id)] = now
        tasks.extend(asyncio.create_task(pusher.push(c, d)) for c, d in _by_code(chunk).items())
    await asyncio.gather(*tasks)
    await _wait_count(pool, base + len(items), 180)
    rows = await pool.fetch(
        """SELECT s.fixmedins_code, s.setl_id, extract(epoch FROM s.stored_at) AS t,
                  extract(epoch FROM r.received_at) AS received,
                  extract(epoch FROM r.accepted_at) AS accepted,
                  extract(epoch FROM s.scored_at) AS scored
           FROM scored_cases s JOIN receipts r USING (receipt_id)
           WHERE s.setl_id = ANY($1) AND s.status = 'scored'""",
        [c.setl_id for c in items],
    )
    keys = [(r["fixmedins_code"], r["setl_id"]) for r in rows]
    samples = [(scheduled[k], sent_at[k], float(r["t"])) for k, r in zip(keys, rows, strict=True)]
    latencies = open_loop_latencies_ms(samples)
    achieved = achieved_rate(start, list(sent_at.values()), rate)

    def gaps(begin: str, end: str) -> list[float]:
        out = []
        for r in rows:
            a = scheduled[(r["fixmedins_code"], r["setl_id"])] if begin == "due" else r[begin]
            if a is not None and r[end] is not None:
                out.append((float(r[end]) - float(a)) * 1000)
        return out

    stages = {
        "scheduled_to_received": gaps("due", "received"),
        "received_to_accepted": gaps("received", "accepted"),
        "accepted_to_scored": gaps("accepted", "scored"),
        "scored_to_stored": gaps("scored", "t"),
    }
    return {
        "e2e_p50_ms": round(percentile(latencies, 0.50), 1),
        "e2e_p99_ms": round(percentile(latencies, 0.99), 1),
        "e2e_stage_p50_ms": {k: round(percentile(v, 0.5), 1) for k, v in stages.items() if v},
        "e2e_steady_achieved_rate": round(achieved),
        "e2e_steady_rate_met": rate_met(achieved, rate),
        "e2e_steady_scored": len(rows),
        # Whether the pipeline kept up: scored rows ÷ (last row stored − start of the phase).
        "e2e_steady_scored_per_s": round(
            len(rows) / max(1e-9, max((float(r["t"]) for r in rows), default=start) - start)
        ),
        "e2e_steady_send_lag_p99_ms": round(percentile(send_lag_ms(samples), 0.99), 1),
    }
