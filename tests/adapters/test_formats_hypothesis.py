"""Hypothesis over every feed format's reader (`adapters.FORMATS`, through `read_records` as
the gateway's file workers and `dipgw validate` call it): arbitrary bytes, and uploads that
are structured but wrong (valid lists damaged field by field, cell by cell, member by member
and byte by byte: tests/fuzz/strategies.py), give records — each with a position and, when
nothing could be decoded, its errors — or one of the format's documented refusals, never
another exception. Per format: 2,000 arbitrary byte strings and 1,000 damaged uploads.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import FORMATS, DecodedRecord, InputLimits, LimitExceeded, read_records
from contracts import ValidationError
from tests.fuzz import corpus, strategies

HOSPITAL, CITY = "H44010000001", "440100"
BYTES_EXAMPLES = 2_000
DAMAGED_EXAMPLES = 1_000

#: what each reader may raise, as documented: JSON and NDJSON never raise (an unreadable
#: upload or line is a DEC_JSON/DEC_SHAPE record); CSV stops past its limits and is UTF-8
#: (iter_csv); XLSX stops past its limits, and an unreadable package is a BadZipFile or a
#: ValueError (adapters._xlsx.check_package / open_workbook)
DOCUMENTED: dict[str, tuple[type[BaseException], ...]] = {
    "json": (),
    "ndjson": (),
    "csv": (LimitExceeded, UnicodeDecodeError),
    "xlsx": (LimitExceeded, zipfile.BadZipFile, ValueError),
}


def read_all(fmt_name: str, data: bytes) -> list[DecodedRecord] | BaseException:
    """Every record of `data`, or the exception the reader raised (if it is allowed)."""
    fmt = FORMATS.get(fmt_name)
    assert fmt is not None
    try:
        records = list(read_records(fmt, data, limits=InputLimits()))
    except DOCUMENTED[fmt_name] as exc:
        return exc
    for record in records:
        assert isinstance(record, DecodedRecord)
        assert isinstance(record.position, str) and record.position
        assert all(isinstance(e, ValidationError) for e in record.errors)
        assert record.envelope is not None or record.errors, record
    return records


def _examples(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )


@pytest.mark.parametrize("fmt_name", FORMATS.names())
@_examples(BYTES_EXAMPLES)
@given(data=st.binary(max_size=4_000))
def test_arbitrary_bytes_are_records_or_a_documented_refusal(fmt_name: str, data: bytes) -> None:
    read_all(fmt_name, data)


@pytest.mark.parametrize("fmt_name", FORMATS.names())
@_examples(DAMAGED_EXAMPLES)
@given(data=st.data())
def test_damaged_uploads_are_records_or_a_documented_refusal(
    fmt_name: str, data: st.DataObject
) -> None:
    upload = data.draw(strategies.hostile_upload(fmt_name, HOSPITAL, CITY))
    read_all(fmt_name, upload)


@pytest.mark.parametrize("fmt_name", ["json", "ndjson"])
@_examples(200)
@given(documents=st.lists(strategies.hostile_document(HOSPITAL, CITY), min_size=1, max_size=3))
def test_every_json_list_is_one_record_at_its_position(fmt_name: str, documents: list[Any]) -> None:
    """Undamaged bytes of hostile lists: one record per list, none lost or invented."""
    if fmt_name == "ndjson":
        body = b"\n".join(corpus.encode(d).replace(b"\n", b" ") for d in documents)
    else:
        body = corpus.encode({"records": documents})
    records = read_all(fmt_name, body)
    assert isinstance(records, list)
    if fmt_name == "ndjson":
        assert [r.position for r in records] == [f"line {i}" for i in range(1, len(documents) + 1)]
    elif records[0].position.startswith("records["):  # not refused as a whole
        assert [r.position for r in records] == [f"records[{i}]" for i in range(len(documents))]
    else:  # unreadable as a batch (raw JSON spliced into a key): one record says why
        assert len(records) == 1 and records[0].errors, records


# -- unreadable workbooks this fuzzing found raising openpyxl's or zlib's own errors ----------


def _workbook() -> bytes:
    header, rows = corpus.flat([corpus.settlement(1, HOSPITAL, CITY)])
    return corpus.xlsx_bytes(header, rows)


def _with_parts(replace: dict[str, bytes] | None = None, drop: tuple[str, ...] = ()) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(_workbook()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            if name not in drop:
                target.writestr(name, (replace or {}).get(name, source.read(name)))
    return out.getvalue()


def _workbook_xml(old: bytes, new: bytes) -> bytes:
    xml = zipfile.ZipFile(io.BytesIO(_workbook())).read("xl/workbook.xml")
    assert old in xml
    return _with_parts({"xl/workbook.xml": xml.replace(old, new, 1)})


def _bad_deflate() -> bytes:
    """The first member's deflate stream with its first byte flipped (CRC unchanged)."""
    data = bytearray(_workbook())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()[0]
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start] ^= 0xFF
    return bytes(data)


_UNREADABLE = {
    # adapters/_xlsx.py open_workbook: workbook.worksheets[0] of a workbook without sheets
    "IndexError: a workbook without sheets": lambda: _workbook_xml(
        b'<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets>', b"<sheets/>"
    ),
    # openpyxl reads a relationship part the package does not have
    "KeyError: no xl/_rels/workbook.xml.rels": lambda: _with_parts(
        drop=("xl/_rels/workbook.xml.rels",)
    ),
    # openpyxl parses workbook.xml with ElementTree, which looks the encoding up
    "LookupError: an unknown XML encoding": lambda: _workbook_xml(
        b'encoding="UTF-8"', b'encoding="hTF-8"'
    ),
    # openpyxl passes workbook.xml's attributes as keyword arguments
    "TypeError: an unknown attribute": lambda: _workbook_xml(b'xmlns="', b'mlns="'),
    # ElementTree's ParseError is a SyntaxError, not a ValueError
    "ParseError: workbook.xml not XML": lambda: _workbook_xml(b"</workbook>", b"</work"),
    # adapters/_xlsx.py _shared_string_parts reads [Content_Types].xml before the bounded
    # inflation that turns zlib.error into BadZipFile
    "zlib.error: bad deflate data": _bad_deflate,
}


@pytest.mark.parametrize("case", list(_UNREADABLE))
def test_an_unreadable_workbook_raises_only_documented_errors(case: str) -> None:
    fmt = FORMATS.get("xlsx")
    assert fmt is not None
    with pytest.raises(DOCUMENTED["xlsx"]):
        list(read_records(fmt, _UNREADABLE[case](), limits=InputLimits()))
