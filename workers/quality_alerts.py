"""Quality alerts: thresholds (settings `[quality]`) checked periodically over the rollups.

Each alert has a key naming its condition and window (one reject-rate alert per hospital and
day, one silence alert per silent spell, one lag alert per partition and hour), inserted with
ON CONFLICT DO NOTHING: several processes evaluating at once raise it once. A new alert is
published to the alerts topic (`contracts.messages.QualityAlert`) and kept in `quality_alerts`
for the API.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from adapters.runtime.errors import describe_error
from adapters.runtime.kafka import ensure_topics
from adapters.runtime.logs import get_logger
from adapters.runtime.metrics import QUALITY_ALERTS, consumer_lags
from adapters.runtime.settings import QualitySettings
from contracts import CST, city_of, shown
from contracts.messages import ENCODER, QualityAlert

log = get_logger("dipgw.quality.alerts")


@dataclass(frozen=True, slots=True)
class Alert:
    alert_key: str
    kind: str  # reject_rate | timeliness | silent | consumer_lag
    city: str | None
    fixmedins_code: str | None
    value: float
    threshold: float
    message: str
    message_en: str


async def find_alerts(
    conn: asyncpg.Connection,
    limits: QualitySettings,
    now: datetime,
    lags: list[tuple[str, str, int, int]] | None = None,
) -> list[Alert]:
    """Every condition over its threshold at `now` (pure reading; nothing is written)."""
    today = now.astimezone(CST).date()
    since = today - timedelta(days=limits.window_days - 1)
    alerts: list[Alert] = []
    rows = await conn.fetch(
        """SELECT fixmedins_code, min(city) AS city, sum(received) AS received,
                  sum(rejected) AS rejected,
                  sum((SELECT sum(x) FROM unnest(lag_hist[1:$2]) x)) AS timely,
                  sum((SELECT sum(x) FROM unnest(lag_hist) x)) AS known
           FROM quality_daily WHERE day BETWEEN $1 AND $3 GROUP BY fixmedins_code
           ORDER BY fixmedins_code""",
        since,
        limits.timely_days,
        today,
    )
    for row in rows:
        code, city = row["fixmedins_code"], row["city"]
        if row["received"] >= limits.min_records:
            rate = row["rejected"] / row["received"]
            if rate > limits.reject_rate_max:
                alerts.append(
                    Alert(
                        f"reject_rate:{code}:{today}",
                        "reject_rate",
                        city,
                        code,
                        round(rate, 4),
                        limits.reject_rate_max,
                        f"{code} 近{limits.window_days}日拒收率 {rate:.1%}，超过阈值 "
                        f"{limits.reject_rate_max:.1%}",
                        f"{code} reject rate {rate:.1%} over the last {limits.window_days} "
                        f"day(s) exceeds {limits.reject_rate_max:.1%}",
                    )
                )
        known = row["known"] or 0
        if known >= limits.min_records:
            timely = (row["timely"] or 0) / known
            if timely < limits.timely_rate_min:
                alerts.append(
                    Alert(
                        f"timeliness:{code}:{today}",
                        "timeliness",
                        city,
                        code,
                        round(timely, 4),
                        limits.timely_rate_min,
                        f"{code} 上传及时率 {timely:.1%}（{limits.timely_days}天内），低于 "
                        f"{limits.timely_rate_min:.1%}",
                        f"{code} uploads within {limits.timely_days} days {timely:.1%}, "
                        f"below {limits.timely_rate_min:.1%}",
                    )
                )
    silent_since = now - timedelta(hours=limits.silent_hours)
    # A feed source (gateway.feeds) failing for a hospital is the likely why of its silence:
    # the alert names it. A hospital fed only by a failing source that never delivered has no
    # rollup yet: silent since the feed began failing.
    for row in await conn.fetch(
        """WITH failing AS (
               SELECT code, string_agg(f.name || '：' || f.last_error, '；' ORDER BY f.name)
                          AS errors,
                      min(f.failing_since) AS since
               FROM feed_sources f, unnest(f.hospitals) AS code
               WHERE f.failing_since IS NOT NULL AND NOT f.paused
               GROUP BY code)
           SELECT q.fixmedins_code, q.city, NULL AS admdvs, q.last_seen, failing.errors
           FROM quality_hospitals q LEFT JOIN failing ON failing.code = q.fixmedins_code
           WHERE q.last_seen < $1
           UNION ALL
           SELECT failing.code, NULL, h.admdvs, failing.since, failing.errors
           FROM failing LEFT JOIN hospitals h ON h.fixmedins_code = failing.code
           WHERE failing.since < $1
             AND NOT EXISTS (SELECT 1 FROM quality_hospitals q
                             WHERE q.fixmedins_code = failing.code)
           ORDER BY 1""",
        silent_since,
    ):
        hours = (now - row["last_seen"]).total_seconds() / 3600
        code = row["fixmedins_code"]
        feeds_cn = f"；数据源读取失败：{row['errors']}" if row["errors"] else ""
        feeds_en = f"; failing feed source: {row['errors']}" if row["errors"] else ""
        alerts.append(
            Alert(
                f"silent:{code}:{shown(row['last_seen'])}",
                "silent",
                row["city"] or city_of(row["admdvs"]),
                code,
                round(hours, 1),
                limits.silent_hours,
                f"{code} 已 {hours:.0f} 小时未上传（阈值 {limits.silent_hours} 小时）{feeds_cn}",
                f"{code} silent for {hours:.0f} h (threshold {limits.silent_hours} h){feeds_en}",
            )
        )
    hour = now.astimezone(CST).strftime("%Y-%m-%dT%H")
    for worker, topic, partition, lag in lags or []:
        if lag > limits.consumer_lag_max:
            alerts.append(
                Alert(
                    f"consumer_lag:{worker}:{topic}:{partition}:{hour}",
                    "consumer_lag",
                    None,
                    None,
                    lag,
                    limits.consumer_lag_max,
                    f"{worker} 在 {topic}[{partition}] 积压 {lag} 条",
                    f"{worker} is {lag} messages behind on {topic}[{partition}]",
                )
            )
    return alerts


async def raise_alerts(pool: asyncpg.Pool, alerts: list[Alert]) -> list[dict[str, Any]]:
    """Store the alerts not raised before; returns the new ones (to publish)."""
    if not alerts:
        return []
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """INSERT INTO quality_alerts (alert_key, kind, city, fixmedins_code, value,
                                           threshold, message, message_en)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                                    $5::float8[], $6::float8[], $7::text[], $8::text[])
               ON CONFLICT DO NOTHING
               RETURNING alert_key, kind, city, fixmedins_code, value, threshold, message,
                         message_en, raised_at""",
            *(list(column) for column in zip(*(asdict(a).values() for a in alerts), strict=True)),
        )
    return [dict(row) for row in rows]


async def publish(pool: asyncpg.Pool, producer: Any, topic: str) -> int:
    """Send the stored alerts not yet published (a failed send is retried next round)."""
    rows = await pool.fetch(
        """SELECT alert_key, kind, city, fixmedins_code, value, threshold, message,
                  message_en, raised_at FROM quality_alerts WHERE published_at IS NULL
           ORDER BY raised_at LIMIT 1000"""
    )
    for row in rows:
        alert = QualityAlert(**dict(row))
        key = (alert.fixmedins_code or alert.kind).encode()
        await (await producer.send(topic, key=key, value=ENCODER.encode(alert)))
    if rows:
        await pool.execute(
            "UPDATE quality_alerts SET published_at = now() WHERE alert_key = ANY($1)",
            [row["alert_key"] for row in rows],
        )
    return len(rows)


async def snapshot_lag(pool: asyncpg.Pool, lags: list[tuple[str, str, int, int]]) -> None:
    """Keep this process's consumer lag where the API (any process) can read it."""
    if lags:
        await pool.executemany(
            """INSERT INTO quality_consumer_lag (worker, topic, "partition", lag, end_offset, at)
               VALUES ($1, $2, $3, $4, 0, now())
               ON CONFLICT (worker, topic, "partition") DO UPDATE
               SET lag = EXCLUDED.lag, at = EXCLUDED.at""",
            sorted(lags),
        )


