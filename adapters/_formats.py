"""The feed formats, declared once: name -> media types, file extensions, reader, writer.

The file endpoint's content types (`gateway.routes_ingest`), the checker
(`gateway.checks.Checker.check_many`), `dipgw validate` (`--format` and the extensions it
recognises) and the OpenAPI document all iterate `FORMATS`; adding an upload format is one
`FORMATS.register(FeedFormat(...))`.

A format reads a whole upload (bytes) into `DecodedRecord`s. Formats whose records are JSON
documents also give `split`: the raw bytes of each record, which the gateway validates on the
hot path (`Validator.validate_json`) instead of decoding first. A `limited` format's reader
also takes an `InputLimits` (CSV, XLSX: rows, columns, cells, and for XLSX the package) and
raises `LimitExceeded` past one; JSON readers report nesting too deep to read as DEC_JSON.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgspec

from adapters._flat import document_to_row, iter_csv, iter_xlsx
from adapters._json import decode_envelope, split_json
from adapters._limits import InputLimits, JsonTooDeep
from adapters._ndjson import iter_ndjson_lines
from adapters._result import DecodedRecord, default_validator
from contracts import Validator

__all__ = ["FORMATS", "FeedFormat", "FormatRegistry", "Reader", "Splitter", "Writer"]

#: read(data, validator, mapping) -> every record of the upload (mapping: CSV/XLSX columns);
#: a `limited` format's reader takes the `InputLimits` as a fourth argument
Reader = Callable[..., Iterable[DecodedRecord]]
#: split(data) -> (position, raw JSON record); raises msgspec errors if unreadable as a whole
Splitter = Callable[[bytes], Iterable[tuple[str, bytes]]]
#: write(documents) -> an upload holding them (examples, tests, demo feeds)
Writer = Callable[[list[dict[str, Any]]], bytes]


@dataclass(frozen=True)
class FeedFormat:
    """One upload format. `media_types[0]` and `extensions[0]` are the preferred ones."""

    name: str
    media_types: tuple[str, ...]
    extensions: tuple[str, ...]
    read: Reader
    write: Writer
    split: Splitter | None = None
    binary: bool = False  # OpenAPI: `format: binary` rather than text
    title: str = ""
    limited: bool = False  # read(data, validator, mapping, limits): bounded by InputLimits

    def __post_init__(self) -> None:
        if not self.name or not self.media_types or not self.extensions:
            raise ValueError("a feed format needs a name, media types and file extensions")
        if not all(e.startswith(".") and e == e.lower() for e in self.extensions):
            raise ValueError(f"{self.name}: extensions are lower case and start with '.'")


class FormatRegistry:
    """Feed formats by name, media type and file extension (each unique)."""

    def __init__(self, formats: Iterable[FeedFormat] = ()) -> None:
        self._formats: dict[str, FeedFormat] = {}
        for fmt in formats:
            self.register(fmt)

    def register(self, fmt: FeedFormat) -> FeedFormat:
        if fmt.name in self._formats:
            raise ValueError(f"feed format {fmt.name!r} is already registered")
        for other in self._formats.values():
            clash = set(fmt.media_types) & set(other.media_types)
            clash |= set(fmt.extensions) & set(other.extensions)
            if clash:
                raise ValueError(f"{fmt.name}: {sorted(clash)} already belong to {other.name}")
        self._formats[fmt.name] = fmt
        return fmt

    def unregister(self, name: str) -> None:
        del self._formats[name]

    @contextmanager
    def extended(self, fmt: FeedFormat) -> Iterator[FeedFormat]:
        """`fmt` registered for the duration of a `with` block (tests)."""
        self.register(fmt)
        try:
            yield fmt
        finally:
            self.unregister(fmt.name)

    def __iter__(self) -> Iterator[FeedFormat]:
        return iter(list(self._formats.values()))

    def names(self) -> tuple[str, ...]:
        return tuple(self._formats)

    def get(self, name: str) -> FeedFormat | None:
        return self._formats.get(name)

    def by_media_type(self, media_type: str) -> FeedFormat | None:
        media_type = media_type.lower()
        return next((f for f in self._formats.values() if media_type in f.media_types), None)

    def by_extension(self, extension: str) -> FeedFormat | None:
        extension = extension.lower()
        return next((f for f in self._formats.values() if extension in f.extensions), None)

    def media_types(self) -> dict[str, FeedFormat]:
        return {m: f for f in self._formats.values() for m in f.media_types}


# -- the built-in formats ---------------------------------------------------------------------


def _read_split(split: Splitter) -> Reader:
    def read(
        data: bytes, validator: Validator, mapping: Mapping[str, str] | None = None
    ) -> Iterator[DecodedRecord]:
        for position, raw in split(data):
            yield decode_envelope(raw, position=position, validator=validator)

    return read


def _split_ndjson(data: bytes) -> Iterator[tuple[str, bytes]]:
    return iter_ndjson_lines(io.BytesIO(data))


def _read_json(
    data: bytes, validator: Validator, mapping: Mapping[str, str] | None = None
) -> Iterator[DecodedRecord]:
    try:
        parts = list(split_json(data))
    except msgspec.ValidationError:  # (a subclass of DecodeError: test it first)
        error = validator.decode_failure("DEC_SHAPE")
        yield DecodedRecord(position="batch", envelope=None, errors=[error])
        return
    except (msgspec.DecodeError, JsonTooDeep) as exc:
        error = validator.decode_failure("DEC_JSON", detail=str(exc))
        yield DecodedRecord(position="batch", envelope=None, errors=[error])
        return
    for position, raw in parts:
        yield decode_envelope(raw, position=position, validator=validator)


def _write_json(documents: list[dict[str, Any]]) -> bytes:
    return msgspec.json.encode(documents[0] if len(documents) == 1 else documents)


def _write_ndjson(documents: list[dict[str, Any]]) -> bytes:
    return b"".join(msgspec.json.encode(d) + b"\n" for d in documents)


def _rows(documents: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, str]]]:
    rows = [document_to_row(d) for d in documents]
    columns = sorted(set().union(*rows)) if rows else []
    return columns, rows


def _write_csv(documents: list[dict[str, Any]]) -> bytes:
    columns, rows = _rows(documents)
    out = io.StringIO()
    writer = csv.DictWriter(out, columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _read_csv(
    data: bytes,
    validator: Validator,
    mapping: Mapping[str, str] | None = None,
    limits: InputLimits | None = None,
) -> Iterator[DecodedRecord]:
    return iter_csv(io.BytesIO(data), mapping, validator=validator, limits=limits)


def _write_xlsx(documents: list[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook  # type: ignore[import-untyped]

    columns, rows = _rows(documents)
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(columns)
    for row in rows:
        sheet.append([row.get(c, "") for c in columns])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _read_xlsx(
    data: bytes,
    validator: Validator,
    mapping: Mapping[str, str] | None = None,
    limits: InputLimits | None = None,
) -> Iterator[DecodedRecord]:
    return iter_xlsx(data, mapping, validator=validator, limits=limits)


FORMATS = FormatRegistry(
    [
        FeedFormat(
            name="json",
            media_types=("application/json",),
            extensions=(".json",),
            read=_read_json,
            write=_write_json,
            split=split_json,
            title='one envelope, a JSON array of them or {"records": [...]}',
        ),
        FeedFormat(
            name="ndjson",
            media_types=("application/x-ndjson", "application/jsonl"),
            extensions=(".ndjson", ".jsonl"),
            read=_read_split(_split_ndjson),
            write=_write_ndjson,
            split=_split_ndjson,
            title="one envelope per line",
        ),
        FeedFormat(
            name="csv",
            media_types=("text/csv",),
            extensions=(".csv",),
            read=_read_csv,
            write=_write_csv,
            limited=True,
            title="one list per row, UTF-8, headers = document paths or national names",
        ),
        FeedFormat(
            name="xlsx",
            media_types=("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",),
            extensions=(".xlsx",),
            read=_read_xlsx,
            write=_write_xlsx,
            binary=True,
            limited=True,
            title="first sheet, one list per row, first row = headers",
        ),
    ]
)


def read_records(
    fmt: FeedFormat,
    data: bytes,
    *,
    validator: Validator | None = None,
    mapping: Mapping[str, str] | None = None,
    limits: InputLimits | None = None,
) -> Iterable[DecodedRecord]:
    """Every record of an upload in `fmt` (decode errors in each record's `errors`); a
    `limited` format raises `LimitExceeded` past `limits` (default `InputLimits()`)."""
    validator = validator or default_validator()
    if fmt.limited:
        return fmt.read(data, validator, mapping, limits or InputLimits())
    return fmt.read(data, validator, mapping)
