"""Bringing up what a process needs: local services, the pool, the producer, the app, workers.

`LocalServices` is synchronous on purpose: it starts the local Kafka JVM from the main thread,
so the broker's parent-death signal is tied to the process and never to a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg
import msgspec
from aiohttp import web
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from adapters.feeds import SOURCE_KINDS, FeedConfig
from adapters.runtime.clock import Clock, system_clock
from adapters.runtime.errors import DipgwError, describe_error, is_dependency_failure
from adapters.runtime.kafka import (
    RenewingProducer,
    authenticated,
    client_options,
    ensure_topics,
    new_producer,
)
from adapters.runtime.logs import get_logger
from adapters.runtime.metrics import WORKER_RECORDS, WORKER_RESTARTS, WORKER_UP
from adapters.runtime.metrics import configure as configure_metrics
from adapters.runtime.metrics_http import MetricsListener, dependency_probes, listen_on
from adapters.runtime.postgres import create_pool
from adapters.runtime.settings import Settings, SettingsError
from adapters.runtime.stages import watch_loop_lag
from adapters.runtime.topics import startup_topics
from gateway.accounts import Registry
from gateway.app import create_app
from gateway.checks import Checker
from gateway.feeds import FeedRunner
from gateway.ingest import Ingestor
from gateway.localkafka import LocalKafkaCluster
from gateway.localpg import EmbeddedPostgres
from gateway.offload import input_limits
from gateway.protocol import GatewayRunner
from gateway.sealing import sealer_for
from gateway.services import SERVICES, Services
from workers._runner import run_consumer
from workers.registry import DEFAULT_WORKERS, WORKERS, WorkerContext, WorkerSpec

log = get_logger("dipgw.runtime")
T = TypeVar("T")


@dataclass
class LocalServices:
    """Kafka and PostgreSQL: the configured ones, or local ones under the state directory.

    A local Kafka cluster (`kafka.local_brokers` nodes) replicates dipgw's topics on every
    node: `start()` sets `topics.replication_factor` to the node count (1, or 3 with
    min.insync.replicas 2), so callers use `services.settings` from then on.
    """

    settings: Settings
    kafka: LocalKafkaCluster | None = None
    pg: EmbeddedPostgres | None = None
    bootstrap: str = ""
    dsn: str = ""

    def start(self) -> LocalServices:
        state = self.settings.state_path
        self.bootstrap = self.settings.kafka.bootstrap
        if not self.bootstrap:
            brokers = self.settings.kafka.local_brokers
            self.kafka = LocalKafkaCluster(
                state / "kafka",
                brokers=brokers,
                version=self.settings.kafka.local_version,
                heap_mb=self.settings.kafka.local_heap_mb,
                cache_dir=self.settings.cache_dir,
            )
            self.bootstrap = self.kafka.start(owned=True)
            self.settings = msgspec.structs.replace(
                self.settings,
                topics=msgspec.structs.replace(self.settings.topics, replication_factor=brokers),
            )
            log.info(
                "kafka.local.started",
                bootstrap=self.bootstrap,
                version=self.kafka.version,
                brokers=brokers,
            )
        self.dsn = self.settings.pg.dsn
        if not self.dsn:
            self.pg = EmbeddedPostgres(state / "pgdata")
            self.dsn = self.pg.start()
            log.info("postgres.embedded.started", pgdata=str(state / "pgdata"))
        return self

    def stop(self) -> None:
        if self.kafka is not None:
            self.kafka.stop()
            log.info("kafka.local.stopped")
        if self.pg is not None:
            self.pg.stop()
            log.info("postgres.embedded.stopped")

    def __enter__(self) -> LocalServices:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """HTTPS when a certificate is configured; client certificates (mTLS) when a CA is."""
    if not settings.http.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.http.tls_cert, settings.http.tls_key or None)
    if settings.http.client_ca:
        context.load_verify_locations(settings.http.client_ca)
        context.verify_mode = ssl.CERT_OPTIONAL  # signatures remain an alternative
    return context


def all_topics(settings: Settings) -> list[str]:
    """The topics a process makes sure of at start (`topics.startup_topics`)."""
    return startup_topics(settings)


@dataclass
class Stack:
    """The running gateway and workers of one process."""

    settings: Settings
    pool: asyncpg.Pool
    producer: RenewingProducer
    registry: Registry
    bootstrap: str
    url: str
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    metrics_url: str = ""
    """This process's own metrics listener (`metrics.listen`), or ""."""


