"""Prometheus metrics of the gateway and workers (one registry per process).

Every process is its own scrape target (`adapters.runtime.metrics_http`; with
`--processes N` one port each), so counters are never summed across processes in here and
`rate()` works per target. Label values are bounded: routes are the router's canonical
paths, rules come from the rule book, and hospitals appear only when `metrics.per_hospital`
is on (`configure`).
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, _resident_memory_bytes, fds
PlatformCollector(registry=REGISTRY)  # python_info
GCCollector(registry=REGISTRY)  # python_gc_*


def _version() -> str:
    try:
        return metadata.version("dipgw")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return "unknown"


BUILD_INFO = Info("dipgw_build", "The dipgw build this process runs", registry=REGISTRY)
BUILD_INFO.info(
    {
        "version": _version(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }
)

_per_hospital = False


def configure(*, per_hospital: bool) -> None:
    """Apply `metrics.*` settings to this process's metrics (called once at start)."""
    global _per_hospital
    _per_hospital = per_hospital


def per_hospital() -> bool:
    return _per_hospital


class _HospitalCounter(Counter):
    """A counter whose `fixmedins_code` label is "" unless `metrics.per_hospital` is on:
    hospitals × rules × dimensions would be tens of thousands of series in a province."""

    def labels(self, *values: Any, **named: Any) -> Any:
        if not _per_hospital:
            if "fixmedins_code" in named:
                named["fixmedins_code"] = ""
            elif values:
                position = list(self._labelnames).index("fixmedins_code")
                values = tuple("" if i == position else v for i, v in enumerate(values))
        return super().labels(*values, **named)


HTTP_SECONDS = Histogram(
    "dipgw_http_request_duration_seconds",
    "HTTP request duration by route (the router's canonical path, never the raw one) and method",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)

HTTP_REQUESTS = Counter(
    "dipgw_http_requests_total",
    "HTTP requests by route and status",
    ["route", "status"],
    registry=REGISTRY,
)
RECORDS = _HospitalCounter(
    "dipgw_records_total",
    "Settlement lists at the gateway by outcome (accepted, duplicate, rejected) and hospital"
    ' ("" unless metrics.per_hospital)',
    ["outcome", "fixmedins_code"],
    registry=REGISTRY,
)
REJECTIONS = _HospitalCounter(
    "dipgw_rejections_total",
    'Rejecting findings by rule, quality dimension and hospital ("" unless metrics.per_hospital)',
    ["fixmedins_code", "rule", "dimension"],
    registry=REGISTRY,
)
PRODUCE_SECONDS = Histogram(
    "dipgw_produce_seconds",
    "Reserve + Kafka produce (acks=all) + accept, per request",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
PUSH_STAGE_SECONDS = Histogram(
    "dipgw_push_stage_seconds",
    "Where a push's time goes (adapters.runtime.stages): auth, validation (body read and "
    "checked), reservation, produce (queued to the producer), ack (acks=all), response",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
EVENT_LOOP_LAG = Histogram(
    "dipgw_event_loop_lag_seconds",
    "How late the event loop ran a timer (adapters.runtime.stages.watch_loop_lag): work that "
    "held the loop, which every request then waited for",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
    registry=REGISTRY,
)
UPLOAD_LAG = Histogram(
    "dipgw_upload_lag_seconds",
    "Discharge → receipt at the gateway (及时性)",
    buckets=(3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 90 * 86400),
    registry=REGISTRY,
)
WORKER_RECORDS = Counter(
    "dipgw_worker_records_total",
    "Records handled by worker",
    ["worker"],
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "dipgw_consumer_lag_messages",
    "Messages a worker's consumer group is behind the end of a partition",
    ["worker", "topic", "partition"],
    registry=REGISTRY,
)
TOPIC_END_OFFSET = Gauge(
    "dipgw_topic_end_offset",
    "End offset (messages ever written) of a consumed partition; on the rejected topic: its depth",
    ["topic", "partition"],
    registry=REGISTRY,
)
STAGE_LATENCY = Histogram(
    "dipgw_stage_latency_seconds",
    "Produced to Kafka → handled by a worker (Kafka message timestamp to commit), per worker",
    ["worker"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
QUALITY_ALERTS = Counter(
    "dipgw_quality_alerts_total",
    "Ingestion-quality alerts raised, by kind",
    ["kind"],
    registry=REGISTRY,
)
PRODUCER_RENEWALS = Counter(
    "dipgw_kafka_producer_renewals_total",
    "Kafka producers replaced after a failed delivery or a stopped sender, by purpose",
    ["purpose"],
    registry=REGISTRY,
)
WORKER_RESTARTS = Counter(
    "dipgw_worker_restarts_total",
    "Worker stages that ended early and were restarted, by worker and cause",
    ["worker", "cause"],
    registry=REGISTRY,
)
DEPENDENCY_UP = Gauge(
    "dipgw_dependency_up",
    "1 when the dependency (kafka, postgres) answered this process's last readiness check"
    " (run by /readyz and by every scrape of /metrics), else 0",
    ["dependency"],
    registry=REGISTRY,
)
WORKER_UP = Gauge(
    "dipgw_worker_up",
    "1 while a worker stage's consumer loop runs, 0 while it waits to restart or has stopped",
    ["worker"],
    registry=REGISTRY,
)


def consumer_lags() -> list[tuple[str, str, int, int]]:
    """(worker, topic, partition, lag) as this process's consumers last measured them."""
    out = []
    for metric in CONSUMER_LAG.collect():
        for sample in metric.samples:
            labels = sample.labels
            out.append(
                (labels["worker"], labels["topic"], int(labels["partition"]), int(sample.value))
            )
    return out


# -- feed sources (gateway.feeds): one series per configured feed, a bounded set -----------
FEED_ITEMS = Counter(
    "dipgw_feed_items_total",
    "Items a feed source read and how each ended (read, accepted, duplicate, rejected)",
    ["feed", "outcome"],
    registry=REGISTRY,
)
FEED_ERRORS = Counter(
    "dipgw_feed_errors_total",
    "Polls of a feed source that failed (source unreachable, Kafka or PostgreSQL away)",
    ["feed"],
    registry=REGISTRY,
)
FEED_BACKLOG = Gauge(
    "dipgw_feed_backlog_items",
    "Items waiting at the source beyond the stored position, at the last poll",
    ["feed"],
    registry=REGISTRY,
)
FEED_LAG = Gauge(
    "dipgw_feed_lag_seconds",
    "Age of the oldest item waiting at the source at the last poll (0: caught up)",
    ["feed"],
    registry=REGISTRY,
)
FEED_LAST_POLL = Gauge(
    "dipgw_feed_last_poll_timestamp_seconds",
    "When the feed last polled its source successfully (Unix time)",
    ["feed"],
    registry=REGISTRY,
)
FEED_UP = Gauge(
    "dipgw_feed_up",
    "1 while this process runs the feed and its last poll succeeded, 0 while it fails",
    ["feed"],
    registry=REGISTRY,
)
