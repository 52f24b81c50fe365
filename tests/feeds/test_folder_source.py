"""The folder source on a real directory: what it reads, when, and where files end."""

from __future__ import annotations

import json
import os
import tracemalloc
from datetime import datetime
from pathlib import Path

import pytest

from adapters import _textenc
from adapters.feeds import SOURCE_KINDS, FeedConfig, ItemResult, SourceBatch, SourceError
from adapters.feeds._files import FolderOptions, FolderSource
from contracts import CST

T0 = datetime(2025, 3, 1, 8, 0, 0, tzinfo=CST).timestamp()
"""Fixed file times, long settled whatever today is."""

GBK_CSV = "psn_name,fixmedins_name\n张三,北京协和医院\n".encode("gbk")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drop(folder: Path, name: str, body: bytes, at: float | None = T0) -> Path:
    path = folder / name
    path.write_bytes(body)
    if at is not None:
        os.utime(path, (at, at))
    return path


def source(folder: Path, clock: Clock | None = None, **options: object) -> FolderSource:
    opts = FolderOptions(path=str(folder), **options)  # type: ignore[arg-type]
    return FolderSource(opts, clock or Clock())


async def only_batch(src: FolderSource) -> SourceBatch:
    batch = await src.read(None, 500)
    assert batch is not None and batch.file is not None
    return batch


def accepted(n: int) -> list[ItemResult]:
    return [
        ItemResult(position=str(i), status="accepted", case_key=f"H1:{i}", receipt_id=f"r{i}")
        for i in range(1, n + 1)
    ]


async def test_partial_names_are_never_read(tmp_path: Path) -> None:
    for name in (
        ".hidden.ndjson",
        "a.ndjson.tmp",
        "a.ndjson.part",
        "a.partial",
        "b.csv.filepart",
        "c.crdownload",
        "d.swp",
        "e.ndjson.result.json",
        "UPPER.TMP",
    ):
        drop(tmp_path, name, b"{}\n")
    (tmp_path / "sub.ndjson").mkdir()
    src = source(tmp_path)
    assert await src.read(None, 500) is None
    assert (await src.backlog(None)).items == 0
    drop(tmp_path, "a.ndjson", b"{}\n")  # the rename that ends the write
    batch = await only_batch(src)
    assert batch.file is not None and batch.file.name == "a.ndjson"


async def test_a_growing_file_waits_until_settled(tmp_path: Path) -> None:
    clock = Clock()
    src = source(tmp_path, clock, settle_s=3600)
    path = drop(tmp_path, "list.ndjson", b'{"a": 1}\n', at=None)  # being written now
    assert await src.read(None, 500) is None
    clock.now += 3000
    with path.open("ab") as f:
        f.write(b'{"a": 2}\n')  # still growing: the wait starts again
    assert await src.read(None, 500) is None
    clock.now += 3000
    assert await src.read(None, 500) is None
    clock.now += 700  # unchanged for settle_s across polls
    batch = await only_batch(src)
    assert batch.file is not None and batch.file.body == b'{"a": 1}\n{"a": 2}\n'


async def test_an_old_mtime_needs_no_second_poll(tmp_path: Path) -> None:
    drop(tmp_path, "list.ndjson", b"{}\n", at=T0)
    batch = await only_batch(source(tmp_path, settle_s=3600))
    assert batch.oldest_at == datetime.fromtimestamp(T0, CST)


async def test_oldest_first_then_by_name(tmp_path: Path) -> None:
    drop(tmp_path, "c.ndjson", b"{}\n", at=T0 + 60)
    drop(tmp_path, "b.ndjson", b"{}\n", at=T0)
    drop(tmp_path, "a.ndjson", b"{}\n", at=T0 + 60)
    src = source(tmp_path)
    backlog = await src.backlog(None)
    assert backlog.items == 3 and backlog.oldest_at == datetime.fromtimestamp(T0, CST)
    order = []
    for _ in range(3):
        batch = await only_batch(src)
        assert batch.file is not None
        order.append(batch.file.name)
        await src.finish(batch, accepted(1))
    assert order == ["b.ndjson", "a.ndjson", "c.ndjson"]
    assert await src.read(None, 500) is None


