"""A hospital connected by its intermediate database, end to end in the session's gateway:
rows in the national field names (a main table and child tables), on PostgreSQL and on
MariaDB, read by the gateway's feed runner, checked, taken to Kafka, written back, and
counted in the quality figures exactly as uploads are.

Bad rows each get their own clear verdict, and nothing else is held up: a required column
NULL, text in a money column, a BLOB where text belongs.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from adapters.feeds import FeedConfig
from adapters.feeds._db import demo_options, write_demo_rows
from gateway.feeds import FeedStore
from gateway.runtime import Stack
from tests.builders import document, new_code, wait_received
from tests.conftest import register_hospital
from tests.feeds.test_db_source import Target, mariadb, target

pytestmark = pytest.mark.integration
__all__ = ["mariadb", "target"]  # the fixtures, shared with the source's own tests


async def _until(check: Any, timeout: float = 60.0) -> Any:
    for _ in range(int(timeout / 0.1)):
        if got := await check():
            return got
        await asyncio.sleep(0.1)
    raise AssertionError("not within the time")


async def test_a_hospital_connected_by_table_gets_a_verdict_per_row(
    stack: Stack, target: Target
) -> None:
    code = new_code()
    await register_hospital(stack, code, "440100")
    table = f"his_{uuid.uuid4().hex[:8]}"
    docs = [document(f"DB{n}", code=code) for n in range(4)]
    await write_demo_rows(target.dsn, table, docs, password=target.password)
    blob, bytes_value = target.t("bytea", "BLOB"), target.t("'x'::bytea", "X'00ff'")
    q = target.t('"', "`")
    await target.run(
        f"UPDATE {q}{table}{q} SET medfee_sumamt = NULL WHERE id = 2",
        f"UPDATE {q}{table}{q} SET medfee_sumamt = 'abc' WHERE id = 3",
        f"ALTER TABLE {q}{table}{q} ADD COLUMN bz {blob}",
        f"UPDATE {q}{table}{q} SET bz = {bytes_value} WHERE id = 4",
    )
    options = demo_options(table)
    options["mapping"] = {**options["mapping"], "bz": "setlinfo.hsorg_opter"}
    options.update(dsn=target.dsn, settle_s=0)
    if target.password is not None:
        options["password"] = target.password
    name = f"db-{uuid.uuid4().hex[:8]}"
    await FeedStore(stack.pool).add(
        FeedConfig(
            name=name, kind=target.kind, hospitals=[code], options=options, poll_interval_s=0.1
        )
    )
    try:

        async def written_back() -> list[tuple[Any, ...]] | None:
            rows = await target.rows(
                f"SELECT id, dip_status, dip_message FROM {q}{table}{q} ORDER BY id"
            )
            return rows if all(r[1] for r in rows) else None

        rows = {r[0]: (r[1], r[2]) for r in await _until(written_back)}
        assert rows[1][0] == "已读取"
        assert rows[2][0] == "校验失败" and "medfee_sumamt" in rows[2][1]
        assert rows[3][0] == "校验失败" and "medfee_sumamt" in rows[3][1]
        assert rows[4][0] == "校验失败" and "FEED_COLUMN_TYPE" in rows[4][1]
        assert "hsorg_opter" in rows[4][1]
        # the position and counts are stored just after the write-back
        for _ in range(100):
            (row,) = await FeedStore(stack.pool).rows(name)
            if row.state["rows_read"] == 4:
                break
            await asyncio.sleep(0.1)
        state = row.state
        assert (state["rows_read"], state["accepted"], state["rejected"]) == (4, 1, 3)
        assert state["last_error"] is None
        # the same quality view as uploads: four lists received, three rejected
        await wait_received(stack.pool, code, 4)
        rejected = await stack.pool.fetchval(
            "SELECT sum(rejected) FROM quality_daily WHERE fixmedins_code = $1", code
        )
        assert rejected == 3
        receipt = await stack.pool.fetchrow(
            "SELECT revision, status FROM receipts WHERE fixmedins_code = $1", code
        )
        assert receipt["revision"] == 1 and receipt["status"] in ("accepted", "stored")
    finally:
        await FeedStore(stack.pool).remove(name)
