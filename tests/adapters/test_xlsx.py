"""The XLSX reader's own parts (`adapters/_xlsx.py`); its limits are in test_limits.py."""

from __future__ import annotations

import openpyxl
import pytest
from openpyxl.worksheet._reader import WorkSheetParser

from adapters import InputLimits
from adapters._xlsx import open_workbook
from tests.adapters import bombs

# Inline strings in every shape a writer may use: plain, empty, rich runs, phonetic runs
# (never part of the value), preserved blanks, one with a cached formula, mixed with the other
# cell types, with and without cell references.
_CELLS = (
    b'<row r="2">'
    b'<c r="A2" t="inlineStr"><is><t>plain</t></is></c>'
    b'<c r="B2" t="inlineStr"><is><t xml:space="preserve">  padded  </t></is></c>'
    b'<c r="C2" t="inlineStr"><is/></c>'
    b'<c r="D2" t="inlineStr"><is><t/></is></c>'
    b'<c r="E2" t="inlineStr"><is><r><rPr><b/></rPr><t>rich</t></r>'
    b'<r><t xml:space="preserve"> run</t></r></is></c>'
    b'<c r="F2" t="inlineStr"><is><t>\xe5\xbc\xa0</t><rPh sb="0" eb="1"><t>zhang</t></rPh></is></c>'
    b'<c r="G2" t="inlineStr"><f>A2</f><is><t>cached</t></is></c>'
    b'<c r="H2"><v>12.5</v></c>'
    b'<c r="I2" t="b"><v>1</v></c>'
    b'<c r="J2" t="s"><v>0</v></c>'
    b'<c r="K2" t="str"><v>formula text</v></c>'
    b"</row>"
    b'<row r="4"><c t="inlineStr"><is><t>no ref</t></is></c>'
    b'<c t="inlineStr"><is><t>next</t></is></c></row>'
    b'<row r="5"><c r="C5" t="inlineStr"><is><r><t>only</t></r><r><t/></r></is></c></row>'
)


def _rows_with(parser: type[WorkSheetParser] | None, data: bytes) -> list[tuple[object, ...]]:
    workbook, sheet = open_workbook(data, InputLimits())
    try:
        if parser is None:
            return list(sheet.iter_rows(values_only=True))
        import openpyxl.worksheet._read_only as read_only

        ours = read_only.WorkSheetParser
        read_only.WorkSheetParser = parser
        try:
            return list(sheet.iter_rows(values_only=True))
        finally:
            read_only.WorkSheetParser = ours
    finally:
        workbook.close()


def test_inline_strings_read_as_openpyxl_reads_them() -> None:
    """The reader's inline-string parse (openpyxl's builds a rich-text object model per cell:
    most of the time of reading a sheet written by openpyxl or a script) gives openpyxl's
    values, cell for cell."""
    data = bombs.workbook_with(
        bombs.plain(bombs.SHEET, bombs._SHEET_HEAD + bombs._HEADER_ROW + _CELLS + bombs._SHEET_TAIL)
    )
    stock = _rows_with(WorkSheetParser, data)
    assert stock[1][:7] == ("plain", "  padded  ", "", "", "rich run", "张", "cached")
    assert _rows_with(None, data) == stock


@pytest.mark.parametrize("rows", [1, 50])
def test_a_workbook_openpyxl_writes_reads_back_the_same(rows: int) -> None:
    import io

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["a", "b", "c"])
    for i in range(rows):
        sheet.append([f"text {i}", i, " spaced "])
    out = io.BytesIO()
    book.save(out)
    assert _rows_with(None, out.getvalue()) == _rows_with(WorkSheetParser, out.getvalue())
