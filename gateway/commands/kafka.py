"""`dipgw kafka fetch|up|down|status`: the local Kafka cluster (1 or 3 nodes) under the state
directory."""

from __future__ import annotations

import argparse
import json

from gateway.commands._common import UsageError, fail, settings_from
from gateway.localkafka import KafkaError, LocalKafkaCluster, fetch


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "kafka", help="the local Kafka cluster (KRaft, from Maven Central)"
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, text in (
        ("fetch", "resolve the broker jars with mvn into the per-user cache"),
        ("up", "start every node detached (stop them with `dipgw kafka down`)"),
        ("down", "stop every node"),
        ("status", "print whether each node runs, its pid and the bootstrap addresses"),
    ):
        verb_parser = verbs.add_parser(verb, help=text)
        verb_parser.set_defaults(func=_run, verb=verb)
        if verb == "up":
            verb_parser.add_argument(
                "--brokers",
                type=int,
                choices=(1, 3),
                default=None,
                help="nodes of a new cluster (default: kafka.local_brokers); a formatted one"
                " keeps its count",
            )


def _run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except UsageError as exc:
        return fail(str(exc))
    cluster = LocalKafkaCluster(
        settings.state_path / "kafka",
        brokers=getattr(args, "brokers", None) or settings.kafka.local_brokers,
        version=settings.kafka.local_version,
        heap_mb=settings.kafka.local_heap_mb,
        cache_dir=settings.cache_dir,
    )
    if getattr(args, "brokers", None) is None:  # without --brokers, start what is formatted
        cluster.brokers = cluster.formatted_nodes() or cluster.brokers
    try:
        if args.verb == "fetch":
            print(fetch(settings.kafka.local_version, cache_dir=settings.cache_dir))
        elif args.verb == "up":
            print(cluster.start(owned=False))
        elif args.verb == "down":
            print("stopped" if cluster.stop() else "not running")
        else:
            print(json.dumps(cluster.status(), indent=2))
    except KafkaError as exc:
        return fail(str(exc), 1)
    return 0
