"""CSV and XLSX exports: one row per settlement list, columns mapped onto document paths.

A column mapping is a dict header -> path. Paths are the error-path convention: envelope
fields bare (`fixmedins_code`), `setlinfo.<field>` (or the bare setlinfo field name),
`<node>[i].<field>` for list entries (0-based). Without a mapping the headers themselves are
read as paths; `chinese_mapping()` maps the national Chinese field names. Empty cells are
absent values; list entries are packed in index order (empty slots dropped).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, time
from os import PathLike
from pathlib import Path
from typing import IO, Any, cast

from adapters._limits import InputLimits, LimitExceeded
from adapters._result import DecodedRecord, default_validator
from contracts import Validator, fields_of

__all__ = [
    "chinese_mapping",
    "document_to_row",
    "iter_csv",
    "iter_rows",
    "iter_xlsx",
    "row_to_document",
]

# A list entry's column: an index of ASCII digits, at most 999 (no list holds more)
_LIST_PATH = re.compile(r"(?P<node>[a-z]+)\[(?P<index>[0-9]{1,3})\]\.(?P<field>[a-z0-9_]+)\Z")
_LIST_NODES = ("diseinfo", "oprninfo", "icuinfo", "bldinfo", "opspdiseinfo", "payinfo", "iteminfo")


def _plain_paths() -> dict[str, str]:
    out = {f"setlinfo.{s.field}": f"setlinfo.{s.field}" for s in fields_of("setlinfo")}
    out.update({s.field: f"setlinfo.{s.field}" for s in fields_of("setlinfo")})
    out.update({s.field: s.field for s in fields_of("envelope")})  # envelope wins a clash
    return out


def chinese_mapping(diagnoses: int = 10, operations: int = 5, icu: int = 3) -> dict[str, str]:
    """Headers in the national Chinese names: `人员姓名` -> `setlinfo.psn_name`, and numbered
    list columns `诊断代码1` -> `diseinfo[0].diag_code`, `手术操作代码1` ->
    `oprninfo[0].oprn_oprt_code`, `重症监护病房类型1` -> `icuinfo[0].scs_cutd_ward_type`."""
    out: dict[str, str] = {s.name_cn: f"setlinfo.{s.field}" for s in fields_of("setlinfo")}
    out.update({s.name_cn: s.field for s in fields_of("envelope")})
    for node, count in (("diseinfo", diagnoses), ("oprninfo", operations), ("icuinfo", icu)):
        for spec in fields_of(node):
            for k in range(1, count + 1):
                out[f"{spec.name_cn}{k}"] = f"{node}[{k - 1}].{spec.field}"
    return out


def _target(header: str, mapping: Mapping[str, str] | None, plain: Mapping[str, str]) -> str:
    path = mapping.get(header, header) if mapping else header
    return plain.get(path, path)


def row_to_document(
    cells: Iterable[tuple[str, str]], defaults: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A document from (path, text) pairs; unknown paths are ignored."""
    doc: dict[str, Any] = dict(defaults or {})
    doc.setdefault("infno", "4101A")
    setlinfo: dict[str, str] = {}
    lists: dict[str, dict[int, dict[str, str]]] = {}
    for path, value in cells:
        if path.startswith("setlinfo."):
            setlinfo[path[len("setlinfo.") :]] = value
            continue
        m = _LIST_PATH.match(path)
        if m is not None and m["node"] in _LIST_NODES:
            lists.setdefault(m["node"], {}).setdefault(int(m["index"]), {})[m["field"]] = value
        elif "." not in path and "[" not in path:
            doc[path] = value
    doc["input"] = {
        "setlinfo": setlinfo,
        **{node: [entries[i] for i in sorted(entries)] for node, entries in lists.items()},
    }
    return doc


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def document_to_row(doc: Mapping[str, Any]) -> dict[str, str]:
    """A document as one row with path headers (the inverse of `row_to_document`)."""
    row = {k: _text(v) for k, v in doc.items() if k != "input" and v is not None}
    body = doc.get("input") or {}
    row.update(
        {f"setlinfo.{k}": _text(v) for k, v in body.get("setlinfo", {}).items() if v is not None}
    )
    for node in _LIST_NODES:
        for i, entry in enumerate(body.get(node) or []):
            row.update({f"{node}[{i}].{k}": _text(v) for k, v in entry.items() if v is not None})
    return row


