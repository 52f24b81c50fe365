"""A hospital connected by a drop folder or an SFTP account, end to end in the session's
gateway: files read by the feed runner, checked line by line like uploads, taken to Kafka,
then moved to done/ or failed/ with a result file in the batch answer's shape.

Hostile files each get a clear whole-file verdict and move to failed/, never deleted, never
crashing the feed: GBK text (decoded, noted), bytes in no known encoding, a truncated XLSX, a
1 GB file (refused unread), a file still being written (left alone).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters import FORMATS
from adapters.feeds import FeedConfig
from gateway.feeds import FeedStore
from gateway.runtime import Stack
from tests.builders import document, new_code, wait_received
from tests.conftest import register_hospital
from tests.feeds._sftpd import Sshd, running_sshd

pytestmark = pytest.mark.integration
OLD = 1_700_000_000  # an mtime long settled


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    with running_sshd() as server:
        yield server


def _drop(folder: Path, name: str, body: bytes) -> Path:
    path = folder / name
    path.write_bytes(body)
    os.utime(path, (OLD, OLD))
    return path


def _ndjson(*docs: dict[str, Any]) -> bytes:
    return b"".join(msgspec.json.encode(d) + b"\n" for d in docs)


async def _feed(stack: Stack, code: str, kind: str, options: dict[str, Any]) -> str:
    name = f"{kind}-{uuid.uuid4().hex[:8]}"
    await FeedStore(stack.pool).add(
        FeedConfig(name=name, kind=kind, hospitals=[code], options=options, poll_interval_s=0.1)
    )
    return name


async def _result(folder: Path, sub: str, name: str, timeout: float = 60) -> dict[str, Any]:
    path = folder / sub / f"{name}.result.json"
    for _ in range(int(timeout / 0.1)):
        if path.exists() and (folder / sub / name).exists():
            return dict(json.loads(path.read_bytes()))
        await asyncio.sleep(0.1)
    listing = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    raise AssertionError(f"{sub}/{name} and its result never appeared: {listing}")


async def test_a_drop_folder_takes_good_files_and_refuses_bad_ones_whole(
    stack: Stack, tmp_path: Path
) -> None:
    code = new_code()
    await register_hospital(stack, code, "440100")
    drop = tmp_path / "drop"
    drop.mkdir()
    clean = [document(f"FF{n}", code=code) for n in range(3)]
    _drop(drop, "a-clean.ndjson", _ndjson(*clean))
    _drop(drop, "b-mixed.ndjson", _ndjson(document("FF3", code=code, medfee_sumamt=None),
                                          document("FF4", code=code)))  # fmt: skip
    csv = FORMATS.get("csv")
    assert csv is not None and csv.write is not None
    text = csv.write([msgspec.to_builtins(document("FF5", code=code))]).decode("utf-8-sig")
    assert "张三" in text
    _drop(drop, "c-gbk.csv", text.encode("gb18030"))  # as Excel on Chinese Windows saves it
    _drop(drop, "d-garbled.csv", b"psn_name,setl_id\n\x81\x30\xff\xfe,1\n")
    xlsx = FORMATS.get("xlsx")
    assert xlsx is not None and xlsx.write is not None
    whole = xlsx.write([msgspec.to_builtins(document("FF6", code=code))])
    _drop(drop, "e-truncated.xlsx", whole[: len(whole) // 2])
    huge = drop / "f-huge.ndjson"
    with huge.open("wb") as out:
        out.truncate(1024**3)  # sparse: 1 GiB of nothing, never read
    os.utime(huge, (OLD, OLD))
    _drop(drop, "g-writing.ndjson.part", _ndjson(document("FF7", code=code)))

    name = await _feed(stack, code, "folder", {"path": str(drop), "settle_s": 0})
    try:
        ok = await _result(drop, "done", "a-clean.ndjson")
        assert (ok["accepted"], ok["rejected"]) == (3, 0)
        assert [r["status"] for r in ok["results"]] == ["accepted"] * 3
        assert all(r["receipt_id"] and r["revision"] == 1 for r in ok["results"])

        mixed = await _result(drop, "failed", "b-mixed.ndjson")
        first, second = mixed["results"]
        assert first["status"] == "rejected" and first["position"] == "line 1"
        assert any(e["field"].endswith("medfee_sumamt") for e in first["errors"])
        assert second["status"] == "accepted"  # one bad line never sinks the rest

        gbk = await _result(drop, "done", "c-gbk.csv")
        assert gbk["notes"] == ["decoded from GB18030 (GBK)"] and gbk["accepted"] == 1
        stored = await stack.pool.fetchval(
            "SELECT status FROM receipts WHERE fixmedins_code = $1 AND setl_id = 'FF5'", code
        )
        assert stored in ("accepted", "stored")

        for file, rule in (
            ("d-garbled.csv", "FEED_ENCODING"),
            ("e-truncated.xlsx", "DEC_FILE"),
            ("f-huge.ndjson", "FEED_TOO_LARGE"),
        ):
            refused = await _result(drop, "failed", file)
            (only,) = refused["results"]
            assert (only["position"], only["status"]) == ("$", "rejected"), file
            assert only["errors"][0]["rule"] == rule, (file, only)
        assert (drop / "failed" / "f-huge.ndjson").stat().st_size == 1024**3  # moved, intact
        # a file still being written is left where it is
        assert (drop / "g-writing.ndjson.part").exists()

        # the quality figures count a feed's lines as uploads: 6 lines checked, 1 rejected
        await wait_received(stack.pool, code, 6)
        rejected = await stack.pool.fetchval(
            "SELECT sum(rejected) FROM quality_daily WHERE fixmedins_code = $1", code
        )
        assert rejected == 1
        # the position and counts are stored just after the result file is written
        for _ in range(100):
            (row,) = await FeedStore(stack.pool).rows(name)
            if row.state["rows_read"] == 9:
                break
            await asyncio.sleep(0.1)
        assert row.state["last_error"] is None
        assert row.state["accepted"] == 5 and row.state["rejected"] == 4, row.state
    finally:
        await FeedStore(stack.pool).remove(name)


async def test_an_sftp_account_is_read_and_its_files_moved_on_the_server(
    stack: Stack, sshd: Sshd, tmp_path: Path
) -> None:
    code = new_code()
    await register_hospital(stack, code, "440100")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _drop(inbox, "export.ndjson", _ndjson(document("FS1", code=code), document("FS2", code=code)))
    name = await _feed(
        stack,
        code,
        "sftp",
        {
            "host": "127.0.0.1",
            "port": sshd.port,
            "username": sshd.username,
            "client_key": str(sshd.client_key),
            "known_hosts": str(sshd.known_hosts),
            "path": str(inbox),
            "settle_s": 0,
        },
    )
    try:
        result = await _result(inbox, "done", "export.ndjson")
        assert (result["accepted"], result["rejected"]) == (2, 0)
        assert not (inbox / "export.ndjson").exists()
        count = await stack.pool.fetchval(
            "SELECT count(*) FROM receipts WHERE fixmedins_code = $1", code
        )
        assert count == 2
    finally:
        await FeedStore(stack.pool).remove(name)
