"""The topic declaration: it covers every topic a case can be routed to, and a process with
`topics.auto_create = false` creates nothing and refuses to start without its topics."""

from __future__ import annotations

import uuid

import msgspec
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from adapters.runtime import topics
from adapters.runtime.kafka import admin_client, ensure_topics
from adapters.runtime.settings import Settings, SettingsError, load_settings
from contracts._regions import bundled_regions
from gateway.runtime import LocalServices, running_stack
from workers.dip._routing import route


def topic_env(tag: str, **extra: str) -> dict[str, str]:
    """`DIPGW_TOPICS_*` naming every topic under `tag`, in a two-city province (北京)."""
    env = {
        "DIPGW_TOPICS_ACCEPTED": f"{tag}.accepted",
        "DIPGW_TOPICS_REJECTED": f"{tag}.rejected",
        "DIPGW_TOPICS_GROUPED": f"{tag}.grouped",
        "DIPGW_TOPICS_SCORED": f"{tag}.scored.{{admdvs}}",
        "DIPGW_TOPICS_SCORED_ALL": f"{tag}.scored.all",
        "DIPGW_TOPICS_OUT_OF_PROVINCE": f"{tag}.scored.oop",
        "DIPGW_TOPICS_QUALITY_ALERTS": f"{tag}.alerts",
        "DIPGW_TOPICS_PARTITIONS": "2",
        "DIPGW_WORKER_PROVINCE": "110000",
        "DIPGW_WORKER_GROUP_PREFIX": tag,
    }
    env.update({f"DIPGW_TOPICS_{k.upper()}": v for k, v in extra.items()})
    return env


def tagged(base: Settings, tag: str, **extra: str) -> Settings:
    own = load_settings(environ=topic_env(tag, **extra))
    return msgspec.structs.replace(base, topics=own.topics, worker=own.worker)


def test_every_route_of_the_province_lands_on_a_declared_topic() -> None:
    settings = load_settings(environ={})
    declared = {spec.name for spec in topics.declared_topics(settings)}
    regions = bundled_regions()
    codes = [r.code for r in regions.rows() if r.code.startswith("44")] + ["449900", "440199"]
    for code in codes:
        if regions.region(code) is None:
            continue
        for other in ("440100", "110101"):  # a cross-city and an out-of-province patient
            targets = route(other, code, "440000", settings.topics.scored).targets
            names = {
                settings.topics.out_of_province if t.role == "out_of_province" else t.topic
                for t in targets
            }
            assert names <= declared, (code, names - declared)


def test_the_declaration_says_what_each_topic_keeps() -> None:
    settings = load_settings(environ={"DIPGW_TOPICS_REPLICATION_FACTOR": "3"})
    specs = {spec.name: spec for spec in topics.declared_topics(settings)}
    t = settings.topics
    assert specs[t.accepted].retention_ms == 7 * topics.DAY_MS
    assert specs[t.scored.format(admdvs="440300")].retention_ms == 30 * topics.DAY_MS
    assert {spec.cleanup_policy for spec in specs.values()} == {"delete"}
    assert {spec.min_insync_replicas for spec in specs.values()} == {2}
    assert len(specs) == 6 + 23  # 21 cities, 广东 itself and 省本级


def test_fewer_partitions_and_other_replicas_are_reported_not_applied() -> None:
    spec = topics.TopicSpec(
        name="t",
        role="accepted",
        partitions=3,
        replication_factor=3,
        min_insync_replicas=2,
        retention_ms=topics.DAY_MS,
    )
    seen = topics.Observed(partitions=6, replication_factor=1, configs=spec.configs())
    found = topics.differences([spec], {"t": seen})
    assert {(d.kind, d.applies) for d in found} == {
        ("partitions_decrease", False),
        ("replication_factor", False),
    }


def test_impossible_topic_settings_are_named() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            environ={"DIPGW_TOPICS_MIN_INSYNC_REPLICAS": "2", "DIPGW_TOPICS_SCORED": "dip.scored"}
        )
    assert caught.value.problems == [
        "topics.min_insync_replicas = 2: more than topics.replication_factor (1), no write "
        "could succeed",
        "topics.scored = 'dip.scored': must contain {admdvs} (the city)",
    ]


async def _names(bootstrap: str, tag: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {name for name in await admin.list_topics() if name.startswith(tag)}
    finally:
        await admin.close()


async def test_without_auto_create_nothing_is_created_and_start_is_refused(
    services: LocalServices,
) -> None:
    """The check runs before any worker or the gateway starts: a gateway alone shows it."""
    tag = "tt" + uuid.uuid4().hex[:8]
    settings = tagged(services.settings, tag, auto_create="false")
    with pytest.raises(topics.TopicsMissing) as caught:
        await ensure_topics(settings, services.bootstrap, [settings.topics.accepted])
    assert caught.value.missing == [f"{tag}.accepted"]
    with pytest.raises(topics.TopicsMissing) as caught:
        async with running_stack(settings, services.bootstrap, services.dsn, workers=()):
            raise AssertionError("started without its topics")
    assert set(caught.value.missing) == {s.name for s in topics.declared_topics(settings)}
    assert "dipgw topics apply" in str(caught.value)
    assert await _names(services.bootstrap, tag) == set()  # no CreateTopics was sent

    async with admin_client(settings, services.bootstrap) as admin:
        await topics.apply(admin, settings)
    async with running_stack(settings, services.bootstrap, services.dsn, workers=()) as stack:
        assert stack.url
    assert await _names(services.bootstrap, tag) == {
        s.name for s in topics.declared_topics(settings)
    }


async def test_auto_create_makes_topics_as_declared(services: LocalServices) -> None:
    tag = "tt" + uuid.uuid4().hex[:8]
    settings = tagged(services.settings, tag)
    city = settings.topics.scored.format(admdvs="110000")
    assert await ensure_topics(settings, services.bootstrap, [city]) == [city]
    async with admin_client(settings, services.bootstrap) as admin:
        found = await topics.plan(admin, settings)
    assert city not in {d.topic for d in found}  # created exactly as declared
    assert {d.kind for d in found} == {"missing"}
