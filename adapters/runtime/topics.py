"""Every Kafka topic dipgw uses, declared once: name, partitions, replicas, configs.

The declaration is built from the settings (`[topics]`) and the province's cities; the
runtime creates topics from it when `topics.auto_create` is on, and `dipgw topics plan|apply`
compare it with a cluster and bring the cluster to it when it is off (production clusters
usually deny CreateTopics to applications).

Every topic is an event log (`cleanup.policy=delete`), none is compacted: the durable state
is PostgreSQL, and each consumer counts every message — the sink keeps every revision of a
case, the quality worker counts corrections and resubmissions, a city reconciles every
re-score. Compaction keeps only the last message per key (a case), so a consumer behind by
more than the compaction lag would silently miss revisions.

Partitions are only ever raised: records are partitioned by key (a case), and a partition
count change sends a key's later records to another partition, after its earlier ones only
by chance. Raising it is a deliberate, rare step (the documented one); lowering would need
a new topic and is never done here.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from adapters.runtime.errors import DipgwError
from adapters.runtime.settings import Settings
from contracts._regions import bundled_regions

DAY_MS = 24 * 3600 * 1000
CONFIG_KEYS = ("cleanup.policy", "min.insync.replicas", "retention.ms")
"""The topic-level configs dipgw declares; any other is left at the broker's default."""

CleanupPolicy = Literal["delete", "compact", "compact,delete"]
Kind = Literal["missing", "partitions", "partitions_decrease", "replication_factor", "config"]


class TopicSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One topic as it must be on the cluster."""

    name: str
    role: str
    """Which setting declares it (`accepted`, `scored` for a city's topic, …)."""
    partitions: int
    replication_factor: int
    min_insync_replicas: int
    retention_ms: int
    cleanup_policy: CleanupPolicy = "delete"

    def configs(self) -> dict[str, str]:
        """The topic-level configs dipgw owns (set at creation, compared and altered)."""
        values = (self.cleanup_policy, str(self.min_insync_replicas), str(self.retention_ms))
        return dict(zip(CONFIG_KEYS, values, strict=True))


class Difference(msgspec.Struct, frozen=True, kw_only=True):
    """One way a cluster's topic differs from its declaration."""

    topic: str
    kind: Kind
    setting: str
    declared: str
    actual: str
    applies: bool
    """False when `apply` will not change it (fewer partitions, another replication factor)."""


class TopicsMissing(DipgwError, RuntimeError):
    """Topics this process needs are absent and it may not create them."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            f"Kafka topics missing: {', '.join(missing)}. topics.auto_create is false, so "
            "dipgw does not create topics: run `dipgw topics apply` (with this process's "
            "settings) first, or ask the cluster's operators to."
        )


class TopicApplyError(DipgwError, RuntimeError):
    """The cluster refused what `plan` or `apply` asked for (a change, or reading a config)."""


def min_insync_replicas(settings: Settings) -> int:
    """As configured, else 2 with three or more replicas (acks=all then means two copies while
    one broker may be down), else 1."""
    t = settings.topics
    return t.min_insync_replicas or max(1, min(2, t.replication_factor - 1))


@functools.cache
def province_cities(province: str) -> tuple[str, ...]:
    """Every DIP pool ("city") of the province a scored case can be routed to: the pool of
    each known region code inside it, and 省本级 (`xx9900`). A case's treating and insured
    cities are always among them (routing refuses unknown codes), so declaring one scored
    topic per pool means no case ever needs a topic that is not declared."""
    regions = bundled_regions()
    prefix = province[:2]
    cities = {prefix + "9900"}
    for row in regions.rows():
        region = regions.region(row.code)
        if region is not None and region.code.startswith(prefix):
            cities.add(region.city)
    return tuple(sorted(cities))


def _spec(settings: Settings, name: str, role: str, retention_days: int) -> TopicSpec:
    t = settings.topics
    return TopicSpec(
        name=name,
        role=role,
        partitions=t.partitions,
        replication_factor=t.replication_factor,
        min_insync_replicas=min_insync_replicas(settings),
        retention_ms=retention_days * DAY_MS,
    )


def declared_topics(settings: Settings) -> list[TopicSpec]:
    """Every topic, in a stable order: the pipeline's own, then the ones read outside dipgw.

    The pipeline's own (`retention_days`) only need to outlive a worker's outage; the cities'
    scored topics, `out_of_province` and the alerts are read by consumers dipgw does not run
    (`outbound_retention_days`: a bureau's consumer may be away over a long holiday)."""
    t = settings.topics
    internal = [
        ("accepted", t.accepted),
        ("rejected", t.rejected),
        ("grouped", t.grouped),
        ("scored_all", t.scored_all),
    ]
    specs = [_spec(settings, name, role, t.retention_days) for role, name in internal]
    outbound = [("out_of_province", t.out_of_province), ("quality_alerts", t.quality_alerts)]
    outbound += [
        ("scored", t.scored.format(admdvs=city))
        for city in province_cities(settings.worker.province)
    ]
    specs += [_spec(settings, name, role, t.outbound_retention_days) for role, name in outbound]
    return specs


def spec_for(settings: Settings, name: str) -> TopicSpec:
    """The declared spec of `name`; a topic not declared (a test's, a bench's) is made like the
    pipeline's own topics."""
    for spec in declared_topics(settings):
        if spec.name == name:
            return spec
    return _spec(settings, name, "other", settings.topics.retention_days)


def startup_topics(settings: Settings) -> list[str]:
    """What a process makes sure of at start. Creating, it creates the pipeline's fixed topics
    and leaves the cities' to first use (a test cluster need not carry every city of the
    province); only checking, it checks every declared topic, since it can create none later."""
    if settings.topics.auto_create:
        t = settings.topics
        return [t.accepted, t.rejected, t.grouped, t.scored_all, t.out_of_province]
    return [spec.name for spec in declared_topics(settings)]


class Observed(msgspec.Struct, frozen=True, kw_only=True):
    """A topic as the cluster reports it."""

    partitions: int
    replication_factor: int
    configs: dict[str, str]


def differences(declared: Iterable[TopicSpec], observed: dict[str, Observed]) -> list[Difference]:
    """What `apply` would do (and what it will not), topic by topic."""
    out: list[Difference] = []
    for spec in declared:
        seen = observed.get(spec.name)
        if seen is None:
            out.append(
                Difference(
                    topic=spec.name,
                    kind="missing",
                    setting="topic",
                    declared=f"{spec.partitions} partitions × {spec.replication_factor}",
                    actual="absent",
                    applies=True,
                )
            )
            continue
        if seen.partitions != spec.partitions:
            fewer = spec.partitions < seen.partitions
            out.append(
                Difference(
                    topic=spec.name,
                    kind="partitions_decrease" if fewer else "partitions",
                    setting="partitions",
                    declared=str(spec.partitions),
                    actual=str(seen.partitions),
                    applies=not fewer,
                )
            )
        if seen.replication_factor != spec.replication_factor:
            out.append(
                Difference(
                    topic=spec.name,
                    kind="replication_factor",
                    setting="replication_factor",
                    declared=str(spec.replication_factor),
                    actual=str(seen.replication_factor),
                    applies=False,  # a partition reassignment, an operator's decision
                )
            )
        for key, value in spec.configs().items():
            if seen.configs.get(key) != value:
                out.append(
                    Difference(
                        topic=spec.name,
                        kind="config",
                        setting=key,
                        declared=value,
                        actual=seen.configs.get(key, "?"),
                        applies=True,
                    )
                )
    return out


# The cluster side. `admin` is a started aiokafka AIOKafkaAdminClient (untyped).

_TOPIC_ALREADY_EXISTS = 36


async def observe(admin: Any, names: list[str]) -> dict[str, Observed]:
    """The named topics that exist, with their partitions, replicas and dipgw's configs."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    existing = set(await admin.list_topics())
    present = [name for name in names if name in existing]
    if not present:
        return {}
    described = {t["topic"]: t for t in await admin.describe_topics(present)}
    responses = await admin.describe_configs(
        [
            ConfigResource(ConfigResourceType.TOPIC, name, configs=dict.fromkeys(CONFIG_KEYS))
            for name in present
        ]
    )
    configs: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            if resource["error_code"]:
                raise TopicApplyError(
                    f"cannot read the configs of topic {resource['resource_name']}: error "
                    f"{resource['error_code']} {resource['error_message']} (DESCRIBE_CONFIGS)"
                )
            configs[resource["resource_name"]] = {
                e["config_names"]: e["config_value"] for e in resource["config_entries"]
            }
    out: dict[str, Observed] = {}
    for name in present:
        partitions = described[name]["partitions"]
        out[name] = Observed(
            partitions=len(partitions),
            replication_factor=min((len(p["replicas"]) for p in partitions), default=0),
            configs=configs.get(name, {}),
        )
    return out


async def plan(admin: Any, settings: Settings) -> list[Difference]:
    """The declaration compared with the cluster."""
    declared = declared_topics(settings)
    return differences(declared, await observe(admin, [s.name for s in declared]))


async def create(admin: Any, specs: list[TopicSpec]) -> None:
    """Create topics as declared; one another process created meanwhile is fine."""
    from aiokafka.admin import NewTopic

    if not specs:
        return
    response = await admin.create_topics(
        [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=spec.replication_factor,
                topic_configs=spec.configs(),
            )
            for spec in specs
        ]
    )
    for topic, code, *rest in response.topic_errors:
        if code not in (0, _TOPIC_ALREADY_EXISTS):
            raise TopicApplyError(f"cannot create topic {topic}: error {code} {rest}")
    await until_led(admin, [spec.name for spec in specs])


async def apply(admin: Any, settings: Settings) -> list[Difference]:
    """Bring the cluster to the declaration; returns the differences found (those with
    `applies` false are left as they are, for the operator)."""
    from aiokafka.admin import NewPartitions
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    declared = {spec.name: spec for spec in declared_topics(settings)}
    found = differences(declared.values(), await observe(admin, list(declared)))
    await create(admin, [declared[d.topic] for d in found if d.kind == "missing"])
    grow = {
        d.topic: NewPartitions(total_count=int(d.declared)) for d in found if d.kind == "partitions"
    }
    if grow:
        await admin.create_partitions(grow)
    alter = sorted({d.topic for d in found if d.kind == "config"})
    if alter:
        # AlterConfigs sets a topic's whole config: the declared keys, every other back to
        # the broker's default (the declaration is the topic's config).
        responses = await admin.alter_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name, configs=declared[name].configs())
                for name in alter
            ]
        )
        for response in responses:
            for code, message, _type, name in response.resources:
                if code:
                    raise TopicApplyError(f"cannot alter topic {name}: error {code} {message}")
    if grow or alter:
        await _until_applied(admin, list(declared.values()))
    return found


async def _until_applied(admin: Any, declared: list[TopicSpec], within_s: float = 10) -> None:
    """Wait until the cluster reports what was applied: a change is accepted by the controller
    and reaches the brokers' metadata a moment later, and a `plan` right after `apply` must
    not show it again (bounded: a slow cluster is shown as it is)."""
    deadline = time.monotonic() + within_s
    names = [spec.name for spec in declared]
    while time.monotonic() < deadline:
        if all(not d.applies for d in differences(declared, await observe(admin, names))):
            return
        await asyncio.sleep(0.1)


async def ensure(admin: Any, settings: Settings, names: list[str]) -> list[str]:
    """Make sure the named topics exist: create the missing ones as declared, or, with
    `topics.auto_create` off, raise `TopicsMissing` naming them (no CreateTopics is sent).
    Returns the topics created."""
    existing = set(await admin.list_topics())
    missing = [name for name in dict.fromkeys(names) if name not in existing]
    if missing and not settings.topics.auto_create:
        raise TopicsMissing(missing)
    await create(admin, [spec_for(settings, name) for name in missing])
    return missing


async def until_led(admin: Any, topics: list[str], within_s: float = 10) -> None:
    """Wait until every partition of new topics has a leader, so the first writes to them
    do not spin on NotLeaderForPartition (bounded: after that, producer retries take over)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        described = await admin.describe_topics(topics)
        if all(
            t.get("error_code", 0) == 0
            and t.get("partitions")
            and all(p.get("leader", -1) >= 0 for p in t["partitions"])
            for t in described
        ):
            return
        await asyncio.sleep(0.1)
