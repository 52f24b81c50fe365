"""`dipgw up`: the gateway and workers in one process, plus local Kafka and PostgreSQL when
none is configured. Ctrl-C or SIGTERM stops everything it started."""

from __future__ import annotations

import argparse
import asyncio
import signal

from gateway.commands._common import UsageError, fail, settings_from
from gateway.localkafka import KafkaError
from gateway.logs import get_logger
from gateway.runtime import LocalServices, running_stack
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
    parser.set_defaults(func=_run)


async def _serve(services: LocalServices, args: argparse.Namespace) -> None:
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
        print(
            f"dipgw is up: gateway {stack.url or '(off)'}, workers {list(workers)}, "
            f"kafka {services.bootstrap}. Ctrl-C stops.",
            flush=True,
        )
        await stop.wait()
        log.info("up.stopping")


def _run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except UsageError as exc:
        return fail(str(exc))
    try:
        with LocalServices(settings) as services:
            asyncio.run(_serve(services, args))
    except KafkaError as exc:
        return fail(str(exc), 1)
    except KeyboardInterrupt:
        pass
    return 0
