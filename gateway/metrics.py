"""Prometheus metrics of the gateway and workers (one registry per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "dipgw_http_requests_total",
    "HTTP requests by route and status",
    ["route", "status"],
    registry=REGISTRY,
)
RECORDS = Counter(
    "dipgw_records_total",
    "Settlement lists by outcome at the gateway",
    ["outcome"],
    registry=REGISTRY,
)
PRODUCE_SECONDS = Histogram(
    "dipgw_produce_seconds",
    "Kafka produce latency (acks=all)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
WORKER_RECORDS = Counter(
    "dipgw_worker_records_total",
    "Records handled by worker",
    ["worker"],
    registry=REGISTRY,
)
