"""Hostile uploads (issue 11), built small and fast: XLSX bombs whose zip members are written
by hand from a raw deflate stream in which one compressed block is repeated (so a gigabyte
of inflated text costs a megabyte and a CRC pass, not a gigabyte of compression), and JSON
nested far deeper than any parser's recursion limit.

Every XLSX here is a real workbook around its bomb: openpyxl's own parts, with a header
cell and a shared string, so a reader that does not check limits goes on to parse the bomb.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec
from openpyxl import Workbook

from tests.builders import golden

SHEET = "xl/worksheets/sheet1.xml"
STRINGS = "xl/sharedStrings.xml"
_MAIN = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_SHEET_HEAD = b'<?xml version="1.0" encoding="UTF-8"?><worksheet ' + _MAIN + b"><sheetData>"
_SHEET_TAIL = b"</sheetData></worksheet>"
_HEADER_ROW = b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>'


@dataclass(frozen=True)
class Member:
    """A zip member as written: raw deflate data, its CRC and true size, and what the zip
    declares (a lie when `declared` differs from `size`)."""

    name: str
    compressed: bytes
    crc: int
    size: int
    declared: int


def _segment(data: bytes, final: bool) -> bytes:
    """Raw deflate of `data` on a fresh dictionary, ending byte-aligned: segments concatenate."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)


def repeated(name: str, head: bytes, chunk: bytes, times: int, tail: bytes) -> Member:
    """`head + chunk * times + tail`, compressing `chunk` once."""
    block = _segment(chunk, final=False)
    crc = zlib.crc32(head)
    for _ in range(times):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(tail, crc)
    data = _segment(head, final=False) + block * times + _segment(tail, final=True)
    size = len(head) + len(chunk) * times + len(tail)
    return Member(name, data, crc, size, size)


def plain(name: str, data: bytes) -> Member:
    return Member(name, _segment(data, final=True), zlib.crc32(data), len(data), len(data))


def lying(member: Member, declared: int) -> Member:
    """The same member declaring another inflated size (CRC of the true content)."""
    return Member(member.name, member.compressed, member.crc, member.size, declared)


def zip_of(members: list[Member]) -> bytes:
    out = bytearray()
    central = bytearray()
    for m in members:
        offset = len(out)
        name = m.name.encode()
        sizes = (m.crc, len(m.compressed), m.declared)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, *sizes, len(name), 0)
        out += name + m.compressed
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, *sizes, len(name), 0, 0, 0, 0,
            0, offset,
        )  # fmt: skip
        central += name
    start = len(out)
    count = len(members)
    out += central
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), start, 0)
    return bytes(out)


_STRINGS_TYPE = b"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def _strings(head_text: bytes) -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><sst ' + _MAIN + b' count="1" uniqueCount="1">'
        b"<si><t>" + head_text
    )


@cache
def _base_parts() -> dict[str, bytes]:
    """openpyxl's parts of a one-sheet workbook, with a shared-string table (declared in
    [Content_Types].xml, where openpyxl looks for it) whose string 0 is A1's header."""
    workbook = Workbook()
    out = io.BytesIO()
    workbook.save(out)
    archive = zipfile.ZipFile(out)
    parts = {name: archive.read(name) for name in archive.namelist()}
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        b"</Types>", b'<Override PartName="/' + STRINGS.encode() + b'" ContentType="'
        + _STRINGS_TYPE + b'" /></Types>',
    )  # fmt: skip
    parts[STRINGS] = _strings(b"setl_id") + b"</t></si></sst>"
    parts[SHEET] = _SHEET_HEAD + _HEADER_ROW + _SHEET_TAIL
    return parts


def workbook_with(*replaced: Member) -> bytes:
    """The base workbook with some parts replaced (or added)."""
    names = {m.name for m in replaced}
    members = [plain(n, d) for n, d in _base_parts().items() if n not in names]
    return zip_of([*members, *replaced])


# -- the XLSX bombs -------------------------------------------------------------------------


def empty_rows(rows: int = 10_000_000) -> bytes:
    """A header, then `rows` empty `<row/>`s (60 MB of XML for ten million, ~60 KB zipped)."""
    per_chunk = 100_000
    sheet = repeated(
        SHEET, _SHEET_HEAD + _HEADER_ROW, b"<row/>" * per_chunk, rows // per_chunk, _SHEET_TAIL
    )
    return workbook_with(sheet)


