"""XLSX read within `InputLimits`: the package checked before openpyxl parses anything.

openpyxl trusts its input: a row is materialised whole before it is handed over (a row of a
million cells is a million dicts), read-only mode keeps every parsed row element, the
shared-string table is read into memory at once and missing rows are filled in up to the
sheet's declared dimension. So nothing reaches it unchecked:

1. the zip's central directory: member count, each member's declared inflated size, their
   total, the shared-string table's size and the compression ratio;
2. every member inflated, with a bounded stream, counting the bytes actually produced (a
   member that inflates past its declared size, or past the total, is refused there);
3. the shared-string table scanned (expat, streaming): count and longest string;
4. the sheet to be read scanned: declared dimension, rows, columns, cells (and the area
   rows are padded to), text length, XML elements — stopping at the first limit passed;
5. openpyxl reads the sheet, and the caller still counts rows, columns and cells.

Every check stops as soon as a limit is passed, so refusing a bomb costs about what reading
a file at the limits costs, whatever the bomb's size. DTDs are refused (no OOXML part has one).
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import IO, Any
from xml.parsers import expat

from adapters._limits import InputLimits, LimitExceeded, MiB

__all__ = ["check_package", "open_workbook", "scan_shared_strings", "scan_sheet"]

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # the fixed 30 bytes of a zip local file header
_END_RECORD = struct.Struct("<4s4H2LH")  # end of central directory, without its comment
_ENTRY_BYTES = 512  # a central directory entry: 46 bytes and a name (xl/worksheets/…)
_CHUNK = 1 << 16
_RATIO_FLOOR = 1 * MiB  # small members may pack well (a theme, a run of empty cells)
_SHARED_STRINGS_TYPE = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
)
_CELL_REF = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,9})$")  # A1 .. XFD1048576 and beyond


def _mib(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n} bytes"


# -- 1 + 2: the package ---------------------------------------------------------------------


def check_package(data: bytes, limits: InputLimits) -> zipfile.ZipFile:
    """The zip, after its central directory and every member's inflated bytes passed the
    limits. Raises `LimitExceeded`, or `zipfile.BadZipFile`/`ValueError` if unreadable."""
    _check_directory(data, limits)
    archive = zipfile.ZipFile(io.BytesIO(data))
    members = archive.infolist()
    if len(members) > limits.zip_members:
        raise LimitExceeded("zip members", limits.zip_members, f"{len(members)} members")
    for info in members:
        if info.flag_bits & 0x1:
            raise ValueError(f"{info.filename}: encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(f"{info.filename}: compression method {info.compress_type}")
    for part in _shared_string_parts(archive):
        size = archive.getinfo(part).file_size
        if size > limits.shared_strings_bytes:
            raise LimitExceeded(
                "shared strings bytes", limits.shared_strings_bytes, _mib(size), part
            )
    declared = 0
    for info in members:
        declared += info.file_size
        if declared > limits.unzipped_bytes:
            raise LimitExceeded(
                "decompressed bytes",
                limits.unzipped_bytes,
                f"{_mib(declared)} declared",
                info.filename,
            )
        if info.file_size > _RATIO_FLOOR and info.file_size > limits.compression_ratio * max(
            info.compress_size, 1
        ):
            ratio = info.file_size // max(info.compress_size, 1)
            raise LimitExceeded(
                "compression ratio", limits.compression_ratio, f"{ratio}:1", info.filename
            )
    budget = limits.unzipped_bytes
    for info in members:
        budget -= _inflate_bounded(data, info, budget)
    return archive


def _check_directory(data: bytes, limits: InputLimits) -> None:
    """The end record's entry count and directory size, before zipfile reads every entry of
    the directory (an entry per 46 bytes: ~350,000 in a 16 MB upload)."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - _END_RECORD.size - 0xFFFF))
    if at < 0 or at + _END_RECORD.size > len(data):
        raise zipfile.BadZipFile("not a zip file (no end of central directory)")
    entries, size = _END_RECORD.unpack_from(data, at)[4:6]
    if entries > limits.zip_members:  # (0xFFFF, a zip64 archive, too)
        raise LimitExceeded("zip members", limits.zip_members, f"{entries} declared")
    if size > _ENTRY_BYTES * limits.zip_members:
        raise LimitExceeded("zip members", limits.zip_members, f"a {_mib(size)} central directory")


