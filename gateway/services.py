"""What the HTTP handlers share, one per application (its own module so that route modules
— ingest, subscriptions, ops — can reach it without importing each other)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web

from adapters.runtime.clock import Clock, system_clock
from gateway.checks import Checker
from gateway.ingest import Ingestor
from gateway.offload import FileWorkers
from gateway.ratelimit import Budgets


@dataclass
class Services:
    """What the handlers use; one per application."""

    pool: asyncpg.Pool
    ingestor: Ingestor
    checker: Checker
    budgets: Budgets
    """What each hospital and each client address may cost (`gateway.ratelimit`)."""
    batch_max_records: int
    request_timeout_s: float
    rejected_topic: str
    producer: Any
    files: FileWorkers
    max_body_bytes: int
    client_ip_header: str
    """File uploads are parsed and checked in these worker processes (`gateway.offload`)."""
    kafka_timeout_s: float = 15.0
    """How long a Kafka write on the request path may take before the answer is 503."""
    clock: Clock = field(default=system_clock)
    """When an upload is received, which day a report ends (`adapters.runtime.clock`)."""


SERVICES = web.AppKey("services", Services)
