"""Session fixtures: one real Kafka broker and one real PostgreSQL per test run.

They start lazily, only when an integration test asks for them, so the pure unit tests run
without a JVM. Point `DIPGW_KAFKA_BOOTSTRAP` / `DIPGW_PG_DSN` at existing servers to use those
instead of the local ones.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import pytest

from gateway.runtime import LocalServices, Stack, running_stack
from gateway.settings import Settings, load_settings


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dipgw-state")


@pytest.fixture(scope="session")
def settings(state_dir: Path) -> Settings:
    base = load_settings(
        environ={
            k: v for k, v in os.environ.items() if k in ("DIPGW_KAFKA_BOOTSTRAP", "DIPGW_PG_DSN")
        }
    )
    return msgspec.structs.replace(
        base,
        state_dir=str(state_dir),
        http=msgspec.structs.replace(base.http, port=0),
        log=msgspec.structs.replace(base.log, level="warning"),
    )


@pytest.fixture(scope="session")
def services(settings: Settings) -> Iterator[LocalServices]:
    with LocalServices(settings) as running:
        yield running


@pytest.fixture(scope="session")
async def stack(services: LocalServices) -> AsyncIterator[Stack]:
    async with running_stack(services.settings, services.bootstrap, services.dsn) as running:
        yield running
