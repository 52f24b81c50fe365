"""Feed sources end to end: rows of a hospital's intermediate table, and lines of dropped
files, read, checked and acknowledged by Kafka (the accepted topic), per second.

A fresh local Kafka and embedded PostgreSQL; the gateway (with its feed runner, no workers)
runs in this process. The source table is a PostgreSQL table in the national field names with
a diagnosis and an operation child table (`adapters.feeds` `write_demo_rows`), the drop folder
holds NDJSON files. The lists are realistic (≈ 8 diagnoses, 3 operations) and pass every
default rule, so every row ends `accepted`: the figure is the accepted rate. The rate is
counted from the first batch stored to the last, so the runner's pick-up delay is not in it.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import psutil

from adapters.feeds import FeedConfig
from adapters.runtime.clock import system_clock
from adapters.runtime.settings import Settings
from contracts import CST
from contracts.samples import make_settlement
from gateway.feeds import FeedStore
from gateway.runtime import LocalServices, running_stack

__all__ = ["FeedsFigures", "run_feeds_bench"]

HOSPITAL = "H44010000001"


@dataclass(frozen=True)
class FeedsFigures:
    db_rows_per_s: float
    db_rows: int
    db_seconds: float
    db_document_rows_per_s: float
    """The same rows as one JSON document column each: the source's own cost taken out, what
    is left is the checks and the way to Kafka (the ceiling of any source)."""
    file_rows_per_s: float
    file_rows: int
    file_files: int
    file_seconds: float
    batch_size: int
    cpu_ms_per_row: dict[str, float]
    settings: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _documents(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    now = datetime.now(CST).replace(tzinfo=None)
    return [
        make_settlement(
            rng,
            now=now,
            mdtrtarea_admvs="440100",
            fixmedins_code=HOSPITAL,
            serial=seed % 10**6 * 10**7 + n,
        )
        for n in range(count)
    ]


async def _counted(store: FeedStore, name: str, target: int) -> tuple[float, int, float]:
    """(moment of the first stored batch, rows then, moment `target` rows were stored)."""
    first: tuple[float, int] | None = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        (row,) = await store.rows(name)
        read = int(row.state["rows_read"])
        if read and first is None:
            first = (time.monotonic(), read)
        if read >= target:
            assert first is not None
            if row.state["accepted"] + row.state["duplicate"] < target:
                raise RuntimeError(f"feed {name}: {row.state} — not every row was accepted")
            return first[0], first[1], time.monotonic()
        if row.state["last_error"]:
            raise RuntimeError(f"feed {name} failed: {row.state['last_error']}")
        await asyncio.sleep(0.02)
    raise RuntimeError(f"feed {name} did not finish within 10 minutes")


def _rate(start: tuple[float, int, float], total: int) -> tuple[float, float]:
    began, before, ended = start
    seconds = max(ended - began, 1e-6)
    return round((total - before) / seconds, 1), round(seconds, 3)


async def _measure(
    settings: Settings, services: LocalServices, rows: int, files: int, file_rows: int, batch: int
) -> FeedsFigures:
    from adapters.feeds._db import write_demo_rows

    process = psutil.Process()
    async with running_stack(
        settings, services.bootstrap, services.dsn, workers=(), clock=system_clock
    ) as stack:
        try:
            await stack.registry.add_hospital(HOSPITAL, "压测医院", "440100", "3")
        except Exception:  # registered by an earlier run on a configured database
            await stack.registry.rotate_secret(HOSPITAL)
        store = FeedStore(stack.pool)
        table = f"bench_his_{int(time.time())}"
        await write_demo_rows(services.dsn, table, _documents(rows, seed=1))
        cpu = _cpu_s(process)
        await store.add(
            FeedConfig(
                name=f"{table}-db",
                kind="postgres",
                hospitals=[HOSPITAL],
                options={"dsn": services.dsn, "table": table, **_db_options(table)},
                poll_interval_s=0.05,
                batch_size=batch,
            )
        )
        db_started = await _counted(store, f"{table}-db", rows)
        db_cpu = _cpu_ms(process, cpu, rows - db_started[1])
        db_rate, db_seconds = _rate(db_started, rows)

        documents = f"{table}_doc"
        await stack.pool.execute(
            f"""CREATE TABLE {documents} (id bigint PRIMARY KEY, upd_time timestamptz NOT NULL
                    DEFAULT now() - interval '1 minute', doc text NOT NULL)"""
        )
        await stack.pool.copy_records_to_table(
            documents,
            records=[
                (n, msgspec.json.encode(d).decode()) for n, d in enumerate(_documents(rows, 2))
            ],
            columns=["id", "doc"],
        )
        await store.add(
            FeedConfig(
                name=f"{documents}-db",
                kind="postgres",
                hospitals=[HOSPITAL],
                options={
                    "dsn": services.dsn,
                    "table": documents,
                    "document_column": "doc",
                    "time_column": "upd_time",
                    "key_column": "id",
                    "settle_s": 0,
                },
                poll_interval_s=0.05,
                batch_size=batch,
            )
        )
        doc_rate, _ = _rate(await _counted(store, f"{documents}-db", rows), rows)

        with tempfile.TemporaryDirectory(prefix="dipgw-bench-drop-") as drop:
            for n in range(files):
                body = b"\n".join(
                    msgspec.json.encode(d) for d in _documents(file_rows, seed=100 + n)
                )
                path = Path(drop) / f"export-{n:03d}.ndjson"
                path.write_bytes(body + b"\n")
            cpu = _cpu_s(process)
            await store.add(
                FeedConfig(
                    name=f"{table}-drop",
                    kind="folder",
                    hospitals=[HOSPITAL],
                    options={"path": drop, "settle_s": 0},
                    poll_interval_s=0.05,
                    batch_size=batch,
                )
            )
            file_started = await _counted(store, f"{table}-drop", files * file_rows)
            file_cpu = _cpu_ms(process, cpu, files * file_rows - file_started[1])
        file_rate, file_seconds = _rate(file_started, files * file_rows)
    return FeedsFigures(
        db_rows_per_s=db_rate,
        db_rows=rows,
        db_seconds=db_seconds,
        db_document_rows_per_s=doc_rate,
        file_rows_per_s=file_rate,
        file_rows=files * file_rows,
        file_files=files,
        file_seconds=file_seconds,
        batch_size=batch,
        cpu_ms_per_row={"db": db_cpu, "file": file_cpu},
        settings={
            "kafka_compression": settings.kafka.compression,
            "file_workers": settings.limits.file_workers,
            "source": "PostgreSQL (embedded), national field names + child tables",
        },
    )


def _db_options(table: str) -> dict[str, Any]:
    from adapters.feeds._db import demo_options

    options: dict[str, Any] = demo_options(table)
    return {**options, "settle_s": 0}


def _cpu_s(process: psutil.Process) -> float:
    """CPU seconds of the gateway process and its children (the file workers parse and check
    files in child processes)."""
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _cpu_ms(process: psutil.Process, before: float, rows: int) -> float:
    return round((_cpu_s(process) - before) * 1000 / max(1, rows), 3)


def run_feeds_bench(
    settings: Settings, *, rows: int, files: int, file_rows: int, batch: int
) -> FeedsFigures:
    services = LocalServices(settings)
    services.start()
    try:
        return asyncio.run(_measure(settings, services, rows, files, file_rows, batch))
    finally:
        services.stop()
