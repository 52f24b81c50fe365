"""Reading NHSA code-table files and the local store of imported tables."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

from adapters._textenc import decode_text
from contracts import CodeTables, tables_from_manifest

__all__ = ["MANIFEST_NAME", "load_code_store", "read_table_rows"]

MANIFEST_NAME = "manifest.toml"


def read_table_rows(path: str | PathLike[str]) -> Iterator[list[object]]:
    """Rows of an NHSA spreadsheet (.xlsx, first sheet) or CSV (UTF-8 or GB18030)."""
    p = Path(path)
    if p.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook  # type: ignore[import-untyped]

        workbook = load_workbook(p, read_only=True, data_only=True)
        try:
            for row in workbook.worksheets[0].iter_rows(values_only=True):
                yield list(row)
        finally:
            workbook.close()
        return
    data = p.read_bytes()
    text = decode_text(data)  # NHSA CSVs are often saved from Excel in GBK
    for row in csv.reader(io.StringIO(text)):
        yield list[object](row)


def load_code_store(directory: str | PathLike[str] | None) -> CodeTables:
    """The bundled tables plus every table imported into `directory` (by `dipgw codes
    import`); just the bundled ones when the directory has no manifest yet."""
    bundled = CodeTables.load_bundled()
    if directory is None:
        return bundled
    base = Path(directory)
    manifest = base / MANIFEST_NAME
    if not manifest.exists():
        return bundled

    def read(name: str) -> str:
        return (base / name).read_text(encoding="utf-8")

    diag, oprn = tables_from_manifest(manifest.read_text(encoding="utf-8"), read)
    return bundled.with_tables(diag, oprn)