@contextlib.asynccontextmanager
async def running_stack(
    settings: Settings,
    bootstrap: str,
    dsn: str,
    *,
    gateway: bool = True,
    workers: tuple[str, ...] = DEFAULT_WORKERS,
    clock: Clock = system_clock,
) -> AsyncIterator[Stack]:
    """Gateway + workers until the block exits; then in-flight work finishes and all stops.

    `clock` is the stack's one clock (`adapters.runtime.clock`): the gateway stamps uploads with it
    and the workers read it; tests pass a fixed one so that they do not depend on the date.
    """
    configure_metrics(per_hospital=settings.metrics.per_hospital)
    # Kafka or PostgreSQL may come up after us (or be restarting): wait for them, with backoff.
    # refused credentials end the start at once (KafkaAuthenticationError is not retried)
    await _until_ready(
        "kafka topics",
        lambda: authenticated(
            settings, bootstrap, lambda: ensure_topics(settings, bootstrap, all_topics(settings))
        ),
    )
    pool = await _until_ready(
        "postgres",
        lambda: create_pool(
            dsn,
            min_size=settings.pg.pool_min,
            max_size=settings.pg.pool_max,
            command_timeout_s=settings.pg.command_timeout_s,
        ),
    )
    producer = RenewingProducer(lambda: new_producer(settings, bootstrap), purpose="ingest")
    await _until_ready("kafka producer", lambda: authenticated(settings, bootstrap, producer.start))
    # Workers get a producer of their own: a stage stalled on one of its topics (a city topic
    # whose leader is still being elected, say) must never hold up hospitals' uploads, and
    # the idempotent producer sends one request per broker at a time.
    worker_producer = producer
    if workers:
        worker_producer = RenewingProducer(
            lambda: new_producer(settings, bootstrap, purpose="workers"), purpose="workers"
        )
        await _until_ready("kafka worker producer", worker_producer.start)
    feeds = declared_feeds(settings) if gateway else []
    stop = asyncio.Event()
    runner: web.AppRunner | None = None
    listener: MetricsListener | None = None
    ingestor: Ingestor | None = None
    registry = Registry(
        pool,
        sealer_for(settings.auth, settings.state_path, serving=gateway),
        cache_ttl_s=settings.auth.cache_ttl_s,
    )
    if gateway:  # only a process that authenticates hospitals needs the province's key
        await registry.check_sealing()
    stack = Stack(
        settings=settings,
        pool=pool,
        producer=producer,
        registry=registry,
        bootstrap=bootstrap,
        url="",
    )
    try:
        if settings.metrics.listen:  # before the workers: a busy address fails the start
            listener = MetricsListener(dependency_probes(pool, producer))
            stack.metrics_url = await listen_on(listener, settings.metrics.listen)
            log.info("metrics.listening", url=stack.metrics_url)
        context = WorkerContext(
            settings=settings,
            pool=pool,
            producer=worker_producer,
            bootstrap=bootstrap,
            clock=clock,
        )
        stack.tasks.append(asyncio.create_task(watch_loop_lag(stop), name="loop-lag"))
        for name in workers:
            if name not in WORKERS:
                raise ValueError(f"unknown worker {name!r}; known: {', '.join(WORKERS)}")
            stack.tasks.append(
                asyncio.create_task(supervised_worker(WORKERS[name], context, stop), name=name)
            )
        if gateway:
            stack.tasks.append(
                asyncio.create_task(
                    _purge_nonces(registry, settings.auth.window_s, stop), name="nonce-purge"
                )
            )
            ingestor = Ingestor(
                pool,
                producer,
                settings.topics.accepted,
                ack_timeout_s=settings.kafka.request_timeout_ms / 1000,
            )
            app = create_app(
                pool,
                ingestor,
                registry,
                Checker(limits=input_limits(settings.limits)),
                producer=producer,
                rejected_topic=settings.topics.rejected,
                max_body_bytes=settings.http.max_body_bytes,
                batch_max_records=settings.limits.batch_max_records,
                limits=settings.limits,
                client_ip_header=settings.http.client_ip_header,
                window_s=settings.auth.window_s,
                request_timeout_s=settings.http.request_timeout_s,
                kafka_timeout_s=settings.kafka.request_timeout_ms / 1000,
                clock=clock,
                file_workers=settings.limits.file_workers,
                file_worker_memory_mb=settings.limits.file_worker_memory_mb,
                topics=settings.topics,
            )
            stack.tasks.append(
                asyncio.create_task(
                    _run_feeds(settings, app[SERVICES], registry, dsn, clock, stop, feeds),
                    name="feeds",
                )
            )
            runner = GatewayRunner(
                app,
                access_log=None,
                shutdown_timeout=10,
                # aiohttp closes a connection still without a whole request at this time,
                # however it trickles: the slow-header bound (and the idle keep-alive)
                keepalive_timeout=settings.http.header_timeout_s,
            )
            await runner.setup()
            tls = tls_context(settings)
            site = web.TCPSite(
                runner, settings.http.host, settings.http.port, reuse_port=True, ssl_context=tls
            )
            await site.start()
            host, port = runner.addresses[0][:2]
            stack.url = f"{'https' if tls else 'http'}://{host}:{port}"
            log.info("gateway.listening", url=stack.url)
        # Everything built so far lives as long as the process: keep the cyclic GC from
        # rescanning it on every full collection (shorter pauses on the request path).
        gc.freeze()
        yield stack
    finally:
        if runner is not None:
            await runner.cleanup()  # stops accepting, finishes requests in flight
        if ingestor is not None:
            await ingestor.close()
        stop.set()
        for task in stack.tasks:
            # A worker stuck in a retry backoff is cancelled: its uncommitted batch replays.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=15)
        if listener is not None:
            await listener.stop()
        await producer.stop()
        if worker_producer is not producer:
            await worker_producer.stop()
        await pool.close()