def far_row(number: int = 10_000_000) -> bytes:
    """One empty row numbered `number`: openpyxl fills in every row before it."""
    body = _SHEET_HEAD + _HEADER_ROW + f'<row r="{number}"/>'.encode() + _SHEET_TAIL
    return workbook_with(plain(SHEET, body))


def many_rows(rows: int) -> bytes:
    """A header and `rows` rows of one numbered cell each (packs like real data)."""
    body = b"".join(
        f'<row r="{i}"><c r="A{i}"><v>{i}</v></c></row>'.encode() for i in range(2, rows + 2)
    )
    return workbook_with(plain(SHEET, _SHEET_HEAD + _HEADER_ROW + body + _SHEET_TAIL))


def wide_row(cells: int = 1_000_000) -> bytes:
    """A header, then one row of `cells` cells (4 MB of XML for a million, a few KB zipped)."""
    head = _SHEET_HEAD + _HEADER_ROW + b'<row r="2">'
    per_chunk = 10_000
    times = max(1, cells // per_chunk)
    chunk = b"<c/>" * min(cells, per_chunk)
    return workbook_with(repeated(SHEET, head, chunk, times, b"</row>" + _SHEET_TAIL))


def wide_dimension() -> bytes:
    """A tiny sheet declaring the whole grid as its used range (openpyxl pads every row)."""
    body = _SHEET_HEAD.replace(
        b"<sheetData>", b'<dimension ref="A1:XFD1048576"/><sheetData>'
    ) + _HEADER_ROW + _SHEET_TAIL  # fmt: skip
    return workbook_with(plain(SHEET, body))


@cache
def huge_string_member(size: int = 1 << 30) -> Member:
    """A shared-string table whose one string is `size` letters (1 GiB: a ~1 MB member)."""
    per_chunk = 1 << 20
    return repeated(STRINGS, _strings(b""), b"a" * per_chunk, size // per_chunk, b"</t></si></sst>")


def huge_shared_string(size: int = 1 << 30) -> bytes:
    return workbook_with(huge_string_member(size))


def long_shared_string(chars: int = 100_000) -> bytes:
    """A shared string longer than a cell may hold, in a small table."""
    return workbook_with(plain(STRINGS, _strings(b"a" * chars) + b"</t></si></sst>"))


def lying_size(size: int = 1 << 30, declared: int = 1_000) -> bytes:
    """The gigabyte shared string declaring `declared` bytes in the central directory and
    the local header: only inflating it tells."""
    return workbook_with(lying(huge_string_member(size), declared))


def doctype() -> bytes:
    """A sheet with a DTD (entity expansion): no OOXML part has one."""
    body = (
        b'<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">]><worksheet '
        + _MAIN
        + b"><sheetData>"
        + _HEADER_ROW
        + b"</sheetData></worksheet>"
    )
    return workbook_with(plain(SHEET, body))


def many_members(count: int = 5_000) -> bytes:
    return workbook_with(*(plain(f"junk/{i}.xml", b"<x/>") for i in range(count)))


XLSX_BOMBS = {
    # name: (builder, the limit it passes first with the default InputLimits)
    "empty rows": (empty_rows, "compression ratio"),
    "far row": (far_row, "rows"),
    "wide row": (wide_row, "compression ratio"),
    "wide dimension": (wide_dimension, "rows"),
    "huge shared string": (huge_shared_string, "shared strings bytes"),
    "long shared string": (long_shared_string, "string length"),
    "lying size": (lying_size, "decompressed bytes"),
    "many members": (many_members, "zip members"),
}


# -- JSON -----------------------------------------------------------------------------------


def deep_array(levels: int = 100_000) -> bytes:
    return b"[" * levels + b"]" * levels


def deep_object(levels: int = 100_000) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def deep_envelope(levels: int = 100_000, setl_id: str = "DEEP0001") -> bytes:
    """A settlement list whose one unknown field holds `levels` of nesting."""
    doc: dict[str, Any] = golden()
    doc["input"]["setlinfo"]["setl_id"] = setl_id
    doc["input"]["setlinfo"]["extra"] = "@DEEP@"
    return msgspec.json.encode(doc).replace(b'"@DEEP@"', deep_array(levels))


def deep_ndjson(levels: int = 100_000, good: list[dict[str, Any]] | None = None) -> bytes:
    """Good lines around one deep line (line 2)."""
    lines = [msgspec.json.encode(d) for d in (good or [golden(), golden()])]
    return lines[0] + b"\n" + deep_envelope(levels) + b"\n" + b"\n".join(lines[1:]) + b"\n"
