"""NDJSON: one envelope per line, from a file, a stream or any iterable of lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, cast

from adapters._limits import JsonTooDeep
from adapters._result import DecodedRecord, default_validator
from contracts import Validator

__all__ = ["iter_ndjson", "iter_ndjson_lines"]


def iter_ndjson_lines(
    source: Iterable[bytes] | Iterable[str] | IO[bytes],
) -> Iterator[tuple[str, bytes]]:
    """(`line N`, raw line) for each non-blank line; N counts from 1, blank lines too."""
    lines = cast(Iterable[bytes | str], source)
    for number, line in enumerate(lines, start=1):
        data = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
        data = data.strip()
        if data:
            yield f"line {number}", data


def iter_ndjson(
    source: Iterable[bytes] | Iterable[str] | IO[bytes],
    *,
    validator: Validator | None = None,
    validate: bool = False,
    received_at: datetime | None = None,
) -> Iterator[DecodedRecord]:
    """Decode (and with `validate=True` also validate) every line; a bad line is one record
    with its errors (DEC_JSON for one nested too deeply to read), and the stream goes on."""
    validator = validator or default_validator()
    for position, data in iter_ndjson_lines(source):
        try:
            if validate:
                envelope, errors = validator.validate_json(data, received_at=received_at)
            else:
                envelope, errors = validator.decode(data)
        except RecursionError:
            errors = [validator.decode_failure("DEC_JSON", detail=str(JsonTooDeep()))]
            envelope = None
        yield DecodedRecord(position=position, envelope=envelope, errors=errors)