def _shared_string_parts(archive: zipfile.ZipFile) -> list[str]:
    """The parts [Content_Types].xml declares as shared-string tables (openpyxl reads the
    one it finds there), and any member named like one."""
    names = {n for n in archive.namelist() if n.lower().endswith("sharedstrings.xml")}
    try:
        manifest = archive.getinfo("[Content_Types].xml")
    except KeyError:
        return sorted(names)
    if manifest.file_size > MiB:  # a real one is a few KB; openpyxl parses it whole
        raise LimitExceeded("decompressed bytes", MiB, _mib(manifest.file_size), manifest.filename)
    found: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if name.rpartition(" ")[2] == "Override" and attrs.get("ContentType") == (
            _SHARED_STRINGS_TYPE
        ):
            found.append(attrs.get("PartName", "").lstrip("/"))

    parser = _parser(start)
    with archive.open(manifest) as src:
        _feed(parser, src)
    return sorted(names | (set(found) & set(archive.namelist())))


def _inflate_bounded(data: bytes, info: zipfile.ZipInfo, budget: int) -> int:
    """Inflate one member, discarding the bytes: how many it really holds. Refused as soon as
    it passes its declared size (a zip that lies about it) or the budget left for the file."""
    offset = info.header_offset
    try:
        header = _LOCAL_HEADER.unpack_from(data, offset)
    except struct.error:
        raise zipfile.BadZipFile(f"{info.filename}: no local header") from None
    if header[0] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"{info.filename}: bad local header")
    start = offset + _LOCAL_HEADER.size + header[9] + header[10]
    compressed = memoryview(data)[start : start + info.compress_size]
    if len(compressed) < info.compress_size:
        raise zipfile.BadZipFile(f"{info.filename}: truncated")
    cap = min(info.file_size, budget)
    if info.compress_type == zipfile.ZIP_STORED:
        produced = len(compressed)
    else:
        produced = _inflated(compressed, cap)
    if produced > info.file_size:
        raise LimitExceeded(
            "decompressed bytes",
            info.file_size,
            f"inflates past the {info.file_size} bytes it declares",
            info.filename,
        )
    if produced > budget:
        raise LimitExceeded(
            "decompressed bytes", budget, f"more than {_mib(budget)} left", info.filename
        )
    if produced < info.file_size:
        raise zipfile.BadZipFile(f"{info.filename}: shorter than it declares")
    return produced


def _inflated(compressed: memoryview, cap: int) -> int:
    """Bytes a raw deflate stream inflates to, counted a chunk at a time; stops past `cap`."""
    produced = 0
    inflater = zlib.decompressobj(-15)
    position = 0
    try:
        while not inflater.eof:
            if inflater.unconsumed_tail:
                piece = inflater.decompress(inflater.unconsumed_tail, _CHUNK)
            elif position < len(compressed):
                piece = inflater.decompress(compressed[position : position + _CHUNK], _CHUNK)
                position += _CHUNK
            else:
                piece = inflater.decompress(b"", _CHUNK)  # output still pending
                if not piece:
                    break
            produced += len(piece)
            if produced > cap:
                break
    except zlib.error as exc:
        raise zipfile.BadZipFile(f"bad deflate data: {exc}") from None
    return produced


# -- 3 + 4: streaming scans -------------------------------------------------------------------


def _refuse_dtd(*_: object) -> None:
    raise ValueError("a DTD in a spreadsheet part")


def _parser(start: Any, end: Any = None, text: Any = None) -> Any:
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.StartElementHandler = start
    if end is not None:
        parser.EndElementHandler = end
    if text is not None:
        parser.CharacterDataHandler = text
    return parser


def _feed(parser: Any, src: IO[bytes]) -> None:
    try:
        while chunk := src.read(_CHUNK):
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    except zlib.error as exc:  # a member read before its bounded inflation ([Content_Types])
        raise zipfile.BadZipFile(f"bad deflate data: {exc}") from None


def _local(name: str) -> str:
    return name.rpartition(" ")[2]


def scan_shared_strings(src: IO[bytes], limits: InputLimits, where: str = "") -> int:
    """The number of shared strings, once the table passed the limits: at most `cells`
    strings, none longer than `string_chars`, at most 4 elements per cell's worth."""
    count = 0
    elements = 0
    length = 0
    element_budget = 4 * limits.cells + 10_000

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal count, elements, length
        elements += 1
        if elements > element_budget:
            raise LimitExceeded("XML elements", element_budget, "more", where)
        if _local(name) == "si":
            count += 1
            length = 0
            if count > limits.cells:
                raise LimitExceeded("shared strings", limits.cells, f"more than {count - 1}", where)

    def text(data: str) -> None:
        nonlocal length
        length += len(data)
        if length > limits.string_chars:
            raise LimitExceeded(
                "string length",
                limits.string_chars,
                f"shared string {count} is longer",
                where,
            )

    _feed(_parser(start, text=text), src)
    return count


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - 64
    return number