def iter_rows(
    header: list[str],
    rows: Iterable[tuple[int, list[str] | None]],
    mapping: Mapping[str, str] | None,
    *,
    validator: Validator,
    defaults: Mapping[str, str] | None,
) -> Iterator[DecodedRecord]:
    """Records from (row number, cells) pairs; None cells mean an unreadable row."""
    plain = _plain_paths()
    targets = [_target(h.strip(), mapping, plain) for h in header]
    for number, cells in rows:
        position = f"row {number}"
        if cells is None or len(cells) > len(targets):
            yield DecodedRecord(
                position=position, envelope=None, errors=[validator.decode_failure("DEC_ROW")]
            )
            continue
        pairs = ((targets[i], c) for i, c in enumerate(cells) if c != "")
        envelope, errors = validator.decode_object(row_to_document(pairs, defaults))
        yield DecodedRecord(position=position, envelope=envelope, errors=errors)


def iter_csv(
    source: str | PathLike[str] | IO[str] | IO[bytes],
    mapping: Mapping[str, str] | None = None,
    *,
    validator: Validator | None = None,
    defaults: Mapping[str, str] | None = None,
    limits: InputLimits | None = None,
) -> Iterator[DecodedRecord]:
    """Records of a CSV export (UTF-8, optional BOM; first line = headers). Row numbers
    count the header as row 1, as a spreadsheet shows them.

    Raises `LimitExceeded` past `limits` (rows, blank ones included; columns of a row;
    cells), at the row that passes it."""
    validator = validator or default_validator()
    limits = limits or InputLimits()
    if isinstance(source, (str, PathLike)):
        with Path(source).open(encoding="utf-8-sig", newline="") as fh:
            yield from iter_csv(fh, mapping, validator=validator, defaults=defaults, limits=limits)
        return
    text: IO[str]
    if isinstance(source, io.TextIOBase) or hasattr(source, "encoding"):
        text = cast(IO[str], source)
    else:
        text = io.TextIOWrapper(cast(IO[bytes], source), encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    counted = _Counter(limits)
    counted.row(1, len(header))

    def rows() -> Iterator[tuple[int, list[str] | None]]:
        number = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError):
                number += 1
                counted.row(number, 0)
                yield number, None
                continue
            number += 1
            counted.row(number, len(cells))
            if any(c.strip() for c in cells):
                yield number, [c.strip() for c in cells]

    yield from iter_rows(header, rows(), mapping, validator=validator, defaults=defaults)


class _Counter:
    """Rows, columns and cells of a sheet against its limits, a row at a time."""

    def __init__(self, limits: InputLimits) -> None:
        self.limits = limits
        self.cells = 0

    def row(self, number: int, width: int) -> None:
        limits = self.limits
        if number > limits.rows:
            raise LimitExceeded("rows", limits.rows, f"row {number}")
        if width > limits.columns:
            raise LimitExceeded("columns", limits.columns, f"{width} in row {number}")
        self.cells += width
        if self.cells > limits.cells:
            raise LimitExceeded("cells", limits.cells, f"more than {self.cells - width}")


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        if value.time() == time():
            return value.strftime("%Y-%m-%d")
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def iter_xlsx(
    path: str | PathLike[str] | IO[bytes] | bytes,
    mapping: Mapping[str, str] | None = None,
    *,
    sheet: str | None = None,
    validator: Validator | None = None,
    defaults: Mapping[str, str] | None = None,
    limits: InputLimits | None = None,
) -> Iterator[DecodedRecord]:
    """Records of an XLSX export (first sheet unless `sheet`; first row = headers).

    Excel numbers and dates are turned into national text first (`1.0` -> `1`, a date
    cell -> `yyyy-MM-dd`, a datetime -> `yyyy-MM-dd HH:mm:ss`). An unreadable workbook
    raises (the caller reports it as unreadable input); bad rows are records with errors.

    Nothing is parsed before the package passed `limits` (`adapters._xlsx`: zip members,
    inflated bytes, shared strings, the sheet's dimension, rows, columns, cells, text), and
    the rows are counted again as openpyxl reads them: `LimitExceeded` names the first limit
    passed.
    """
    from adapters._xlsx import bounded_rows, open_workbook

    validator = validator or default_validator()
    limits = limits or InputLimits()
    if isinstance(path, (str, PathLike)):
        data = Path(path).read_bytes()
    elif isinstance(path, bytes):
        data = path
    else:
        data = path.read()  # an upload's bytes
    workbook, ws = open_workbook(data, limits, sheet)
    try:
        rows = bounded_rows(ws.iter_rows(values_only=True), limits)
        first = next(rows, None)
        if first is None:
            return
        header = [_cell_text(v) for v in first]
        while header and header[-1] == "":
            header.pop()

        def cells() -> Iterator[tuple[int, list[str] | None]]:
            for number, row in enumerate(rows, start=2):
                texts = [_cell_text(v) for v in row]
                while texts and texts[-1] == "":
                    texts.pop()
                if texts:
                    yield number, texts

        yield from iter_rows(header, cells(), mapping, validator=validator, defaults=defaults)
    finally:
        workbook.close()
