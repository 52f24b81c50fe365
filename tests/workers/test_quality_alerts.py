"""Quality alerts over a real run: thresholds crossed raise one alert each, published to the
alerts topic and listed by the API (a city bureau sees its own city's only)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaConsumer

from adapters.runtime.settings import QualitySettings
from contracts.messages import QUALITY_ALERT_DECODER, QualityAlert
from gateway.runtime import Stack
from tests.builders import new_code, push_mix, wait_received
from tests.clock import now as clock_now
from tests.conftest import Client, city_client, register_hospital
from workers.quality_alerts import evaluate_once

pytestmark = pytest.mark.integration


async def _published(stack: Stack, code: str, want: int) -> list[QualityAlert]:
    consumer = AIOKafkaConsumer(
        stack.settings.topics.quality_alerts,
        bootstrap_servers=stack.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[QualityAlert] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while len(found) < want and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    alert = QUALITY_ALERT_DECODER.decode(record.value)
                    if alert.fixmedins_code == code:
                        found.append(alert)
    finally:
        await consumer.stop()
    return found


async def test_thresholds_raise_each_alert_once_publish_it_and_list_it(
    stack: Stack, ops: Client
) -> None:
    code = new_code()
    client = await register_hospital(stack, code, "440100")
    await push_mix(client, code)
    await wait_received(stack.pool, code, 9)
    limits = QualitySettings(
        min_records=5, reject_rate_max=0.1, timely_rate_min=0.95, timely_days=1, silent_hours=1
    )
    topic = stack.settings.topics.quality_alerts
    now = clock_now()
    new = await evaluate_once(stack.pool, stack.producer, topic, limits, now)
    mine = {a["kind"]: a for a in new if a["fixmedins_code"] == code}
    # 2 of 9 rejected > 10 %; discharged ~3 days before upload, so 0 % within 1 day.
    assert set(mine) == {"reject_rate", "timeliness"}
    assert mine["reject_rate"]["value"] == round(2 / 9, 4)
    assert mine["timeliness"]["value"] == 0.0
    assert mine["reject_rate"]["city"] == "440100"

    # Evaluated again (or by another process): nothing new.
    again = await evaluate_once(stack.pool, stack.producer, topic, limits, now)
    assert not [a for a in again if a["fixmedins_code"] == code]

    # Two hours later with no upload: silent; the reject-rate alert of today is not repeated.
    later = await evaluate_once(stack.pool, stack.producer, topic, limits, now + timedelta(hours=2))
    assert [a["kind"] for a in later if a["fixmedins_code"] == code] == ["silent"]
    (silent,) = [a for a in later if a["fixmedins_code"] == code]
    assert silent["alert_key"].endswith("+08:00")  # its last upload, as the province reads it

    published = await _published(stack, code, 3)
    assert sorted(a.kind for a in published) == ["reject_rate", "silent", "timeliness"]

    status, body = await ops.get("/v1/quality/alerts")
    assert status == 200
    listed = [a for a in body["alerts"] if a["fixmedins_code"] == code]
    assert sorted(a["kind"] for a in listed) == ["reject_rate", "silent", "timeliness"]
    assert all(a["message"] and a["message_en"] for a in listed)
    shenzhen = await city_client(stack, "440300")
    status, body = await shenzhen.get("/v1/quality/alerts")
    assert status == 200 and not [a for a in body["alerts"] if a["fixmedins_code"] == code]


async def test_consumer_lag_over_the_threshold_raises_an_alert(stack: Stack) -> None:
    from workers.quality_alerts import find_alerts

    limits = QualitySettings(consumer_lag_max=100)
    now = clock_now()
    lags = [("sink", "dip.settlement.accepted.v1", 3, 250), ("sink", "x", 1, 5)]
    async with stack.pool.acquire() as conn:
        found = [a for a in await find_alerts(conn, limits, now, lags) if a.kind == "consumer_lag"]
    assert [(a.value, a.threshold) for a in found] == [(250, 100)]
    assert "sink" in found[0].message_en and "[3]" in found[0].message_en


async def test_keys_older_than_the_redelivery_horizon_are_pruned(stack: Stack) -> None:
    from workers.quality_alerts import prune

    old, fresh = f"accepted:old-{new_code()}", f"accepted:fresh-{new_code()}"
    await stack.pool.execute(
        """INSERT INTO quality_events (event_key, at)
           VALUES ($1, now() - interval '40 days'), ($2, now() - interval '20 days')""",
        old,
        fresh,
    )
    await prune(stack.pool, 30)
    kept = await stack.pool.fetch(
        "SELECT event_key FROM quality_events WHERE event_key = ANY($1)", [old, fresh]
    )
    assert [r["event_key"] for r in kept] == [fresh]


async def test_a_failing_feed_source_is_named_in_its_hospitals_silence_alert(
    stack: Stack,
) -> None:
    """A hospital connected by a feed that fails (here: its drop folder is gone) goes silent;
    the silence alert says why. One that never delivered through it is alerted too, once the
    feed has failed for longer than the silence threshold."""
    from workers.quality_alerts import find_alerts

    seen, never = new_code(), new_code()
    client = await register_hospital(stack, seen, "440100")
    await register_hospital(stack, never, "440100")
    await push_mix(client, seen)
    await wait_received(stack.pool, seen, 9)
    now = clock_now()
    name = f"t-silent-{seen}"
    await stack.pool.execute(
        """INSERT INTO feed_sources (name, kind, hospitals, config, paused, last_error,
                                     failing_since)
           VALUES ($1, 'folder', $2, $3::jsonb, true, 'folder /srv/drop/h1 is missing', $4)""",
        name,
        [seen, never],
        '{"name": "x", "kind": "folder", "hospitals": []}',
        now - timedelta(hours=3),
    )
    limits = QualitySettings(silent_hours=1)
    try:
        async with stack.pool.acquire() as conn:
            # paused by an operator: not failing as far as alerts go
            quiet = await find_alerts(conn, limits, now + timedelta(hours=2))
            assert not [a for a in quiet if a.fixmedins_code == never]
            await conn.execute("UPDATE feed_sources SET paused = false WHERE name = $1", name)
            found = {
                a.fixmedins_code: a
                for a in await find_alerts(conn, limits, now + timedelta(hours=2))
                if a.kind == "silent" and a.fixmedins_code in (seen, never)
            }
    finally:
        await stack.pool.execute("DELETE FROM feed_sources WHERE name = $1", name)
    assert set(found) == {seen, never}
    for alert in found.values():
        assert f"数据源读取失败：{name}：" in alert.message
        assert f"failing feed source: {name}：" in alert.message_en
        assert alert.city == "440100"
    assert found[never].value == 5.0  # hours since the feed began failing
