"""Helpers of the DIP pipeline tests: realistic upload documents, waiting for scored rows,
reading a topic from its beginning."""

from __future__ import annotations

import asyncio
import os
import random
import re
import sys
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from aiokafka import AIOKafkaConsumer

from tests._clock import naive_now

_NAMES = {
    "K35.800x002": "急性化脓性阑尾炎",
    "J18.900": "肺炎",
    "I21.000": "急性前壁透壁性心肌梗死",
    "47.0100": "腹腔镜下阑尾切除术",
    "89.5200": "心电图",
    "36.0600": "非药物洗脱冠状动脉支架置入",
}
# Secondary diagnoses on the sample rules' severity lists would change the score.
_SEVERE = ("J18", "N39.0", "K65", "R57", "A41", "J96", "N17", "I50", "K72")


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def dip_document(
    *,
    code: str = "H44010000001",
    area: str = "440100",
    insured: str | None = None,
    diag: str = "K35.800x002",
    oprn: str | None = "47.0100",
    total: str = "9000.00",
    insutype: str = "310",
    dscg: str | None = None,
    setl_id: str | None = None,
    seed: int = 1,
) -> dict[str, Any]:
    """A settlement list that passes the contract (contracts.samples), with the DIP-relevant
    fields set: one main diagnosis, at most one operation, no ICU stay, an adult under 65,
    no secondary diagnosis on a severity list, consistent money. `dscg` moves the discharge
    (and so the clearing year); default: a few days before now on the tests' clock."""
    from contracts.samples import make_settlement

    now = datetime.strptime(dscg, "%Y-%m-%d %H:%M:%S") + timedelta(days=2) if dscg else None
    rng = random.Random(seed)
    while True:  # the sample whose case is the K35.8 one (adults, either sex), under 65
        doc = make_settlement(
            rng,
            now=now or naive_now(),
            mdtrtarea_admvs=area,
            insuplc_admdvs=insured or area,
            fixmedins_code=code,
            serial=rng.randrange(10**8),
        )
        setl = doc["input"]["setlinfo"]
        if doc["input"]["diseinfo"][0]["diag_code"] == "K35.800x002" and int(setl["age"]) < 65:
            break
    setl_id = setl_id or f"DIP{uuid.uuid4().hex[:14].upper()}"
    inp = doc["input"]
    inp["diseinfo"][0].update(diag_code=diag, diag_name=_NAMES[diag])
    inp["diseinfo"] = [inp["diseinfo"][0]] + [
        d for d in inp["diseinfo"][1:] if not d["diag_code"].startswith(_SEVERE)
    ]
    if oprn is None:
        inp["oprninfo"] = []
    else:
        inp["oprninfo"] = [{**inp["oprninfo"][0], "oprn_oprt_code": oprn}]
        inp["oprninfo"][0]["oprn_oprt_name"] = _NAMES[oprn]
    inp["icuinfo"] = []
    medfee = Decimal(total)
    fund = (medfee * Decimal("0.7")).quantize(Decimal("0.01"))
    cash = medfee - fund
    setl.update(
        setl_id=setl_id,
        mdtrt_id="M" + setl_id,
        insutype=insutype,
        medfee_sumamt=_money(medfee),
        fund_pay_sumamt=_money(fund),
        hifp_pay=_money(fund * Decimal("0.92")),
        acct_pay="0.00",
        psn_cash_pay=_money(cash),
        psn_selfpay=_money(cash * Decimal("0.6")),
        psn_ownpay=_money(cash * Decimal("0.3")),
        dscg_way="1",
    )
    doc["msgid"] = f"{code}{uuid.uuid4().int % 10**18:018d}"
    setl["biz_sn"] = f"BZ{uuid.uuid4().int % 10**16:016d}"
    return doc


async def wait_scored(
    pool: asyncpg.Pool,
    keys: dict[tuple[str, str], int],
    timeout: float = 90,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Wait until every (fixmedins_code, setl_id) has its scored row at the given revision."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for _ in range(int(timeout / 0.1)):
        found = await pool.fetch(
            """SELECT * FROM scored_cases
               WHERE (fixmedins_code, setl_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))""",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        rows = {(r["fixmedins_code"], r["setl_id"]): dict(r) for r in found}
        if all(k in rows and rows[k]["revision"] >= rev for k, rev in keys.items()):
            return rows
        await asyncio.sleep(0.1)
    missing = {k: v for k, v in keys.items() if k not in rows or rows[k]["revision"] < v}
    raise AssertionError(f"not scored within {timeout}s: {missing}")


async def read_topic(
    bootstrap: str, topic: str, keys: set[str], *, expect: int, timeout: float = 15
) -> list[dict[str, Any]]:
    """Messages of `topic` whose key is in `keys`, from the beginning, until `expect` are seen."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(out) < expect and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=300)
            for part in batches.values():
                for record in part:
                    if record.key is not None and record.key.decode() in keys:
                        out.append(msgspec.json.decode(record.value or b"{}"))
    finally:
        await consumer.stop()
    return out


def rules_variant(
    tmp: Path, city: str, year: int, *, point_310: str | None = None, version: str | None = None
) -> Path:
    """A copy of a sample city's TOML policy for another clearing year (same catalog)."""
    from workers.dip import SAMPLE_RULES

    source = SAMPLE_RULES[city]
    text = source.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^clearing_year = \d+", f"clearing_year = {year}", text)
    text = re.sub(
        r'(?m)^catalog = "([^"]+)"',
        lambda m: f'catalog = "{(source.parent / m[1]).as_posix()}"',
        text,
    )
    if point_310 is not None:
        text = re.sub(r'(?m)^"310" = "[^"]+"', f'"310" = "{point_310}"', text)
    if version is not None:
        text = re.sub(r'(?m)^version = "[^"]+"', f'version = "{version}"', text)
    out = tmp / f"{city}-{year}-{point_310 or 'base'}-{version or 'v'}.toml"
    out.write_text(text, encoding="utf-8")
    return out


async def dipgw(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the real `dipgw` CLI in a subprocess (it runs its own event loop)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        cwd=Path(__file__).parent.parent,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


def cli_env(dsn: str, bootstrap: str, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(
        DIPGW_PG_DSN=dsn,
        DIPGW_KAFKA_BOOTSTRAP=bootstrap,
        DIPGW_STATE_DIR=str(state),
        DIPGW_LOG_LEVEL="warning",
    )
    return env
