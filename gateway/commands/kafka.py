"""`dipgw kafka fetch|up|down|status`: the local Kafka cluster (1 or 3 nodes) under the state
directory. `dipgw kafka acls plan|apply`: the least-privilege ACLs of dipgw's principals
(`adapters.runtime.kafka.acl_plan`) against the configured, secured cluster.

`acls plan` exits 0 when every binding exists, 1 when some are missing (or Kafka refused or is
unreachable); `acls apply` creates the missing ones (as `kafka.sasl_username`, which must be a
super user or hold ALTER and DESCRIBE on the cluster) and exits 0 when done.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from adapters.runtime.errors import DipgwError, describe_error, is_dependency_failure
from adapters.runtime.kafka import Acl, acl_plan, create_acls, describe_acls
from adapters.runtime.settings import Settings
from adapters.runtime.topics import province_cities
from gateway.commands._common import UsageError, fail, settings_from
from gateway.localkafka import KafkaError, LocalKafkaCluster, fetch

DEFAULT_GATEWAY_USER = "dipgw-gateway"
DEFAULT_WORKERS_USER = "dipgw-workers"
DEFAULT_CITY_USER = "city-{admdvs}"


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
    acls = verbs.add_parser("acls", help="the ACLs of dipgw's principals: plan and apply")
    acl_verbs = acls.add_subparsers(dest="acl_verb", metavar="VERB", required=True)
    for verb, text in (
        ("plan", "list the declared ACL bindings and which are missing on the cluster"),
        ("apply", "create the missing bindings"),
    ):
        sub = acl_verbs.add_parser(verb, help=text)
        sub.set_defaults(func=_run_acls, acl_verb=verb)
        sub.add_argument("--json", action="store_true", help="one JSON document on stdout")
        sub.add_argument(
            "--gateway-user",
            default=DEFAULT_GATEWAY_USER,
            help=f"SASL user of the gateway processes (default {DEFAULT_GATEWAY_USER})",
        )
        sub.add_argument(
            "--workers-user",
            default=DEFAULT_WORKERS_USER,
            help=f"SASL user of the worker processes (default {DEFAULT_WORKERS_USER})",
        )
        sub.add_argument(
            "--city-user",
            default=DEFAULT_CITY_USER,
            help="SASL user of a city's bureau, {admdvs} = the city code (default"
            f" {DEFAULT_CITY_USER})",
        )
        sub.add_argument(
            "--city",
            action="append",
            metavar="ADMDVS",
            help="a city to grant its scored topic (repeatable; default: every city of"
            " worker.province)",
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


def _run_acls(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except UsageError as exc:
        return fail(str(exc))
    if not settings.kafka.bootstrap:
        return fail("kafka acls: set kafka.bootstrap (the local broker enforces no ACLs)")
    if "{admdvs}" not in args.city_user:
        return fail(f"--city-user {args.city_user!r}: must contain {{admdvs}}")
    cities = args.city or list(province_cities(settings.worker.province))
    try:
        plan = acl_plan(
            settings,
            gateway=args.gateway_user,
            workers=args.workers_user,
            cities={city: args.city_user.format(admdvs=city) for city in cities},
            can_create=settings.topics.auto_create,
        )
        present, created = asyncio.run(_acls(settings, plan, apply=args.acl_verb == "apply"))
    except DipgwError as exc:
        return fail(str(exc), 1)
    except Exception as exc:
        if not is_dependency_failure(exc):
            raise
        return fail(f"kafka {settings.kafka.bootstrap}: {describe_error(exc)}", 1)
    missing = [acl for acl in plan if acl not in present and acl not in created]
    if args.json:
        print(
            json.dumps(
                {
                    "bindings": [
                        {
                            "principal": acl.principal,
                            "resource_type": acl.resource,
                            "resource_name": acl.name,
                            "pattern": acl.pattern,
                            "operation": acl.operation,
                            "permission": "ALLOW",
                            "host": "*",
                            "state": "present"
                            if acl in present
                            else "created"
                            if acl in created
                            else "missing",
                        }
                        for acl in plan
                    ],
                    "missing": len(missing),
                    "created": len(created),
                },
                indent=2,
            )
        )
    else:
        for acl in plan:
            state = "present" if acl in present else "created" if acl in created else "missing"
            print(f"{state:8} {acl}")
        print(f"{len(plan)} bindings: {len(created)} created, {len(missing)} missing")
    return 1 if missing else 0


async def _acls(settings: Settings, plan: list[Acl], *, apply: bool) -> tuple[set[Acl], set[Acl]]:
    """The planned bindings already on the cluster, and those created now (`apply`)."""
    present = await describe_acls(settings, settings.kafka.bootstrap) & set(plan)
    created: set[Acl] = set()
    if apply:
        todo = [acl for acl in plan if acl not in present]
        await create_acls(settings, settings.kafka.bootstrap, todo)
        created = set(todo)
    return present, created
