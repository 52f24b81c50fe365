"""Session fixtures: one real Kafka broker and one real PostgreSQL per test run.

They start lazily, only when an integration test asks for them, so the pure unit tests run
without a JVM. Point `DIPGW_KAFKA_BOOTSTRAP` / `DIPGW_PG_DSN` at existing servers to use those
instead of the local ones.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest
import structlog

from adapters.runtime.settings import Settings, load_settings
from contracts import set_display_zone
from gateway.accounts import RegistryError
from gateway.runtime import LocalServices, Stack, running_stack
from gateway.signing import signed_headers
from tests.clock import CLOCK


def _scratch(prefix: str) -> Iterator[Path]:
    # Not under pytest's basetemp: pytest resets that tree to mode 0700, which locks out the
    # embedded PostgreSQL's own system user when several pytest runs share a machine.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _logging_put_back() -> Iterator[None]:
    """A test that runs `dipgw` in-process (`gateway.cli.main`) configures logging on the
    stderr pytest captured for it, which pytest closes afterwards: every later log line of the
    session would raise (found: the drills' gateway dropped connections after
    tests/cli/test_topics). Each test's logging configuration is put back after it, and the
    display zone (`display.utc_offset`, set by the settings `dipgw` reads) as well."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)
    set_display_zone("+08:00")


@pytest.fixture(scope="session")
def state_dir() -> Iterator[Path]:
    yield from _scratch("dipgw-test-state-")


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A private directory for a test's own Kafka/PostgreSQL state."""
    yield from _scratch("dipgw-test-")


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
        # Every test talks from 127.0.0.1: the per-address budgets are lifted for the session
        # stack (tests/gateway/test_endpoints.py holds a stack of its own to them).
        limits=msgspec.structs.replace(base.limits, source_rate_per_s=1e6, source_burst=1_000_000),
    )


@pytest.fixture(scope="session")
def services(settings: Settings) -> Iterator[LocalServices]:
    with LocalServices(settings) as running:
        yield running


@pytest.fixture(scope="session")
async def stack(services: LocalServices) -> AsyncIterator[Stack]:
    """The session's gateway and workers, on the tests' fixed clock (`tests.clock`)."""
    async with running_stack(
        services.settings, services.bootstrap, services.dsn, clock=CLOCK
    ) as running:
        yield running


class Client:
    """A hospital HIS, a city bureau or ops, talking to the running gateway over real HTTP."""

    def __init__(
        self,
        stack: Stack,
        *,
        hospital: str | None = None,
        secret: str | None = None,
        sign_type: str = "HMAC-SHA256",
        token: str | None = None,
    ) -> None:
        self.stack, self.hospital, self.secret = stack, hospital, secret
        self.sign_type, self.token = sign_type, token

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        if self.token is not None:
            return {"Authorization": f"Bearer {self.token}"}
        if self.hospital is None or self.secret is None:
            return {}
        return signed_headers(
            self.hospital, self.secret.encode(), method, path, body, sign_type=self.sign_type
        )

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        data = body or b""
        all_headers = {**self.headers(method, path, data), **(headers or {})}
        if body is not None:
            all_headers.setdefault("Content-Type", content_type)
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                method,
                self.stack.url + path,
                data=data if body is not None else None,
                headers=all_headers,
            ) as resp,
        ):
            text = await resp.read()
            try:
                payload = msgspec.json.decode(text)
            except msgspec.DecodeError:
                payload = text
            return resp.status, payload, dict(resp.headers)

    async def post(self, path: str, doc: Any, **kw: Any) -> tuple[int, Any]:
        body = doc if isinstance(doc, bytes) else msgspec.json.encode(doc)
        status, payload, _ = await self.request("POST", path, body, **kw)
        return status, payload

    async def get(self, path: str) -> tuple[int, Any]:
        status, payload, _ = await self.request("GET", path)
        return status, payload


async def register_hospital(
    stack: Stack, code: str, admdvs: str, level: str = "3", sign_type: str = "HMAC-SHA256"
) -> Client:
    try:
        secret = await stack.registry.add_hospital(
            code, f"测试医院{code[-4:]}", admdvs, level, sign_type=sign_type
        )
    except RegistryError:
        secret = await stack.registry.rotate_secret(code)
    return Client(stack, hospital=code, secret=secret, sign_type=sign_type)


@pytest.fixture(scope="session")
async def hospital(stack: Stack) -> Client:
    """H44010000001, a level-3 hospital in Guangzhou (440100)."""
    return await register_hospital(stack, "H44010000001", "440100")


@pytest.fixture(scope="session")
async def ops(stack: Stack) -> Client:
    return Client(stack, token=await stack.registry.issue_token("ops", "test-ops"))


@pytest.fixture(scope="session")
async def rules(stack: Stack) -> dict[str, Any]:
    """The sample DIP rules of 440100, 440300 and 440600 (clearing year 2026), stored, in force."""
    from workers.dip import SAMPLE_RULES
    from workers.rules_store import import_rules, read_rules_files

    stored = {}
    for city, path in SAMPLE_RULES.items():
        ruleset, sources = read_rules_files([path])
        stored[city] = (await import_rules(stack.pool, ruleset, sources)).stored
    return stored


async def city_client(stack: Stack, admdvs: str) -> Client:
    """A city bureau of `admdvs` with a fresh read-only token."""
    token = await stack.registry.issue_token("city", f"test-city-{admdvs}", admdvs)
    return Client(stack, token=token)


@pytest.fixture
async def fresh_dsn(services: LocalServices) -> AsyncIterator[str]:
    """A brand-new empty database on the session's server, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(services.dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        parts = urllib.parse.urlsplit(services.dsn)
        yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        # a test may have closed it to connections
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI no test may skip: a skipped test did not run, yet the run would pass."""
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        if reporter is not None:
            reporter.write_line(
                f"CI: {len(skipped)} test(s) skipped — no test may skip in CI; each says why",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
