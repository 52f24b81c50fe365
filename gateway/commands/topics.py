"""`dipgw topics plan|apply [--json]`: the declared topics (`adapters.runtime.topics`) against
the configured Kafka.

`plan` prints what differs (missing topics, partition counts, replication factors, configs);
`apply` creates missing topics, raises partition counts and sets configs, and reports what it
will not change: fewer partitions than a topic has (a key's records would change partition,
so its order would be lost) and another replication factor (a reassignment, the cluster
operators' decision). Run it before processes with `topics.auto_create = false`, and again
after changing `[topics]` settings or the province.

Exit codes: 0 the cluster matches (after `apply`: everything `apply` can do is done),
1 differences remain (or Kafka is unreachable, or refused a change), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import msgspec

from adapters.runtime import topics
from adapters.runtime.errors import DipgwError, describe_error, is_dependency_failure
from adapters.runtime.kafka import admin_client
from adapters.runtime.settings import Settings
from gateway.commands._common import UsageError, fail, kafka_bootstrap, settings_from
from gateway.commands._output import print_table
from gateway.localkafka import KafkaError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("topics", help="declared Kafka topics: plan and apply")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, text in (
        ("plan", "print how the cluster's topics differ from the declared ones"),
        ("apply", "create missing topics, raise partitions, set configs"),
    ):
        sub = verbs.add_parser(verb, help=text)
        sub.add_argument("--json", action="store_true", help="one JSON document on stdout")
        sub.set_defaults(func=_run, verb=verb)


async def _work(settings: Settings, bootstrap: str, verb: str) -> list[topics.Difference]:
    async with admin_client(settings, bootstrap) as admin:
        if verb == "apply":
            return await topics.apply(admin, settings)
        return await topics.plan(admin, settings)


def _run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except UsageError as exc:
        return fail(str(exc))
    try:
        bootstrap, started = kafka_bootstrap(settings)
    except KafkaError as exc:
        return fail(str(exc), 1)
    try:
        found = asyncio.run(_work(settings, bootstrap, args.verb))
    except DipgwError as exc:  # refused by the cluster, or a secret file that cannot be read
        return fail(str(exc), 1)
    except Exception as exc:
        if not is_dependency_failure(exc):
            raise
        return fail(f"Kafka at {bootstrap} did not answer: {describe_error(exc)}", 1)
    finally:
        if started is not None:
            started.stop()
    declared = len(topics.declared_topics(settings))
    remaining = [d for d in found if args.verb == "plan" or not d.applies]
    if args.json:
        print(
            json.dumps(
                {
                    "verb": args.verb,
                    "bootstrap": bootstrap,
                    "declared": declared,
                    "differences": msgspec.to_builtins(found),
                    "remaining": msgspec.to_builtins(remaining),
                },
                ensure_ascii=False,
            )
        )
    else:
        _print(args.verb, found, declared)
    return 1 if remaining else 0


def _print(verb: str, found: list[topics.Difference], declared: int) -> None:
    if not found:
        print(f"{declared} declared topics: the cluster matches.")
        return
    title = "differences" if verb == "plan" else "applied, and left for the operator"
    rows = [
        [
            d.topic,
            d.setting,
            d.declared,
            d.actual,
            ("done" if verb == "apply" else _will(d)) if d.applies else _why_not(d),
        ]
        for d in found
    ]
    columns = ("topic", "what", "declared", "cluster", "apply")
    print_table(f"{len(found)} {title} ({declared} declared topics)", columns, rows)


def _will(d: topics.Difference) -> str:
    return {"missing": "create", "partitions": "add partitions"}.get(d.kind, "set")


def _why_not(d: topics.Difference) -> str:
    if d.kind == "partitions_decrease":
        return "not applied: partitions are never lowered (ordering by key)"
    return "not applied: replication is changed by reassignment"
