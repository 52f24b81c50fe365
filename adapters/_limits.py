"""Hard limits on what an upload may make the readers do: the bound on hostile input.

A file's size says little about the work it asks for: a 92 KB XLSX can hold ten million
rows, 1 MB a gigabyte of text, 200 KB of JSON a hundred thousand levels of nesting. The
readers check these limits before parsing (the zip's central directory, the sheet's declared
dimension) and while parsing (rows, columns, cells, text, bytes actually inflated), and stop
with `LimitExceeded` naming the limit, so the work an upload can ask for is bounded whatever
its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import ContractError

__all__ = ["JSON_MAX_DEPTH", "LIMIT_NAMES", "InputLimits", "JsonTooDeep", "LimitExceeded"]

MiB = 1024 * 1024

JSON_MAX_DEPTH = 512
"""JSON nesting the readers always read. A settlement list nests 4 levels; msgspec stops at
the interpreter's recursion limit (1000 frames less the caller's stack), and a document it
cannot read for that is refused as nested too deeply (`JsonTooDeep`), never an internal error.
Checking the depth exactly would cost every record a pass over its bytes on the hot path;
nesting up to the parser's limit does no harm (unknown keys are dropped, the masked copy is
depth-capped), so the parser's own limit is the check and this is what is promised."""


@dataclass(frozen=True)
class InputLimits:
    """What one spreadsheet upload (CSV or XLSX) may hold. The defaults fit the largest
    legitimate export (a batch of 1,000 lists, 238 national columns) with room to spare."""

    rows: int = 10_000
    """Rows of the sheet, blank ones included (the last row's number)."""
    columns: int = 1_000
    """Columns of a row (the last cell's column)."""
    cells: int = 300_000
    """Cells of the sheet; also the area (rows × columns) an XLSX dimension may declare or
    its rows be padded to. openpyxl reads 30–110 µs a cell: 300,000 is 10–30 s of a file
    worker, and the largest legitimate export (1,000 lists × 238 columns) fits."""
    shared_strings_bytes: int = 32 * MiB
    """XLSX: the shared-string table (xl/sharedStrings.xml) inflated."""
    unzipped_bytes: int = 64 * MiB
    """XLSX: every member of the zip inflated, together (declared and actually inflated)."""
    string_chars: int = 32_767
    """Characters of one cell's text (Excel's own limit) or shared string."""
    zip_members: int = 1_000
    compression_ratio: int = 200
    """Inflated ÷ compressed size of a zip member larger than 1 MiB (XML packs 5–20×)."""

    def __post_init__(self) -> None:
        for name in ("rows", "columns", "cells", "shared_strings_bytes", "unzipped_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"input limit {name} must be at least 1")


#: limit -> its Chinese name (the refusal's message names the limit in both languages)
LIMIT_NAMES = {
    "rows": "行数",
    "columns": "列数",
    "cells": "单元格数",
    "string length": "单元格文本长度",
    "XML elements": "XML 元素数",
    "shared strings": "共享字符串数",
    "shared strings bytes": "共享字符串表大小（字节）",
    "decompressed bytes": "解压后大小（字节）",
    "zip members": "压缩包文件数",
    "compression ratio": "压缩比",
    "memory": "内存（MiB）",
    "parse seconds": "解析时间（秒）",
    "JSON depth": "JSON 嵌套层数",
}

#: limits of the file as a package (answered FILE_TOO_LARGE); the others are the sheet's
FILE_LIMITS = frozenset(
    {
        "shared strings bytes",
        "decompressed bytes",
        "zip members",
        "compression ratio",
        "memory",
        "parse seconds",
    }
)


class LimitExceeded(ContractError, ValueError):
    """An upload asks for more than a limit allows: `limit` (a key of `LIMIT_NAMES`), the
    `maximum` allowed and what was `found` (e.g. `row 10001`, `more than 64 MiB`)."""

    def __init__(self, limit: str, maximum: int, found: str, where: str = "") -> None:
        self.limit = limit
        self.maximum = maximum
        self.found = found
        self.where = where
        at = f" ({where})" if where else ""
        super().__init__(f"{limit} limit {maximum} exceeded: {found}{at}")

    @property
    def limit_cn(self) -> str:
        return LIMIT_NAMES.get(self.limit, self.limit)

    @property
    def of_file(self) -> bool:
        """A limit of the package (zip, memory) rather than of the sheet's content."""
        return self.limit in FILE_LIMITS

    def __reduce__(self) -> tuple[object, ...]:  # crosses the file workers' process boundary
        return (type(self), (self.limit, self.maximum, self.found, self.where))


class JsonTooDeep(LimitExceeded):
    """JSON nested deeper than the parser reads (see `JSON_MAX_DEPTH`)."""

    def __init__(
        self,
        limit: str = "JSON depth",
        maximum: int = JSON_MAX_DEPTH,
        found: str = "",
        where: str = "",
    ) -> None:
        super().__init__(limit, maximum, found or f"more than {maximum} levels", where)
