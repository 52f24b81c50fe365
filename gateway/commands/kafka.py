"""`dipgw kafka fetch|up|down|status`: the local single-node broker under the state directory."""

from __future__ import annotations

import argparse
import json

from gateway.commands._common import UsageError, fail, settings_from
from gateway.localkafka import KafkaError, LocalKafka, fetch


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "kafka", help="the local Kafka broker (KRaft, from Maven Central)"
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, text in (
        ("fetch", "resolve the broker jars with mvn into the per-user cache"),
        ("up", "start the broker detached (stop it with `dipgw kafka down`)"),
        ("down", "stop the broker"),
        ("status", "print whether it runs, its pid and bootstrap address"),
    ):
        verbs.add_parser(verb, help=text).set_defaults(func=_run, verb=verb)


def _run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except UsageError as exc:
        return fail(str(exc))
    broker = LocalKafka(
        settings.state_path / "kafka",
        version=settings.kafka.local_version,
        heap_mb=settings.kafka.local_heap_mb,
        cache_dir=settings.cache_dir,
    )
    try:
        if args.verb == "fetch":
            print(fetch(settings.kafka.local_version, cache_dir=settings.cache_dir))
        elif args.verb == "up":
            print(broker.start(owned=False))
        elif args.verb == "down":
            print("stopped" if broker.stop() else "not running")
        else:
            print(json.dumps(broker.status(), indent=2))
    except KafkaError as exc:
        return fail(str(exc), 1)
    return 0
