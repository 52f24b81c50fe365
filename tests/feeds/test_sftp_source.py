"""The SFTP source against a real OpenSSH server started for this module (tests/feeds/_sftpd.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from adapters.feeds import SOURCE_KINDS, FeedConfig, ItemResult, SourceBatch, SourceError
from adapters.feeds._sftp import SftpOptions, SftpSource
from contracts import CST
from tests.feeds._sftpd import Sshd, running_sshd

T0 = datetime(2025, 3, 1, 8, 0, 0, tzinfo=CST).timestamp()
GBK_CSV = "psn_name,fixmedins_name\n张三,北京协和医院\n".encode("gbk")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    with running_sshd() as server:
        yield server


@pytest.fixture
def drop_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def options(sshd: Sshd, folder: Path, **more: object) -> SftpOptions:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": sshd.port,
        "username": sshd.username,
        "client_key": str(sshd.client_key),
        "known_hosts": str(sshd.known_hosts),
        "path": str(folder),
        "settle_s": 0,
    }
    base.update(more)
    return SftpOptions(**base)  # type: ignore[arg-type]


def drop(folder: Path, name: str, body: bytes, at: float = T0) -> None:
    (folder / name).write_bytes(body)
    os.utime(folder / name, (at, at))


async def only_batch(src: SftpSource) -> SourceBatch:
    batch = await src.read(None, 500)
    assert batch is not None and batch.file is not None
    return batch


async def test_reads_and_finishes_into_remote_done(sshd: Sshd, drop_dir: Path) -> None:
    drop(drop_dir, "b.csv", GBK_CSV, at=T0 + 60)
    drop(drop_dir, "a.ndjson", b'{"a": 1}\n')
    drop(drop_dir, "c.ndjson.part", b'{"a"')
    src = SftpSource(options(sshd, drop_dir))
    try:
        assert (await src.backlog(None)).items == 2
        first = await only_batch(src)
        assert first.file is not None and first.file.name == "a.ndjson"
        assert first.file.body == b'{"a": 1}\n' and first.file.format == "ndjson"
        assert first.oldest_at == datetime.fromtimestamp(T0, CST)
        ok = ItemResult(position="1", status="accepted", case_key="H1:1", receipt_id="r1")
        await src.finish(first, [ok])
        await src.finish(first, [ok])  # repeating is safe
        second = await only_batch(src)
        assert second.file is not None and second.file.name == "b.csv"
        assert second.file.body == GBK_CSV.decode("gbk").encode()
        assert second.file.notes == ("decoded from GB18030 (GBK)",)
        bad = ItemResult(position="2", status="rejected", errors=[{"rule_id": "SCH_REQUIRED"}])
        await src.finish(second, [bad])
        assert await src.read(None, 500) is None
    finally:
        await src.close()
    assert sorted(p.name for p in drop_dir.iterdir()) == ["c.ndjson.part", "done", "failed"]
    done, failed = drop_dir / "done", drop_dir / "failed"
    assert sorted(p.name for p in done.iterdir()) == ["a.ndjson", "a.ndjson.result.json"]
    assert sorted(p.name for p in failed.iterdir()) == ["b.csv", "b.csv.result.json"]
    result = json.loads((done / "a.ndjson.result.json").read_bytes())
    assert (result["file"], result["accepted"], result["rejected"]) == ("a.ndjson", 1, 0)
    result = json.loads((failed / "b.csv.result.json").read_bytes())
    assert result["rejected"] == 1 and result["notes"] == ["decoded from GB18030 (GBK)"]
    assert (failed / "b.csv").read_bytes() == GBK_CSV


async def test_name_clash_in_remote_done_gets_a_suffix(sshd: Sshd, drop_dir: Path) -> None:
    src = SftpSource(options(sshd, drop_dir))
    try:
        for i in range(2):
            drop(drop_dir, "list.ndjson", f'{{"n": {i}}}\n'.encode())
            ok = ItemResult(position="1", status="accepted")
            await src.finish(await only_batch(src), [ok])
    finally:
        await src.close()
    assert sorted(p.name for p in (drop_dir / "done").iterdir()) == [
        "list.20250301-080000.ndjson",
        "list.20250301-080000.ndjson.result.json",
        "list.ndjson",
        "list.ndjson.result.json",
    ]


async def test_a_file_is_read_once_settled_across_polls(sshd: Sshd, drop_dir: Path) -> None:
    clock = Clock()
    src = SftpSource(options(sshd, drop_dir, settle_s=5), clock)
    try:
        drop(drop_dir, "list.ndjson", b"{}\n")  # remote mtimes are not on our clock
        assert await src.read(None, 500) is None
        clock.now += 4
        drop(drop_dir, "list.ndjson", b"{}\n{}\n", at=T0 + 1)  # still growing
        assert await src.read(None, 500) is None
        clock.now += 4
        assert await src.read(None, 500) is None
        clock.now += 1
        batch = await only_batch(src)
        assert batch.file is not None and batch.file.body == b"{}\n{}\n"
    finally:
        await src.close()


async def test_too_large_and_unknown_format_over_sftp(sshd: Sshd, drop_dir: Path) -> None:
    path = drop_dir / "huge.ndjson"
    path.touch()
    os.truncate(path, 1024**3)
    os.utime(path, (T0, T0))
    drop(drop_dir, "list.doc", b"x", at=T0 + 1)
    src = SftpSource(options(sshd, drop_dir, max_file_bytes=1024))
    try:
        huge = await only_batch(src)
        assert huge.file is not None and [p.kind for p in huge.file.problems] == ["too_large"]
        await src.finish(huge, [ItemResult(position="$", status="rejected", errors=[])])
        doc = await only_batch(src)
        assert doc.file is not None and [p.kind for p in doc.file.problems] == ["unknown_format"]
        await src.finish(doc, [ItemResult(position="$", status="rejected", errors=[])])
    finally:
        await src.close()
    assert sorted(p.name for p in (drop_dir / "failed").iterdir()) == [
        "huge.ndjson",
        "huge.ndjson.result.json",
        "list.doc",
        "list.doc.result.json",
    ]


async def test_a_pinned_fingerprint_is_accepted(sshd: Sshd, drop_dir: Path) -> None:
    drop(drop_dir, "a.ndjson", b"{}\n")
    opts = options(sshd, drop_dir, known_hosts=None, host_key_fingerprint=sshd.host_key_fingerprint)
    src = SftpSource(opts)
    try:
        assert (await only_batch(src)).file is not None
    finally:
        await src.close()


async def test_a_wrong_client_key_is_refused(sshd: Sshd, drop_dir: Path) -> None:
    src = SftpSource(options(sshd, drop_dir, client_key=str(sshd.other_key)))
    with pytest.raises(SourceError, match=f"login refused for user {sshd.username}"):
        await src.read(None, 500)
    await src.close()


async def test_a_wrong_host_key_is_refused(sshd: Sshd, drop_dir: Path) -> None:
    src = SftpSource(options(sshd, drop_dir, known_hosts=str(sshd.wrong_known_hosts)))
    with pytest.raises(SourceError, match="host key"):
        await src.read(None, 500)
    wrong = "SHA256:" + "A" * 43
    src = SftpSource(options(sshd, drop_dir, known_hosts=None, host_key_fingerprint=wrong))
    with pytest.raises(SourceError, match="host key"):
        await src.read(None, 500)


async def test_a_password_never_shows_in_the_error(sshd: Sshd, drop_dir: Path) -> None:
    secret = "Very-s3cret-pw"
    src = SftpSource(options(sshd, drop_dir, client_key=None, password=secret))
    with pytest.raises(SourceError) as info:
        await src.read(None, 500)
    assert secret not in str(info.value) and "login refused" in str(info.value)


async def test_a_missing_remote_folder_is_a_source_error(sshd: Sshd, tmp_path: Path) -> None:
    src = SftpSource(options(sshd, tmp_path / "gone"))
    try:
        with pytest.raises(SourceError, match="cannot list"):
            await src.read(None, 500)
    finally:
        await src.close()


async def test_server_stopped_then_recovery(sshd: Sshd, drop_dir: Path) -> None:
    drop(drop_dir, "a.ndjson", b"{}\n")
    src = SftpSource(options(sshd, drop_dir))
    try:
        assert (await src.backlog(None)).items == 1
        sshd.stop()
        try:
            with pytest.raises(SourceError):
                await src.read(None, 500)
            with pytest.raises(SourceError, match="cannot connect"):
                await src.read(None, 500)
        finally:
            sshd.start()
        batch = await only_batch(src)
        await src.finish(batch, [ItemResult(position="1", status="accepted")])
    finally:
        await src.close()
    assert (drop_dir / "done" / "a.ndjson").exists()


def test_options_are_checked_by_the_registry(tmp_path: Path) -> None:
    def check(**options: object) -> list[str]:
        return SOURCE_KINDS.check(
            FeedConfig(name="drop", kind="sftp", hospitals=["H1"], options=options)
        )

    good = {"host": "h", "username": "u", "password": "p", "known_hosts": "/k", "path": "/in"}
    assert check(**good) == []
    assert check(**{**good, "known_hosts": None}) != []  # the host key is always checked
    assert check(**{**good, "host_key_fingerprint": "SHA256:x"}) != []  # not both
    assert check(**{**good, "password": None}) != []  # some credential
    assert check(**{**good, "colour": "red"}) != []
    shown = SOURCE_KINDS.shown_options(
        FeedConfig(name="drop", kind="sftp", hospitals=["H1"], options=good)
    )
    assert shown["password"] == "***"
