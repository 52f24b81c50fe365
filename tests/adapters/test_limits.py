"""Hostile input to the feed formats (issue 11): every XLSX bomb is refused before it is
parsed, in milliseconds and kilobytes, naming the limit it passes; each limit is checked at
its boundary; CSV is bounded the same way; JSON nested too deeply to read is a decode error,
never a RecursionError."""

from __future__ import annotations

import io
import pickle
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from adapters import (
    FORMATS,
    JSON_MAX_DEPTH,
    InputLimits,
    JsonTooDeep,
    LimitExceeded,
    decode_batch,
    decode_envelope,
    is_batch,
    iter_csv,
    iter_ndjson,
    iter_xlsx,
    read_records,
    split_batch,
    split_json,
)
from adapters._xlsx import check_package
from tests.adapters import bombs
from tests.builders import golden

GENEROUS = InputLimits(
    rows=10**9,
    columns=10**6,
    cells=10**12,
    shared_strings_bytes=2**40,
    unzipped_bytes=2**40,
    string_chars=2**40,
    zip_members=10**6,
    compression_ratio=10**6,
)
"""No limit a test's bomb can reach: what the readers did before they had limits."""


def _refusal(read: Callable[[], Any]) -> tuple[LimitExceeded, float, float]:
    """The LimitExceeded `read` raises, the seconds it took and its peak of traced MiB."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(LimitExceeded) as caught:
            read()
        return (
            caught.value,
            time.perf_counter() - started,
            tracemalloc.get_traced_memory()[1] / 2**20,
        )
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """openpyxl imported and the default validator built before anything is timed."""
    list(iter_xlsx(bombs.workbook_with()))


@pytest.mark.parametrize("name", list(bombs.XLSX_BOMBS))
def test_every_xlsx_bomb_is_refused_before_it_is_parsed(name: str) -> None:
    build, limit = bombs.XLSX_BOMBS[name]
    data = build()
    exc, seconds, peak_mib = _refusal(lambda: list(iter_xlsx(data)))
    assert exc.limit == limit, exc
    assert exc.maximum > 0 and exc.limit_cn
    # the bombs are 5 KB .. 1 MB; refusing one costs about what a small file does
    assert seconds < 1.0, f"{name}: {seconds:.2f}s"
    assert peak_mib < 20, f"{name}: {peak_mib:.1f} MiB"


def test_the_bombs_are_what_they_claim() -> None:
    """The sizes of issue 11: ten million rows in ~100 KB, a gigabyte string in ~1 MB, a
    member whose central directory and local header both lie about its size."""
    import zipfile

    assert len(bombs.empty_rows()) < 128 * 1024
    huge = bombs.huge_shared_string()
    assert len(huge) < 1_200_000
    info = zipfile.ZipFile(io.BytesIO(huge)).getinfo(bombs.STRINGS)
    assert info.file_size > 1 << 30
    lying = zipfile.ZipFile(io.BytesIO(bombs.lying_size())).getinfo(bombs.STRINGS)
    assert lying.file_size == 1_000 and lying.compress_size > 1_000_000
    # and a reader without limits does parse them: openpyxl reads this base workbook
    assert [r.position for r in iter_xlsx(bombs.workbook_with(), limits=GENEROUS)] == []


def test_a_dtd_is_refused() -> None:
    with pytest.raises(ValueError, match="DTD"):
        list(iter_xlsx(bombs.doctype()))


def _export(count: int) -> tuple[bytes, int]:
    """A real export of `count` lists and its number of columns."""
    docs = []
    for i in range(count):
        doc = golden()
        doc["input"]["setlinfo"]["setl_id"] = f"SETL{i:012d}"
        docs.append(doc)
    data = FORMATS.get("xlsx").write(docs)  # type: ignore[union-attr]
    header = next(iter(__import__("openpyxl").load_workbook(io.BytesIO(data)).active.values))
    return data, len(header)


def test_an_export_exactly_at_the_limits_is_read_and_one_past_each_is_refused() -> None:
    data, columns = _export(3)
    rows = 4  # header + 3
    exact = InputLimits(rows=rows, columns=columns, cells=rows * columns)
    records = list(iter_xlsx(data, limits=exact))
    assert [r.position for r in records] == ["row 2", "row 3", "row 4"]
    assert all(r.envelope is not None for r in records)
    for field, limit in (("rows", "rows"), ("columns", "columns"), ("cells", "cells")):
        tighter = InputLimits(**{**exact.__dict__, field: getattr(exact, field) - 1})
        with pytest.raises(LimitExceeded) as caught:
            list(iter_xlsx(data, limits=tighter))
        assert caught.value.limit == limit


def test_the_sheet_scan_checks_each_limit() -> None:
    small = InputLimits(rows=50, columns=100, cells=1_000)
    cases = {
        "rows": bombs.many_rows(60),  # row 51 > 50
        "columns": bombs.wide_row(cells=500),  # column 101 > 100, under the ratio's floor
        "cells": bombs.workbook_with(
            bombs.plain(
                bombs.SHEET,
                bombs._SHEET_HEAD
                + b"".join(
                    f'<row r="{i}"><c r="CV{i}"><v>1</v></c></row>'.encode() for i in range(1, 20)
                )
                + bombs._SHEET_TAIL,
            )  # 19 rows padded to column 100: 1,900 > 1,000 cells
        ),
        "XML elements": bombs.workbook_with(
            bombs.plain(
                bombs.SHEET, bombs._SHEET_HEAD + b"<x/>" * 20_000 + bombs._SHEET_TAIL
            )  # budget: 4 per cell + 10,000
        ),
    }
    for limit, data in cases.items():
        with pytest.raises(LimitExceeded) as caught:
            list(iter_xlsx(data, limits=small))
        assert caught.value.limit == limit, (limit, caught.value)
    # a declared dimension whose area passes the cells limit, before any row is read
    area = bombs._SHEET_HEAD.replace(b"<sheetData>", b'<dimension ref="A1:CV40"/><sheetData>')
    sheet = bombs.workbook_with(
        bombs.plain(bombs.SHEET, area + bombs._HEADER_ROW + bombs._SHEET_TAIL)
    )
    with pytest.raises(LimitExceeded, match="cells"):
        list(iter_xlsx(sheet, limits=small))


def test_row_and_cell_numbers_of_any_length() -> None:
    """A row numbered with 5,000 digits is past the rows limit, not an int() failure; a
    reference that long is no reference (the column counts on), never a crash."""
    for row in ('r="' + "9" * 5000 + '"', 'r="1e400"'):
        body = bombs._SHEET_HEAD + f"<row {row}/>".encode() + bombs._SHEET_TAIL
        with pytest.raises((LimitExceeded, ValueError)) as caught:
            list(iter_xlsx(bombs.workbook_with(bombs.plain(bombs.SHEET, body))))
        assert not isinstance(caught.value, LimitExceeded) or caught.value.limit == "rows"
    cell = '<row r="1"><c r="A' + "9" * 5000 + '"><v>1</v></c></row>'
    body = bombs._SHEET_HEAD + cell.encode() + bombs._SHEET_TAIL
    with pytest.raises(ValueError):  # openpyxl then finds the reference unreadable
        list(iter_xlsx(bombs.workbook_with(bombs.plain(bombs.SHEET, body))))


def test_the_shared_strings_are_counted_and_measured() -> None:
    table = bombs._strings(b"setl_id") + b"</t></si>" + b"<si><t>x</t></si>" * 10 + b"</sst>"
    data = bombs.workbook_with(bombs.plain(bombs.STRINGS, table))
    with pytest.raises(LimitExceeded) as caught:
        list(iter_xlsx(data, limits=InputLimits(cells=5)))
    assert caught.value.limit == "shared strings"
    with pytest.raises(LimitExceeded) as caught:
        list(iter_xlsx(bombs.long_shared_string(200), limits=InputLimits(string_chars=100)))
    assert caught.value.limit == "string length"


def test_the_package_checks() -> None:
    import zipfile

    data = bombs.workbook_with()
    check_package(data, InputLimits()).close()
    with pytest.raises(LimitExceeded, match="decompressed bytes"):
        check_package(data, InputLimits(unzipped_bytes=1_000))  # declared total
    member = bombs.plain(
        bombs.SHEET, bombs._SHEET_HEAD + bombs._HEADER_ROW * 100 + bombs._SHEET_TAIL
    )
    liar = bombs.workbook_with(bombs.lying(member, declared=200))
    with pytest.raises(LimitExceeded) as caught:
        check_package(liar, InputLimits())
    assert (caught.value.limit, caught.value.maximum) == ("decompressed bytes", 200)
    with pytest.raises(LimitExceeded, match="zip members"):
        check_package(data, InputLimits(zip_members=3))
    with pytest.raises(LimitExceeded, match="shared strings bytes"):
        check_package(data, InputLimits(shared_strings_bytes=10))
    # a member that claims more than it holds is unreadable, not a limit
    short = bombs.workbook_with(bombs.lying(member, declared=member.size + 10))
    with pytest.raises(zipfile.BadZipFile, match="shorter"):
        check_package(short, InputLimits())


def test_the_limits_cross_a_process_boundary() -> None:
    for exc in (LimitExceeded("rows", 10, "row 11", "sheet1.xml"), JsonTooDeep()):
        copy = pickle.loads(pickle.dumps(exc))
        assert type(copy) is type(exc)
        assert (copy.limit, copy.maximum, copy.found, copy.where) == (
            exc.limit, exc.maximum, exc.found, exc.where,
        )  # fmt: skip


# -- CSV --------------------------------------------------------------------------------------


def test_csv_is_bounded_by_rows_columns_and_cells() -> None:
    header = "setl_id,fixmedins_code\n"
    fine = header + "S1,H1\n\nS2,H1\n"  # the blank line counts as a row
    assert (
        len(list(iter_csv(io.StringIO(fine), limits=InputLimits(rows=4, columns=2, cells=6)))) == 2
    )
    cases = {
        "rows": (fine, InputLimits(rows=3)),
        "columns": (header + "S1,H1" + ",x" * 5_000 + "\n", InputLimits(columns=1_000)),
        "cells": (header + "S1,H1\n" * 10, InputLimits(cells=15)),
    }
    for limit, (text, limits) in cases.items():
        with pytest.raises(LimitExceeded) as caught:
            list(iter_csv(io.StringIO(text), limits=limits))
        assert caught.value.limit == limit
    with pytest.raises(LimitExceeded, match="columns"):  # the header alone
        list(iter_csv(io.StringIO("a," * 2_000 + "\n"), limits=InputLimits(columns=1_000)))


def test_read_records_passes_the_limits_to_limited_formats() -> None:
    csv_format = FORMATS.get("csv")
    assert csv_format is not None and csv_format.limited
    with pytest.raises(LimitExceeded):
        list(read_records(csv_format, b"a,b\n1,2\n3,4\n", limits=InputLimits(rows=2)))


# -- JSON -------------------------------------------------------------------------------------


def test_json_nested_too_deeply_is_a_decode_error_not_a_recursion_error() -> None:
    for deep in (bombs.deep_array(), bombs.deep_object(), bombs.deep_envelope()):
        record = decode_envelope(deep)
        assert record.envelope is None
        if not deep.startswith(b"["):  # (an envelope's decoder refuses an array at once)
            assert [e.rule for e in record.errors] == ["DEC_JSON"]
            assert "JSON depth" in record.errors[0].message_en
        with pytest.raises(JsonTooDeep):
            list(split_json(deep))
        with pytest.raises(JsonTooDeep):
            list(split_batch(b'{"records": [' + deep + b"]}"))
        assert [e.rule for e in decode_batch(b"[" + deep + b"]")[0].errors] == ["DEC_JSON"]
    with pytest.raises(JsonTooDeep):
        is_batch(bombs.deep_object())
    json_format = FORMATS.get("json")
    assert json_format is not None
    (whole,) = read_records(json_format, bombs.deep_envelope())
    assert (whole.position, whole.errors[0].rule) == ("batch", "DEC_JSON")


def test_a_deep_ndjson_line_is_its_own_error_and_the_rest_go_on() -> None:
    records = list(iter_ndjson(io.BytesIO(bombs.deep_ndjson()), validate=True))
    assert [r.position for r in records] == ["line 1", "line 2", "line 3"]
    assert records[1].envelope is None and records[1].errors[0].rule == "DEC_JSON"
    assert records[0].envelope is not None and records[2].envelope is not None


def test_json_as_deep_as_promised_is_read() -> None:
    """JSON_MAX_DEPTH levels always parse (the envelope itself is 3 of them)."""
    record = decode_envelope(bombs.deep_envelope(JSON_MAX_DEPTH - 3))
    assert record.envelope is not None, record.errors