def _reference(ref: str) -> tuple[int, int] | None:
    """(row, column) of an A1-style reference; None if it is not one."""
    m = _CELL_REF.match(ref.strip())
    if m is None:
        return None
    return int(m.group(2)), _column_number(m.group(1))


def scan_sheet(src: IO[bytes], limits: InputLimits, where: str = "") -> None:
    """Refuse a worksheet part that passes a limit: its declared dimension (rows, columns,
    area), the rows' numbers, the cells' columns, the cells and the area rows are padded to
    when read, the text of a cell, the XML elements."""
    row = 0
    column = 0
    cells = 0
    area = 0
    elements = 0
    length = 0
    element_budget = 4 * limits.cells + 10_000

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal row, column, cells, area, elements, length
        elements += 1
        if elements > element_budget:
            raise LimitExceeded("XML elements", element_budget, "more", where)
        local = _local(name)
        length = 0
        if local == "c":
            ref = _reference(attrs["r"]) if "r" in attrs else None
            column = ref[1] if ref is not None else column + 1
            if column > limits.columns:
                raise LimitExceeded("columns", limits.columns, f"column {column}", where)
            cells += 1
            if cells > limits.cells:
                raise LimitExceeded("cells", limits.cells, f"more than {cells - 1}", where)
        elif local == "row":
            area += column  # the row before: read padded up to its last cell
            row = _row_number(attrs.get("r"), row)
            column = 0
            if row > limits.rows:
                raise LimitExceeded("rows", limits.rows, f"row {row}", where)
            if area > limits.cells:
                raise LimitExceeded("cells", limits.cells, f"more than {area} with padding", where)
        elif local == "dimension":
            _check_dimension(attrs.get("ref", ""), limits, where)

    def text(data: str) -> None:
        nonlocal length
        length += len(data)
        if length > limits.string_chars:
            raise LimitExceeded(
                "string length", limits.string_chars, f"a cell of row {row} is longer", where
            )

    _feed(_parser(start, text=text), src)
    if area + column > limits.cells:
        raise LimitExceeded("cells", limits.cells, f"{area + column} with padding", where)


def _row_number(value: str | None, previous: int) -> int:
    if value is None:
        return previous + 1
    if value.isascii() and value.isdigit():
        return int(value) if len(value) <= 9 else 10**9  # past any limit, without int("9"*5000)
    try:
        return int(float(value))  # openpyxl reads "3.0" as row 3 too
    except (ValueError, OverflowError):
        raise ValueError(f"row number {value[:20]!r}") from None


def _check_dimension(ref: str, limits: InputLimits, where: str) -> None:
    """The sheet's declared used range: openpyxl pads every row to its width and fills in
    missing rows up to its height."""
    last = _reference(ref.rpartition(":")[2]) if ref else None
    if last is None:
        return
    rows, columns = last
    if rows > limits.rows:
        raise LimitExceeded("rows", limits.rows, f"{rows} by the sheet's dimension {ref}", where)
    if columns > limits.columns:
        raise LimitExceeded(
            "columns", limits.columns, f"{columns} by the sheet's dimension {ref}", where
        )
    if rows * columns > limits.cells:
        raise LimitExceeded(
            "cells", limits.cells, f"{rows * columns} by the sheet's dimension {ref}", where
        )


# -- 5: openpyxl over the checked package ---------------------------------------------------

#: what passes through as it is: limits, and the file workers' memory ceiling and deadline
_PASS_THROUGH = (ValueError, zipfile.BadZipFile, MemoryError, TimeoutError, RecursionError)


@contextmanager
def _unreadable() -> Iterator[None]:
    """Whatever openpyxl (or ElementTree under it) raises for a workbook it cannot read — a
    KeyError for a missing part, a TypeError for an unknown attribute, a ParseError, an
    IndexError for a workbook without sheets, … — raised as the one documented ValueError
    (`LimitExceeded` is one, and stays what it is)."""
    try:
        yield
    except _PASS_THROUGH:
        raise
    except Exception as exc:
        raise ValueError(f"unreadable workbook ({type(exc).__name__}: {exc})") from exc


