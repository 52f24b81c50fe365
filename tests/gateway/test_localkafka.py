"""The local Kafka's lifecycle (one node or three): it never outlives the process that owns
it, and three nodes keep every acknowledged write through one killed node."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from adapters.runtime.kafka import ensure_topics
from adapters.runtime.settings import load_settings
from gateway.localkafka import KafkaError, LocalKafkaCluster, fetch, libs_dir, pid_alive
from gateway.runtime import LocalServices

pytestmark = pytest.mark.integration


def test_fetch_is_cached_per_machine() -> None:
    first = fetch()
    assert (first / ".complete").exists() and first == libs_dir()
    assert any(first.glob("kafka_2.13-*.jar")) and any(first.glob("kafka-clients-*.jar"))
    started = time.monotonic()
    assert fetch() == first
    assert time.monotonic() - started < 1.0  # no mvn call the second time


def test_owned_broker_dies_with_its_owner_and_restarts_on_the_same_ports(tmp_path: Path) -> None:
    home = tmp_path / "kafka"
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from gateway.localkafka import LocalKafkaCluster
            broker = LocalKafkaCluster(Path({str(home)!r}), heap_mb=256)
            print(broker.start(owned=True), broker.pid(), flush=True)
            time.sleep(600)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert owner.stdout is not None
        bootstrap, pid = owner.stdout.readline().split()
        jvm = int(pid)
        assert pid_alive(jvm)
        owner.send_signal(signal.SIGKILL)  # no cleanup code can run in the owner
        owner.wait(10)
        deadline = time.monotonic() + 30
        while pid_alive(jvm) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not pid_alive(jvm), "the JVM outlived its owner"
    finally:
        owner.kill()

    broker = LocalKafkaCluster(home, heap_mb=256)
    assert broker.status()["running"] is False
    try:
        assert broker.start(owned=True) == bootstrap  # same data, same ports
        assert broker.status()["running"] is True
    finally:
        assert broker.stop() is True
    assert broker.status()["running"] is False and broker.pid() is None
    assert broker.stop() is False
    os.sync()


@pytest.fixture
def three_nodes(tmp_path: Path) -> Iterator[LocalServices]:
    """A 3-node local cluster as `dipgw up` starts it for `kafka.local_brokers = 3`."""
    base = load_settings(environ={})
    settings = msgspec.structs.replace(
        base,
        state_dir=str(tmp_path),
        kafka=msgspec.structs.replace(base.kafka, local_brokers=3, local_heap_mb=384),
        topics=msgspec.structs.replace(base.topics, partitions=3),
        pg=msgspec.structs.replace(base.pg, dsn="postgresql://unused"),  # no database here
    )
    with LocalServices(settings) as services:
        yield services


async def test_three_nodes_keep_every_acknowledged_write_through_a_killed_node(
    three_nodes: LocalServices,
) -> None:
    cluster, settings, bootstrap = three_nodes.kafka, three_nodes.settings, three_nodes.bootstrap
    assert cluster is not None and len(bootstrap.split(",")) == 3
    assert all(pid is not None for pid in cluster.node_pids().values())
    assert settings.topics.replication_factor == 3  # the local cluster's rule
    topic = "drill.killed-node.v1"
    async with asyncio.timeout(240):
        assert await ensure_topics(settings, bootstrap, [topic]) == [topic]
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            partitions = await _partitions(admin, topic)
            assert len(partitions) == 3
            assert all(sorted(p["replicas"]) == sorted(p["isr"]) == [1, 2, 3] for p in partitions)
            assert await _topic_config(admin, topic, "min.insync.replicas") == "2"

            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
            )
            await producer.start()
            try:
                await _send(producer, topic, range(100))
                victim = next(p["leader"] for p in partitions if p["partition"] == 0)
                assert cluster.kill_node(victim) is True
                assert cluster.node_pids()[victim] is None
                # Partitions it led fail over once the controller fences it; none is lost.
                await _send(producer, topic, range(100, 200))
            finally:
                await producer.stop()
            assert await _read_all(bootstrap, topic, 200) == {str(i) for i in range(200)}

            cluster.start_node(victim)
            assert cluster.node_pids()[victim] is not None
            deadline = time.monotonic() + 90
            while victim not in _in_every_isr(await _partitions(admin, topic)):
                assert time.monotonic() < deadline, "the restarted node never rejoined the ISR"
                await asyncio.sleep(0.5)
            cluster.pause_node(victim)
            assert cluster.node(victim).paused()
            cluster.resume_node(victim)
            assert not cluster.node(victim).paused()
            cluster.pause_node(victim)  # a hung node: stopping it must not wait for SIGKILL
            started = time.monotonic()
            assert cluster.stop_node(victim) is True
            assert time.monotonic() - started < 20 and cluster.node_pids()[victim] is None
        finally:
            await admin.close()


def test_owned_cluster_dies_with_its_owner_and_restarts_from_disk(tmp_path: Path) -> None:
    home = tmp_path / "kafka"
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import json, time
            from pathlib import Path
            from gateway.localkafka import LocalKafkaCluster
            cluster = LocalKafkaCluster(Path({str(home)!r}), brokers=3, heap_mb=384)
            print(cluster.start(owned=True), json.dumps(cluster.node_pids()), flush=True)
            time.sleep(600)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert owner.stdout is not None
        bootstrap, pids = owner.stdout.readline().split(" ", 1)
        jvms = [int(pid) for pid in json.loads(pids).values()]
        assert len(jvms) == 3 and all(pid_alive(jvm) for jvm in jvms)
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        deadline = time.monotonic() + 30
        while any(pid_alive(jvm) for jvm in jvms) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(pid_alive(jvm) for jvm in jvms), "a node outlived its owner"
    finally:
        owner.kill()

    with pytest.raises(KafkaError, match="3-node"):
        LocalKafkaCluster(home, brokers=1).start()  # never drops a formatted cluster's data
    cluster = LocalKafkaCluster(home, brokers=3, heap_mb=384)
    status = cluster.status()
    assert status["running"] is False and status["brokers"] == 3
    try:
        assert cluster.start(owned=True) == bootstrap  # same data, same ports, same quorum
        assert all(pid is not None for pid in cluster.node_pids().values())
    finally:
        assert cluster.stop() is True
    assert cluster.pid() is None and cluster.stop() is False


async def _partitions(admin: AIOKafkaAdminClient, topic: str) -> list[dict[str, Any]]:
    (described,) = await admin.describe_topics([topic])
    return list(described["partitions"])


def _in_every_isr(partitions: list[dict[str, Any]]) -> set[int]:
    return set.intersection(*(set(p["isr"]) for p in partitions))


async def _topic_config(admin: AIOKafkaAdminClient, topic: str, name: str) -> str | None:
    """A topic's config value; a broker may answer for a just-created topic before the
    topic's own configs have reached it, so ask again for a while."""
    for _ in range(100):
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
        (resource,) = response.to_object()["resources"]
        for entry in resource["config_entries"]:
            if entry["config_names"] == name:
                return str(entry["config_value"])
        await asyncio.sleep(0.2)
    return None


async def _send(producer: AIOKafkaProducer, topic: str, numbers: range) -> None:
    sent = [await producer.send(topic, str(i).encode(), key=str(i).encode()) for i in numbers]
    await asyncio.gather(*sent)


async def _read_all(bootstrap: str, topic: str, expected: int) -> set[str]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    seen: set[str] = set()
    try:
        while len(seen) < expected:
            batches = await consumer.getmany(timeout_ms=1000)
            seen.update(m.value.decode() for ms in batches.values() for m in ms if m.value)
    finally:
        await consumer.stop()
    return seen
