"""Prometheus metrics of the gateway and workers (one registry per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "dipgw_http_requests_total",
    "HTTP requests by route and status",
    ["route", "status"],
    registry=REGISTRY,
)
RECORDS = Counter(
    "dipgw_records_total",
    "Settlement lists at the gateway by outcome (accepted, duplicate, rejected) and hospital",
    ["outcome", "fixmedins_code"],
    registry=REGISTRY,
)
REJECTIONS = Counter(
    "dipgw_rejections_total",
    "Rejecting findings by hospital, rule and quality dimension",
    ["fixmedins_code", "rule", "dimension"],
    registry=REGISTRY,
)
PRODUCE_SECONDS = Histogram(
    "dipgw_produce_seconds",
    "Reserve + Kafka produce (acks=all) + accept, per request",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
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
