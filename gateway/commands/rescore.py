"""`dipgw rescore CITY YEAR [--json]`: re-score a city's stored cases under its rules in force.

Run it after `dipgw rules import` when a city publishes new rules for a year whose cases are
already scored. (Cases stored `unscored` for lack of rules need no command: the scoring worker
scores them once the rules are imported — `workers.rescore`.) New scores go to the city topics and
into PostgreSQL. Uses the configured Kafka, or the local broker (started for the command and
stopped after if `dipgw up` is not running it). Exit 0 ok, 1 no rules in force, 2 bad usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import asyncpg

from adapters.runtime.kafka import new_producer
from gateway.commands._common import UsageError, fail, kafka_bootstrap, with_pool
from gateway.commands.rules import city_year_settings
from gateway.localkafka import KafkaError
from workers.rescore import rescore


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rescore", help="re-score a city's stored cases under its DIP rules in force"
    )
    parser.add_argument("city", help="treating city (DIP pool) region code, e.g. 440100")
    parser.add_argument("year", type=int, help="clearing year")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        settings = city_year_settings(args)
    except UsageError as exc:
        return fail(str(exc))
    try:
        bootstrap, started = kafka_bootstrap(settings)
    except KafkaError as exc:
        return fail(str(exc), 1)

    async def work(pool: asyncpg.Pool) -> int:
        producer = new_producer(settings, bootstrap)
        await producer.start()
        try:
            result = await rescore(pool, producer, settings, bootstrap, args.city, args.year)
        finally:
            await producer.stop()
        if result is None:
            print(f"no DIP rules in force for {args.city}, clearing year {args.year}")
            return 1
        if args.json:
            print(json.dumps(dataclasses.asdict(result), ensure_ascii=False))
        else:
            print(
                f"{result.city}/{result.clearing_year} under {result.ruleset_version}:"
                f" {result.considered} cases, {result.rescored} scored, {result.unscored}"
                f" unscored, {result.changed} changed"
            )
        return 0

    try:
        return with_pool(settings, work)
    finally:
        if started is not None:
            started.stop()