async def test_gbk_csv_is_decoded_with_a_note(tmp_path: Path) -> None:
    drop(tmp_path, "list.csv", GBK_CSV)
    f = (await only_batch(source(tmp_path))).file
    assert f is not None
    assert f.format == "csv" and not f.problems
    assert f.body == GBK_CSV.decode("gbk").encode("utf-8")
    assert f.notes == ("decoded from GB18030 (GBK)",)


async def test_utf8_is_passed_as_is_with_or_without_bom(tmp_path: Path) -> None:
    text = "psn_name\n张三\n".encode()
    drop(tmp_path, "a.csv", text, at=T0)
    drop(tmp_path, "b.csv", b"\xef\xbb\xbf" + text, at=T0 + 1)
    drop(tmp_path, "c.ndjson", b'{"a": 1}\n', at=T0 + 2)  # ASCII: also valid GB18030
    src = source(tmp_path)
    for body in (text, b"\xef\xbb\xbf" + text, b'{"a": 1}\n'):
        batch = await only_batch(src)
        assert batch.file is not None
        assert batch.file.body == body and batch.file.notes == () and not batch.file.problems
        await src.finish(batch, accepted(1))


async def test_utf16_with_bom_is_decoded(tmp_path: Path) -> None:
    text = "psn_name\n张三\n"
    drop(tmp_path, "list.csv", text.encode("utf-16"))
    f = (await only_batch(source(tmp_path))).file
    assert f is not None
    assert f.body == text.encode() and f.notes == ("decoded from UTF-16",)


async def test_undecodable_text_is_an_encoding_problem(tmp_path: Path) -> None:
    body = "psn_name\n张三\n".encode("gbk") + b"\x81\x20tail"  # \x81 leads nothing valid
    drop(tmp_path, "list.csv", body)
    f = (await only_batch(source(tmp_path))).file
    assert f is not None
    assert f.body == b"" and len(f.problems) == 1
    problem = f.problems[0]
    assert problem.kind == "encoding" and problem.field == "$"
    bad = body.index(b"\x81")
    assert f"offset {bad}" in problem.detail
    assert "张" not in problem.detail


async def test_xlsx_bytes_are_untouched(tmp_path: Path) -> None:
    body = b"PK\x03\x04\xff\xfe not text at all"
    drop(tmp_path, "list.xlsx", body)
    f = (await only_batch(source(tmp_path))).file
    assert f is not None
    assert f.format == "xlsx" and f.body == body and not f.problems and not f.notes


async def test_a_1gb_file_is_too_large_and_never_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.ndjson"
    path.touch()
    os.truncate(path, 1024**3)  # sparse: no disk used
    os.utime(path, (T0, T0))
    src = source(tmp_path)
    tracemalloc.start()
    try:
        batch = await only_batch(src)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024
    assert batch.file is not None and batch.file.body == b""
    assert [p.kind for p in batch.file.problems] == ["too_large"]
    assert str(1024**3) in batch.file.problems[0].detail
    await src.finish(batch, [refused("too_large")])
    assert (tmp_path / "failed" / "huge.ndjson").exists()


def refused(kind: str) -> ItemResult:
    return ItemResult(position="$", status="rejected", errors=[{"rule_id": kind}])


async def test_unknown_extension_goes_to_failed_with_its_result(tmp_path: Path) -> None:
    drop(tmp_path, "list.txt", b"hello")
    drop(tmp_path, "noext", b"hello", at=T0 + 1)
    src = source(tmp_path)
    for name in ("list.txt", "noext"):
        batch = await only_batch(src)
        assert batch.file is not None and batch.file.name == name
        assert [p.kind for p in batch.file.problems] == ["unknown_format"]
        await src.finish(batch, [refused("unknown_format")])
        assert (tmp_path / "failed" / name).read_bytes() == b"hello"
        result = json.loads((tmp_path / "failed" / f"{name}.result.json").read_bytes())
        assert result["rejected"] == 1 and result["results"][0]["position"] == "$"