async def evaluate_once(
    pool: asyncpg.Pool, producer: Any, topic: str, limits: QualitySettings, now: datetime
) -> list[dict[str, Any]]:
    lags = consumer_lags()
    await snapshot_lag(pool, lags)
    async with pool.acquire() as conn:
        found = await find_alerts(conn, limits, now, lags)
    new = await raise_alerts(pool, found)
    for alert in new:
        QUALITY_ALERTS.labels(alert["kind"]).inc()
        log.warning("quality.alert", kind=alert["kind"], key=alert["alert_key"])
    await publish(pool, producer, topic)
    return new


async def prune(pool: asyncpg.Pool, keep_days: int, now: datetime | None = None) -> None:
    """Forget message keys older than Kafka could redeliver, and old rejected-case marks.

    Keys are stamped by the database, rejected-case marks with the gateway's `received_at`:
    those are aged on the stack's clock (`now`; the database's when not given)."""
    await pool.execute(
        "DELETE FROM quality_events WHERE at < now() - make_interval(days => $1)", keep_days
    )
    await pool.execute(
        """DELETE FROM quality_rejected_cases
           WHERE rejected_at < coalesce($2::timestamptz, now()) - make_interval(days => $1)""",
        keep_days,
        now,
    )


async def run_evaluator(ctx: Any, owner: asyncio.Task[Any]) -> None:
    """Evaluate every `alert_interval_s` until `owner` (the quality worker's task) ends."""
    settings = ctx.settings
    topic = settings.topics.quality_alerts
    ready = False
    while not owner.done():
        try:
            if not ready:
                await ensure_topics(settings, ctx.bootstrap, [topic])
                ready = True
            now = ctx.clock()
            await evaluate_once(ctx.pool, ctx.producer, topic, settings.quality, now)
            await prune(ctx.pool, settings.quality.events_keep_days, now)
        except Exception as exc:  # the database or broker away: try again next round
            log.warning("quality.alerts_failed", error=describe_error(exc))
        await asyncio.wait({owner}, timeout=settings.quality.alert_interval_s)
