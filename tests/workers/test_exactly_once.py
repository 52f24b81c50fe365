"""Exactly-once end state: the DIP workers are SIGKILLed mid-stream and restarted; PostgreSQL
then holds every accepted case once, at its latest revision, with the right score.

The workers run in a real `dipgw up --no-gateway` subprocess against their own database and
topics (so the session's workers cannot do their work for them); the gateway that takes the
signed pushes runs in this process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.runtime.settings import Settings
from gateway.runtime import LocalServices, Stack, running_stack
from tests.builders import dip_document, wait_scored
from tests.builders import isolated as isolated_database
from tests.clock import CLOCK
from tests.conftest import register_hospital
from workers.casefacts_map import case_facts
from workers.dip import SAMPLE_RULES, group, sample_rules, score
from workers.rules_store import import_rules, read_rules_files

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


@pytest.fixture
async def isolated(services: LocalServices) -> AsyncIterator[tuple[Settings, str]]:
    """Settings with their own topics and consumer groups, and a database of their own."""
    async with isolated_database(services, "eo", max_batch=20) as both:
        yield both


def _start_workers(
    settings: Settings, bootstrap: str, dsn: str, state: Path
) -> subprocess.Popen[str]:
    t, w = settings.topics, settings.worker
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(
        DIPGW_STATE_DIR=str(state),
        DIPGW_PG_DSN=dsn,
        DIPGW_KAFKA_BOOTSTRAP=bootstrap,
        DIPGW_TOPICS_ACCEPTED=t.accepted,
        DIPGW_TOPICS_REJECTED=t.rejected,
        DIPGW_TOPICS_GROUPED=t.grouped,
        DIPGW_TOPICS_SCORED=t.scored,
        DIPGW_TOPICS_SCORED_ALL=t.scored_all,
        DIPGW_TOPICS_OUT_OF_PROVINCE=t.out_of_province,
        DIPGW_WORKER_GROUP_PREFIX=w.group_prefix,
        DIPGW_WORKER_MAX_BATCH=str(w.max_batch),
        DIPGW_LOG_LEVEL="warning",
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "up",
            "--no-gateway",
            "--workers",
            "grouping,scoring,scored_sink",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _expected(doc: dict[str, Any], level: str) -> tuple[float, Decimal | None]:
    area = doc["mdtrtarea_admvs"]
    facts = case_facts(
        msgspec.json.encode(doc),
        case_key="k",
        fixmedins_code=doc["fixmedins_code"],
        treating_admdvs=area,
        insured_admdvs=doc["insuplc_admdvs"],
        hospital_level=level,
    )
    rules = sample_rules(area)
    result = score(group(facts, rules), rules, facts)
    return result.case_score, result.estimated_payment


async def _push(gw: Stack, clients: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    for code, client in clients.items():
        mine = [d for d in docs if d["fixmedins_code"] == code]
        for i in range(0, len(mine), 50):
            status, body = await client.post("/v1/settlements/batch", {"records": mine[i : i + 50]})
            assert status == 200 and body["accepted"] == len(mine[i : i + 50]), body


async def test_sigkilled_workers_leave_every_case_once_at_its_latest_revision(
    services: LocalServices, isolated: tuple[Settings, str], tmp_path: Path
) -> None:
    settings, dsn = isolated
    diags = [("K35.800x001", "47.0100"), ("J18.900", None), ("I21.000", "36.0600")]
    async with running_stack(
        settings, services.bootstrap, dsn, workers=("sink",), clock=CLOCK
    ) as gw:
        for path in SAMPLE_RULES.values():
            await import_rules(gw.pool, *read_rules_files([path]))
        clients = {
            "H44010000001": await register_hospital(gw, "H44010000001", "440100", "3"),
            "H44030000001": await register_hospital(gw, "H44030000001", "440300", "2"),
        }
        levels = {"H44010000001": "3", "H44030000001": "2"}

        def doc(i: int, **kw: Any) -> dict[str, Any]:
            code = "H44010000001" if i % 2 else "H44030000001"
            area = "440100" if i % 2 else "440300"
            diag, oprn = diags[i % 3]
            fields = {
                "insured": "440300" if i % 5 == 0 else area,
                "diag": diag,
                "oprn": oprn,
                "total": f"{4000 + 37 * i}.00",
            }
            return dip_document(code=code, area=area, seed=i, **(fields | kw))

        wave1 = [doc(i) for i in range(240)]
        await _push(gw, clients, wave1)
        workers = _start_workers(settings, services.bootstrap, dsn, tmp_path / "w")
        try:
            # Kill as soon as the workers have stored something: mid-stream.
            stored_at_kill = 0
            for _ in range(600):
                stored_at_kill = await gw.pool.fetchval("SELECT count(*) FROM scored_cases")
                if stored_at_kill > 0:
                    break
                await asyncio.sleep(0.05)
            os.kill(workers.pid, signal.SIGKILL)
            workers.wait(10)
            assert 0 < stored_at_kill < len(wave1)
            # While they are down: more cases, and corrections of some already scored.
            wave2 = [doc(i) for i in range(240, 320)]
            corrections = [
                doc(i, setl_id=wave1[i]["input"]["setlinfo"]["setl_id"], total=f"{20000 + i}.00")
                for i in range(0, 240, 6)
            ]
            await _push(gw, clients, wave2 + corrections)
            workers = _start_workers(settings, services.bootstrap, dsn, tmp_path / "w")
            latest = {d["input"]["setlinfo"]["setl_id"]: d for d in wave1 + wave2}
            for d in corrections:
                latest[d["input"]["setlinfo"]["setl_id"]] = d
            revisions = {
                (d["fixmedins_code"], sid): 2 if d in corrections else 1
                for sid, d in latest.items()
            }
            rows = await wait_scored(gw.pool, revisions, timeout=90)
        finally:
            workers.send_signal(signal.SIGTERM)
            try:
                workers.wait(30)
            except subprocess.TimeoutExpired:
                workers.kill()
        assert await gw.pool.fetchval("SELECT count(*) FROM scored_cases") == len(latest)
        for (code, sid), row in rows.items():
            d = latest[sid]
            assert row["revision"] == revisions[(code, sid)]
            assert row["status"] == "scored", row
            case_score, payment = _expected(d, levels[code])
            assert row["case_score"] == pytest.approx(case_score), sid
            assert row["estimated_payment"] == payment, sid
            assert row["total_cost"] == Decimal(d["input"]["setlinfo"]["medfee_sumamt"])
