"""`dipgw up`: the gateway and workers in one process, plus local Kafka and PostgreSQL when
none is configured. Ctrl-C or SIGTERM stops everything it started."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys

from adapters.runtime.kafka import KafkaSecurityError
from adapters.runtime.logs import get_logger
from adapters.runtime.metrics_http import MetricsListenError, nth_listen
from adapters.runtime.topics import TopicsMissing
from gateway.commands._common import UsageError, fail, settings_from
from gateway.localkafka import KafkaError, die_with_parent
from gateway.runtime import LocalServices, running_stack
from gateway.sealing import MasterKeyError
from workers.registry import DEFAULT_WORKERS as WORKERS

log = get_logger("dipgw.up")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("up", help="run gateway + workers (+ local Kafka/PostgreSQL)")
    parser.add_argument("--no-gateway", action="store_true", help="run the workers only")
    parser.add_argument(
        "--workers",
        default=",".join(WORKERS),
        help=f"comma-separated workers (default: {','.join(WORKERS)}; '' for none)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="gateway processes sharing the port with SO_REUSEPORT (default 1; needs a fixed "
        "http.port). Extra processes serve HTTP only; workers run in this one. Each has its "
        "own metrics listener: process i on metrics.listen's port + i.",
    )
    parser.set_defaults(func=_run)


class ExtraGateways:
    """Extra gateway-only processes on the same port; they die with this one (PDEATHSIG).

    They read the same settings as this process: its config file and its environment, plus
    the services it started (environment variables win over the file), and each its own
    metrics address (port + its index): the shared port reaches a random process. One that
    exits while this process runs is logged and started again: the port it shared keeps
    being served by as many processes as the operator asked for."""

    def __init__(self, services: LocalServices, count: int, config: str | None) -> None:
        env = dict(os.environ)
        env.update(
            DIPGW_KAFKA_BOOTSTRAP=services.bootstrap,
            DIPGW_PG_DSN=services.dsn,
            DIPGW_STATE_DIR=str(services.settings.state_path),
            # the local cluster's replication (LocalServices sets it): topics a child creates
            # first must be as replicated as the parent's
            DIPGW_TOPICS_REPLICATION_FACTOR=str(services.settings.topics.replication_factor),
        )
        self._env = env
        self._listen = services.settings.metrics.listen
        self._config = config
        self.processes = [self._start(i) for i in range(1, count + 1)]

    def _start(self, index: int) -> subprocess.Popen[bytes]:
        metrics = {"DIPGW_METRICS_LISTEN": nth_listen(self._listen, index)} if self._listen else {}
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                *(["--config", self._config] if self._config else []),
                "up",
                "--workers",
                "",
            ],
            env={**self._env, **metrics},
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )

    async def supervise(self, stopping: asyncio.Event, period_s: float = 1.0) -> None:
        """Restart any process that exited, at most once per `period_s` each, until stopping
        (Ctrl-C reaches the whole process group: those exits are not restarted)."""
        while not stopping.is_set():
            await asyncio.sleep(period_s)
            for slot, proc in enumerate(self.processes):
                if stopping.is_set():
                    return
                code = proc.poll()
                if code is not None:
                    log.error("up.gateway_process_exited", index=slot + 1, pid=proc.pid, code=code)
                    self.processes[slot] = self._start(slot + 1)

    def stop(self) -> None:
        for proc in self.processes:
            proc.terminate()
        for proc in self.processes:
            proc.wait(30)


async def _serve(
    services: LocalServices, args: argparse.Namespace, extra: ExtraGateways | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    workers = tuple(w for w in args.workers.split(",") if w)
    async with running_stack(
        services.settings,
        services.bootstrap,
        services.dsn,
        gateway=not args.no_gateway,
        workers=workers,
    ) as stack:
        metrics = f", metrics {stack.metrics_url}" if stack.metrics_url else ""
        print(
            f"dipgw is up: gateway {stack.url or '(off)'}, workers {list(workers)}, "
            f"kafka {services.bootstrap}{metrics}. Ctrl-C stops.",
            flush=True,
        )
        supervisor = asyncio.create_task(extra.supervise(stop)) if extra else None
        await stop.wait()
        log.info("up.stopping")
        if supervisor:
            supervisor.cancel()


def _run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except UsageError as exc:
        return fail(str(exc))
    if args.processes < 1 or (args.processes > 1 and settings.http.port == 0):
        return fail("--processes must be ≥ 1, and > 1 needs a fixed http.port")
    try:
        with LocalServices(settings) as services:
            extra = None
            if args.processes > 1 and not args.no_gateway:
                extra = ExtraGateways(services, args.processes - 1, args.config)
            try:
                asyncio.run(_serve(services, args, extra))
            finally:
                if extra:
                    extra.stop()
    except KafkaError as exc:
        return fail(str(exc), 1)
    except (MasterKeyError, MetricsListenError) as exc:  # the start-up report, no traceback
        return fail(str(exc))
    except KafkaSecurityError as exc:  # refused credentials, an unreadable secret or CA file
        return fail(str(exc), 1)
    except TopicsMissing as exc:  # topics.auto_create = false and a topic is absent
        return fail(str(exc), 1)
    except KeyboardInterrupt:
        pass
    return 0