async def _until_ready(what: str, attempt: Callable[[], Awaitable[T]], within_s: float = 120) -> T:
    retrying = AsyncRetrying(
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(within_s),
        retry=retry_if_exception(is_dependency_failure),
        reraise=True,
        before_sleep=lambda state: log.warning(
            "dependency.waiting",
            what=what,
            attempt=state.attempt_number,
            error=describe_error(state.outcome.exception() if state.outcome else None),
        ),
    )
    async for try_ in retrying:
        with try_:
            return await attempt()
    raise AssertionError("unreachable")  # pragma: no cover


def declared_feeds(settings: Settings) -> list[FeedConfig]:
    """The `[[feeds]]` of the settings, each checked whole: a feed declared wrongly stops the
    start, naming the field."""
    problems, declared = [], []
    for index, raw in enumerate(settings.feeds):
        try:
            config = msgspec.convert(raw, FeedConfig)
        except msgspec.ValidationError as exc:
            problems.append(f"feeds[{index}]: {exc}")
            continue
        problems += [f"feeds[{index}] ({config.name}).{p}" for p in SOURCE_KINDS.check(config)]
        declared.append(config)
    if problems:
        raise SettingsError(problems)
    return declared


async def _run_feeds(
    settings: Settings,
    services: Services,
    registry: Registry,
    dsn: str,
    clock: Clock,
    stop: asyncio.Event,
    declared: list[FeedConfig],
) -> None:
    """The feed sources (`gateway.feeds`) of every gateway process: each feed runs in the one
    process holding its lock."""
    runner = FeedRunner(
        services,
        registry,
        dsn,
        declared=declared,
        clock=clock,
        file_max_records=settings.limits.feed_file_max_records,
    )
    await runner.run(stop)


async def _purge_nonces(registry: Registry, window_s: int, stop: asyncio.Event) -> None:
    """Nonces older than twice the signing window can never be replayed: drop them; and the
    /ops sessions that have ended."""
    while not stop.is_set():
        with contextlib.suppress(Exception):
            await registry.purge_nonces(window_s)
            await registry.purge_sessions()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=60)


class StageEnded(DipgwError):
    """A worker's consumer loop returned although nobody asked it to stop."""


def _cancelled_from_outside() -> bool:
    """True when this task itself is being cancelled (shutdown), not merely handed a stray
    CancelledError by a library (aiokafka cancels internal waits during broker outages)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class _Backoff:
    """Exponential backoff between restarts of a stage, starting over once a run has been
    healthy for a minute (a stage that fails once a day must not wait 30 s each time)."""

    def __init__(self, first_s: float = 0.5, max_s: float = 30.0, healthy_s: float = 60.0):
        self._first_s, self._max_s, self._healthy_s = first_s, max_s, healthy_s
        self._failures = 0
        self.run_started = time.monotonic()

    def __call__(self, _state: RetryCallState) -> float:
        if time.monotonic() - self.run_started >= self._healthy_s:
            self._failures = 0
        self._failures += 1
        return float(min(self._max_s, self._first_s * 2 ** (self._failures - 1)))


async def supervised_worker(spec: WorkerSpec, context: WorkerContext, stop: asyncio.Event) -> None:
    """Run one worker until `stop`, supervised: whatever ends it early — a crash, a broker or
    database away, a stray cancellation, a loop that returned — is logged, counted in
    `dipgw_worker_restarts_total` and restarted with backoff.

    Restarting is safe because offsets are committed only after a batch is written.
    """
    settings = context.settings
    handler = spec.make_handler(context)
    backoff = _Backoff()

    def restart_unless_shutdown(exc: BaseException) -> bool:
        if isinstance(exc, asyncio.CancelledError):
            return not _cancelled_from_outside()
        return isinstance(exc, Exception)

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        WORKER_UP.labels(spec.name).set(0)
        WORKER_RESTARTS.labels(spec.name, type(error).__name__).inc()
        log.warning(
            "worker.restarting",
            worker=spec.name,
            attempt=state.attempt_number,
            error=describe_error(error),
            in_s=round(state.upcoming_sleep, 2),
        )

    retrying = AsyncRetrying(
        wait=backoff,
        retry=retry_if_exception(restart_unless_shutdown),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                backoff.run_started = time.monotonic()
                WORKER_UP.labels(spec.name).set(1)
                await run_consumer(
                    name=spec.name,
                    bootstrap=context.bootstrap,
                    group_id=f"{settings.worker.group_prefix}.{spec.name}",
                    topics=spec.topics(settings),
                    handler=handler,
                    stop=stop,
                    max_batch=settings.worker.max_batch,
                    batch_timeout_s=settings.worker.batch_timeout_s,
                    on_batch=WORKER_RECORDS.labels(spec.name).inc,
                    client_options=client_options(settings.kafka),
                )
                if not stop.is_set():
                    raise StageEnded(f"{spec.name} returned without being stopped")
    finally:
        WORKER_UP.labels(spec.name).set(0)