async def test_an_extension_this_feed_does_not_take_is_unknown(tmp_path: Path) -> None:
    drop(tmp_path, "list.xlsx", b"PK")
    f = (await only_batch(source(tmp_path, extensions=[".csv"]))).file
    assert f is not None and [p.kind for p in f.problems] == ["unknown_format"]


async def test_finish_all_accepted_moves_to_done_with_the_result_file(tmp_path: Path) -> None:
    drop(tmp_path, "list.csv", GBK_CSV)
    src = source(tmp_path)
    batch = await only_batch(src)
    results = [
        ItemResult(position="2", status="accepted", case_key="H1:S1", receipt_id="r1", revision=1),
        ItemResult(position="3", status="duplicate", case_key="H1:S2", receipt_id="r2"),
    ]
    await src.finish(batch, results)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done"]
    done = tmp_path / "done"
    assert sorted(p.name for p in done.iterdir()) == ["list.csv", "list.csv.result.json"]
    assert (done / "list.csv").read_bytes() == GBK_CSV  # the hospital's bytes, untouched
    raw = (done / "list.csv.result.json").read_bytes()
    assert b"\n  " in raw  # indented for a person
    result = json.loads(raw)
    assert result.pop("finished_at").endswith("+08:00")
    assert result == {
        "file": "list.csv",
        "format": "csv",
        "notes": ["decoded from GB18030 (GBK)"],
        "accepted": 1,
        "duplicate": 1,
        "rejected": 0,
        "results": [
            {
                "position": "2",
                "status": "accepted",
                "case_key": "H1:S1",
                "receipt_id": "r1",
                "revision": 1,
            },
            {"position": "3", "status": "duplicate", "case_key": "H1:S2", "receipt_id": "r2"},
        ],
    }


async def test_finish_with_a_rejected_line_moves_to_failed(tmp_path: Path) -> None:
    drop(tmp_path, "list.ndjson", b"{}\n{}\n")
    src = source(tmp_path)
    batch = await only_batch(src)
    errors = [{"rule_id": "SCH_REQUIRED", "field": "psn_no", "message": "缺少"}]
    await src.finish(
        batch, [*accepted(1), ItemResult(position="2", status="rejected", errors=errors)]
    )
    failed = tmp_path / "failed"
    assert sorted(p.name for p in failed.iterdir()) == ["list.ndjson", "list.ndjson.result.json"]
    result = json.loads((failed / "list.ndjson.result.json").read_bytes())
    assert (result["accepted"], result["rejected"]) == (1, 1)
    assert result["results"][1]["errors"] == errors
    assert "缺少".encode() in (failed / "list.ndjson.result.json").read_bytes()  # UTF-8


async def test_the_same_name_again_gets_a_suffix_never_overwrites(tmp_path: Path) -> None:
    src = source(tmp_path)
    for i, at in enumerate((T0, T0 + 3600, T0 + 3600)):
        drop(tmp_path, "list.ndjson", f'{{"n": {i}}}\n'.encode(), at=at)
        await src.finish(await only_batch(src), accepted(1))
    done = tmp_path / "done"
    assert sorted(p.name for p in done.iterdir()) == [
        "list.20250301-090000-2.ndjson",
        "list.20250301-090000-2.ndjson.result.json",
        "list.20250301-090000.ndjson",
        "list.20250301-090000.ndjson.result.json",
        "list.ndjson",
        "list.ndjson.result.json",
    ]
    assert (done / "list.ndjson").read_bytes() == b'{"n": 0}\n'
    assert (done / "list.20250301-090000.ndjson").read_bytes() == b'{"n": 1}\n'
    assert (done / "list.20250301-090000-2.ndjson").read_bytes() == b'{"n": 2}\n'


