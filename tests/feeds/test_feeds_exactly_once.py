"""Exactly-once end state of a feed: the gateway reading a hospital's intermediate table is
SIGKILLed mid-batch and restarted; every row is then stored once, at its latest revision, and
a row the HIS changes after it was read becomes the next revision.

The gateway (with its feed runner) runs in a real `dipgw up` subprocess on a database and
topics of its own, so the session's gateway cannot take the feed over; the source table is
a PostgreSQL table the HIS would write; the sink storing `cases` runs in this process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from adapters.runtime.settings import Settings
from gateway.runtime import LocalServices, running_stack
from tests.builders import document
from tests.builders import isolated as isolated_database
from tests.clock import CLOCK, naive_now
from tests.conftest import register_hospital

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
CODE = "H44010000001"
ROWS = 1500


@pytest.fixture
async def isolated(services: LocalServices) -> AsyncIterator[tuple[Settings, str]]:
    """Settings with their own topics and consumer groups, and a database of their own."""
    async with isolated_database(services, "fx") as both:
        yield both


def _gateway(settings: Settings, bootstrap: str, dsn: str, log: Path) -> subprocess.Popen[str]:
    t = settings.topics
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(
        DIPGW_STATE_DIR=str(settings.state_path),  # the same sealing key as this process
        DIPGW_PG_DSN=dsn,
        DIPGW_KAFKA_BOOTSTRAP=bootstrap,
        DIPGW_HTTP_PORT="0",
        DIPGW_TOPICS_ACCEPTED=t.accepted,
        DIPGW_TOPICS_REJECTED=t.rejected,
        DIPGW_TOPICS_GROUPED=t.grouped,
        DIPGW_TOPICS_SCORED=t.scored,
        DIPGW_TOPICS_SCORED_ALL=t.scored_all,
        DIPGW_TOPICS_OUT_OF_PROVINCE=t.out_of_province,
        DIPGW_WORKER_GROUP_PREFIX=settings.worker.group_prefix,
        DIPGW_LOG_LEVEL="info",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "up", "--workers", ""],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("a"),
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def _until(pool: asyncpg.Pool, query: str, ok: Any, log: Path, timeout: float = 120) -> Any:
    value = None
    for _ in range(int(timeout / 0.1)):
        value = await pool.fetchval(query)
        if ok(value):
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"{query} stuck at {value}:\n{log.read_text()[-3000:]}")


def _doc(i: int, **setlinfo: Any) -> dict[str, Any]:
    return document(f"FX{i:05d}", code=CODE, **setlinfo)


async def test_a_sigkilled_feed_leaves_every_row_once_at_its_latest_revision(
    services: LocalServices, isolated: tuple[Settings, str], tmp_path: Path
) -> None:
    settings, dsn = isolated
    log = tmp_path / "gateway.log"
    async with running_stack(
        settings, services.bootstrap, dsn, gateway=False, workers=("sink",), clock=CLOCK
    ) as here:
        await register_hospital(here, CODE, "440100")
        pool = here.pool
        await pool.execute(
            """CREATE TABLE his_setl (id bigint PRIMARY KEY, upd_time timestamp NOT NULL,
                                      doc text NOT NULL)"""
        )
        written = naive_now() - timedelta(minutes=5)
        await pool.executemany(
            "INSERT INTO his_setl VALUES ($1, $2, $3)",
            [(i, written, msgspec.json.encode(_doc(i)).decode()) for i in range(ROWS)],
        )
        feed = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            "feeds",
            "add",
            "his-fx",
            "--kind",
            "postgres",
            "--hospital",
            CODE,
            "--option",
            f"dsn={dsn}",
            "--option",
            "table=his_setl",
            "--option",
            "document_column=doc",
            "--option",
            "time_column=upd_time",
            "--option",
            "key_column=id",
            "--option",
            "settle_s=0",
            "--batch-size",
            "100",
            "--poll-interval",
            "0.2",
            cwd=ROOT,
            env={**os.environ, "DIPGW_PG_DSN": dsn, "DIPGW_STATE_DIR": str(settings.state_path)},
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await feed.communicate()
        assert feed.returncode == 0, err.decode()

        gateway = _gateway(settings, services.bootstrap, dsn, log)
        try:
            # Killed mid-stream: some batches stored, more to come, one maybe half taken.
            read = "SELECT rows_read FROM feed_sources WHERE name = 'his-fx'"
            at_kill = await _until(pool, read, lambda n: (n or 0) >= 300, log)
            os.kill(gateway.pid, signal.SIGKILL)
            gateway.wait(10)
            assert at_kill < ROWS
            seen = {
                r["setl_id"]: r["status"]
                for r in await pool.fetch(
                    "SELECT setl_id, status FROM receipts WHERE fixmedins_code = $1", CODE
                )
            }
            assert 0 < len(seen) < ROWS
            # While it is down the HIS corrects rows already taken and rows not yet read (a
            # reservation the kill left pending is left alone: its re-read takes it over).
            changed = [
                i
                for i in range(0, ROWS, 15)
                if seen.get(f"FX{i:05d}") in (None, "accepted", "stored")
            ]
            await pool.executemany(
                "UPDATE his_setl SET doc = $2, upd_time = $3 WHERE id = $1",
                [
                    (i, msgspec.json.encode(_doc(i, medcasno=f"MC{i}")).decode(), naive_now())
                    for i in changed
                ],
            )
            want = {f"FX{i:05d}": [1] for i in range(ROWS)}
            for i in changed:
                if f"FX{i:05d}" in seen:
                    want[f"FX{i:05d}"] = [1, 2]
            revisions = sum(len(v) for v in want.values())
            gateway = _gateway(settings, services.bootstrap, dsn, log)
            done = f"SELECT count(*) FROM receipts WHERE fixmedins_code = '{CODE}'"
            await _until(pool, done, lambda n: n >= revisions, log)
            latest = f"""SELECT count(*) FROM cases c WHERE c.fixmedins_code = '{CODE}'
                         AND c.revision = (SELECT max(revision) FROM receipts r
                                           WHERE r.fixmedins_code = c.fixmedins_code
                                             AND r.setl_id = c.setl_id)"""
            await _until(pool, latest, lambda n: n == ROWS, log)
        finally:
            _stop(gateway)
        receipts = await pool.fetch(
            """SELECT setl_id, array_agg(revision ORDER BY revision) AS revisions,
                      bool_and(status <> 'pending') AS settled
               FROM receipts WHERE fixmedins_code = $1 GROUP BY setl_id""",
            CODE,
        )
        assert len(receipts) == ROWS
        assert {r["setl_id"]: list(r["revisions"]) for r in receipts} == want
        assert all(r["settled"] for r in receipts)
        cases = {
            r["setl_id"]: r
            for r in await pool.fetch(
                "SELECT setl_id, revision, record FROM cases WHERE fixmedins_code = $1", CODE
            )
        }
        assert len(cases) == ROWS
        for i in changed:
            case = cases[f"FX{i:05d}"]
            assert case["revision"] == want[f"FX{i:05d}"][-1]
            assert msgspec.json.decode(case["record"])["input"]["setlinfo"]["medcasno"] == f"MC{i}"
        row = await pool.fetchrow("SELECT * FROM feed_sources WHERE name = 'his-fx'")
        # No revision is counted accepted twice. A batch the kill interrupted before its
        # position was stored is read again and counted as duplicates, or, for a row the HIS
        # changed meanwhile, its first revision is never counted: every row's last is.
        assert row["accepted"] <= revisions
        assert row["accepted"] + row["duplicate"] >= ROWS
        assert row["rejected"] == 0 and row["last_error"] is None