def open_workbook(data: bytes, limits: InputLimits, sheet: str | None = None) -> tuple[Any, Any]:
    """(workbook, worksheet) in openpyxl's read-only mode, once the package, the shared-string
    table and the worksheet passed the limits. The caller closes the workbook. Raises
    `LimitExceeded`, or `zipfile.BadZipFile` / `ValueError` for an unreadable workbook."""
    with _unreadable():
        return _open_workbook(data, limits, sheet)


@cache
def _use_fast_inline_strings() -> None:
    """openpyxl builds a rich-text object model for every inline-string cell (what openpyxl
    itself, and most scripts, write: a 1,000-list export took seconds in a file worker);
    the plain text is all a settlement list needs. The read-only worksheet names its parser
    class at module level, so that is where ours goes: the same values, cell for cell
    (tests/adapters/test_xlsx.py)."""
    import openpyxl.worksheet._read_only as read_only  # type: ignore[import-untyped]
    from openpyxl.utils.cell import coordinate_to_tuple  # type: ignore[import-untyped]
    from openpyxl.worksheet._reader import (  # type: ignore[import-untyped]
        FORMULA_TAG,
        INLINE_STRING,
        WorkSheetParser,
    )
    from openpyxl.xml.constants import SHEET_MAIN_NS  # type: ignore[import-untyped]

    text_tag, run_tag = f"{{{SHEET_MAIN_NS}}}t", f"{{{SHEET_MAIN_NS}}}r"

    class InlineTextParser(WorkSheetParser):  # type: ignore[misc]
        def parse_cell(self, element: Any) -> dict[str, Any]:
            if (
                element.get("t") != "inlineStr"
                or self.rich_text
                or (not self.data_only and element.find(FORMULA_TAG) is not None)
            ):
                return super().parse_cell(element)  # type: ignore[no-any-return]
            coordinate = element.get("r")
            if coordinate:
                row, column = coordinate_to_tuple(coordinate)
                self.col_counter = column
            else:
                self.col_counter += 1
                row, column = self.row_counter, self.col_counter
            style_id = element.get("s", 0)
            child = element.find(INLINE_STRING)
            value, data_type = None, "inlineStr"
            if child is not None:  # openpyxl's `Text.content`: the text and the runs' text
                parts = [] if (plain := child.find(text_tag)) is None else [plain.text or ""]
                for run in child.iterfind(run_tag):
                    if (text := run.find(text_tag)) is not None:
                        parts.append(text.text or "")
                value, data_type = "".join(parts), "s"
            return {
                "row": row,
                "column": column,
                "value": value,
                "data_type": data_type,
                "style_id": int(style_id) if style_id else 0,
            }

    read_only.WorkSheetParser = InlineTextParser


def _open_workbook(data: bytes, limits: InputLimits, sheet: str | None) -> tuple[Any, Any]:
    from openpyxl.reader.excel import ExcelReader  # type: ignore[import-untyped]
    from openpyxl.xml.constants import SHARED_STRINGS

    _use_fast_inline_strings()
    check_package(data, limits).close()
    reader = ExcelReader(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    reader.read_manifest()  # where openpyxl will look for the shared strings
    part = reader.package.find(SHARED_STRINGS)
    if part is not None and part.PartName[1:] in reader.valid_files:
        with reader.archive.open(part.PartName[1:]) as src:
            scan_shared_strings(src, limits, part.PartName[1:])
    reader.read()
    workbook = reader.wb
    try:
        worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
        path = worksheet._worksheet_path
        with workbook._archive.open(path) as src:
            scan_sheet(src, limits, path)
    except BaseException:
        workbook.close()
        raise
    return workbook, worksheet


def bounded_rows(rows: Iterator[tuple[Any, ...]], limits: InputLimits) -> Iterator[tuple[Any, ...]]:
    """openpyxl's rows, counted again while they are read (the scan's second line); what
    openpyxl raises for a sheet it cannot read is a ValueError, as in `open_workbook`."""
    with _unreadable():
        yield from _counted(rows, limits)


def _counted(rows: Iterator[tuple[Any, ...]], limits: InputLimits) -> Iterator[tuple[Any, ...]]:
    cells = 0
    for number, row in enumerate(rows, start=1):
        if number > limits.rows:
            raise LimitExceeded("rows", limits.rows, f"row {number}")
        if len(row) > limits.columns:
            raise LimitExceeded("columns", limits.columns, f"{len(row)} in row {number}")
        cells += len(row)
        if cells > limits.cells:
            raise LimitExceeded("cells", limits.cells, f"more than {cells - len(row)}")
        yield row