async def test_finish_twice_is_safe(tmp_path: Path) -> None:
    drop(tmp_path, "list.ndjson", b"{}\n")
    src = source(tmp_path)
    batch = await only_batch(src)
    await src.finish(batch, accepted(1))
    await src.finish(batch, accepted(1))
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == [
        "list.ndjson",
        "list.ndjson.result.json",
    ]


async def test_a_finish_that_died_before_the_move_is_completed_in_the_same_slot(
    tmp_path: Path,
) -> None:
    drop(tmp_path, "list.ndjson", b"{}\n")
    src = source(tmp_path)
    batch = await only_batch(src)
    # the crash: the result file was written, the data file not moved yet
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "list.ndjson.result.json").write_text('{"stale": true}')
    again = await only_batch(source(tmp_path))  # after the restart, read again
    assert again.file == batch.file
    dup = [ItemResult(position="1", status="duplicate", case_key="H1:1", receipt_id="r1")]
    await src.finish(again, dup)
    done = tmp_path / "done"
    assert sorted(p.name for p in done.iterdir()) == ["list.ndjson", "list.ndjson.result.json"]
    assert json.loads((done / "list.ndjson.result.json").read_bytes())["duplicate"] == 1


async def test_a_new_file_under_a_finished_name_is_not_moved_by_a_stale_finish(
    tmp_path: Path,
) -> None:
    drop(tmp_path, "list.ndjson", b"{}\n")
    src = source(tmp_path)
    batch = await only_batch(src)
    await src.finish(batch, accepted(1))
    drop(tmp_path, "list.ndjson", b'{"new": 1}\n', at=T0 + 60)
    await src.finish(batch, accepted(1))  # repeated for the old file
    assert (tmp_path / "list.ndjson").read_bytes() == b'{"new": 1}\n'


async def test_a_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    src = source(tmp_path / "gone")
    with pytest.raises(SourceError, match="gone"):
        await src.read(None, 500)
    with pytest.raises(SourceError):
        await src.backlog(None)


def test_options_are_checked_by_the_registry(tmp_path: Path) -> None:
    def check(**options: object) -> list[str]:
        return SOURCE_KINDS.check(
            FeedConfig(name="drop", kind="folder", hospitals=["H1"], options=options)
        )

    assert check(path=str(tmp_path)) == []
    assert check(path=str(tmp_path), settle_s=0, extensions=[".csv", ".jsonl"]) == []
    assert check(path=str(tmp_path), colour="red") != []
    assert check(path=str(tmp_path), extensions=[".doc"]) != []
    assert check(path=str(tmp_path), settle_s=-1) != []
    assert check() != []
    built = SOURCE_KINDS.build(
        FeedConfig(name="drop", kind="folder", hospitals=["H1"], options={"path": str(tmp_path)})
    )
    assert isinstance(built, FolderSource)


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 5, 7, 1 << 20])
def test_the_bad_byte_offset_is_exact_across_chunk_boundaries(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_textenc, "_CHUNK", chunk)
    good = "ab张三李四\n".encode()
    for bad in (b"\xff", "张".encode()[:2] + b"x"):
        data = good + bad + b"tail"
        with pytest.raises(_textenc.UndecodableText) as info:
            _textenc.utf8_body(data + b"\x81\x20")  # neither UTF-8 nor GB18030
        assert info.value.offset >= len(good)
        assert _textenc._first_bad(data, "utf-8") == len(good)
    assert _textenc._first_bad(good, "utf-8") is None
    assert _textenc._first_bad(good + "张".encode()[:2], "utf-8") == len(good)
    assert _textenc.utf8_body(good) == (good, None)
    assert _textenc.utf8_body("张三".encode("gbk")) == ("张三".encode(), _textenc.GB18030_NOTE)
