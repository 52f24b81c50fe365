"""Every record a dipgw producer sends names its schema in its headers (issue 14, point 1),
derived from the topic name in `adapters.runtime.kafka.new_producer`, so no send site can
forget them. Here without a broker; tests/workers/test_topic_schemas.py reads them from Kafka."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from unittest import mock

from aiokafka import AIOKafkaProducer

from adapters.runtime import kafka as bus
from adapters.runtime.settings import Settings, TopicSettings
from contracts.messages import TOPIC_TYPES
from contracts.schemas import SCHEMA_VERSIONS, message_headers
from tests.builders import tagged_settings


def test_every_declared_topic_name_maps_to_its_topic() -> None:
    topics = TopicSettings()
    headers = bus.SchemaHeaders(topics)
    for topic in TOPIC_TYPES:
        name = getattr(topics, topic).format(admdvs="440100")
        assert headers.topic_of(name) == topic
        assert headers(name) == message_headers(topic)
    assert headers.topic_of("dip.case.scored.440300.v1") == "scored"
    assert headers.topic_of("dip.case.scored.all.v1") == "scored_all"  # not a city "all"
    assert headers.topic_of("dip.case.scored.440100.v2") is None
    assert headers.topic_of("dip.case.scored..v1") is None
    assert headers.topic_of("someone.elses.topic") is None
    assert headers("someone.elses.topic") == []


def test_renamed_topics_are_recognised_by_their_configured_names() -> None:
    settings = tagged_settings(Settings(), "t")
    headers = bus.SchemaHeaders(settings.topics)
    tag = settings.topics.accepted.removesuffix(".accepted")
    assert headers.topic_of(f"{tag}.scored.440100") == "scored"
    assert headers.topic_of(f"{tag}.scored.all") == "scored_all"
    assert headers.topic_of(f"{tag}.scored.oop") == "out_of_province"
    assert headers.topic_of("dip.settlement.accepted.v1") is None


class FakeProducer:
    """What `with_schema_headers` wraps: aiokafka's `send` signature, recording its calls."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> str:
        self.sent.append((topic, value, key, partition, timestamp_ms, headers))
        return "queued"


async def test_send_adds_the_headers_and_keeps_the_callers() -> None:
    producer = bus.with_schema_headers(FakeProducer(), bus.SchemaHeaders(TopicSettings()))
    assert await producer.send("dip.case.grouped.v1", value=b"{}", key=b"k") == "queued"
    await producer.send(
        "dip.quality.alerts.v1",
        b"{}",
        headers=[("trace", b"1"), ("content-type", b"application/json; charset=utf-8")],
    )
    await producer.send("other", b"x")
    grouped, alert, other = producer.sent
    assert grouped == ("dip.case.grouped.v1", b"{}", b"k", None, None, message_headers("grouped"))
    assert alert[5] == [
        ("trace", b"1"),
        ("content-type", b"application/json; charset=utf-8"),
        ("dipgw-schema-id", b"urn:dipgw:schema:quality_alerts"),
        ("dipgw-schema-version", str(SCHEMA_VERSIONS["quality_alerts"]).encode()),
    ]
    assert other[5] is None


async def test_new_producer_sends_with_the_headers_of_its_settings() -> None:
    """The producer every process (and `RenewingProducer`, `dipgw rescore`) makes: a real
    aiokafka producer (not started: its own `send` is replaced by a recorder), whose
    `send_and_wait` goes through the headers too."""
    settings = tagged_settings(Settings(), "h")
    sent: list[tuple[Any, ...]] = []

    async def recorder(self: AIOKafkaProducer, *args: Any) -> asyncio.Future[str]:
        sent.append(args)
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        done.set_result("acked")
        return done

    with mock.patch.object(AIOKafkaProducer, "send", recorder):
        producer = bus.new_producer(settings, "127.0.0.1:0")
    assert isinstance(producer, AIOKafkaProducer)
    city_topic = settings.topics.scored.format(admdvs="440100")
    assert await producer.send_and_wait(city_topic, b"{}", b"k") == "acked"
    await (await producer.send(settings.topics.rejected, value=b"{}"))
    assert sent == [
        (city_topic, b"{}", b"k", None, None, message_headers("scored")),
        (settings.topics.rejected, b"{}", None, None, None, message_headers("rejected")),
    ]
    await producer.stop()


def test_new_producer_is_the_only_producer_dipgw_makes() -> None:
    """So no record leaves without its headers: every producer of the gateway, the workers and
    the commands is made by `new_producer` (directly, or through `RenewingProducer`). The
    benches' peer (gateway/bench/peer) is not dipgw: it makes its producer as a team writing
    it first would, and writes only to its own bench topic."""
    root = Path(__file__).parents[2]
    peer = root / "gateway" / "bench" / "peer"
    makers = sorted(
        str(path.relative_to(root))
        for package in ("adapters", "contracts", "gateway", "workers")
        for path in (root / package).rglob("*.py")
        if "AIOKafkaProducer(" in path.read_text(encoding="utf-8") and peer not in path.parents
    )
    assert makers == ["adapters/runtime/kafka.py"]
    source = (root / "adapters/runtime/kafka.py").read_text(encoding="utf-8")
    assert source.count("AIOKafkaProducer(") == 1
