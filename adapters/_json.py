"""The national JSON envelope: one document, or a batch of them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import msgspec

from adapters._limits import JsonTooDeep
from adapters._result import DecodedRecord, default_validator
from contracts import Validator

__all__ = [
    "decode_and_validate",
    "decode_batch",
    "decode_envelope",
    "is_batch",
    "split_batch",
    "split_json",
]

_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])


class _Wrapped(msgspec.Struct):
    records: list[msgspec.Raw]


_WRAPPED = msgspec.json.Decoder(_Wrapped)


def decode_envelope(
    raw: bytes | str, *, position: str = "document", validator: Validator | None = None
) -> DecodedRecord:
    """Decode one envelope; decode errors (not rule findings) in `errors` (DEC_JSON for one
    nested too deeply to read)."""
    validator = validator or default_validator()
    try:
        envelope, errors = validator.decode(raw)
    except RecursionError:
        return _too_deep(position, validator)
    return DecodedRecord(position=position, envelope=envelope, errors=errors)


def _too_deep(position: str, validator: Validator) -> DecodedRecord:
    error = validator.decode_failure("DEC_JSON", detail=str(JsonTooDeep()))
    return DecodedRecord(position=position, envelope=None, errors=[error])


def decode_and_validate(
    raw: bytes | str,
    validator: Validator | None = None,
    *,
    received_at: datetime | None = None,
    position: str = "document",
) -> DecodedRecord:
    """Decode and validate one envelope: the gateway's hot path (see Validator.validate_json)."""
    validator = validator or default_validator()
    try:
        envelope, errors = validator.validate_json(raw, received_at=received_at)
    except RecursionError:
        return _too_deep(position, validator)
    return DecodedRecord(position=position, envelope=envelope, errors=errors)


def split_batch(raw: bytes | str) -> Iterator[tuple[str, bytes]]:
    """(position, raw record) for each record of a batch.

    A batch is a JSON array of envelopes, or an object `{"records": [...]}`. Raises
    `msgspec.DecodeError` / `msgspec.ValidationError` when the batch itself is unreadable,
    `JsonTooDeep` when it is nested too deeply to read.
    """
    try:
        try:
            items = _ARRAY.decode(raw)
        except msgspec.ValidationError:
            items = _WRAPPED.decode(raw).records
    except RecursionError:
        raise JsonTooDeep() from None
    for i, item in enumerate(items):
        yield f"records[{i}]", bytes(item)


def is_batch(data: bytes) -> bool:
    """A JSON array, or an object whose only record list is `records` (not an envelope).
    Raises `JsonTooDeep` for an object nested too deeply to read."""
    if data.lstrip().startswith(b"["):
        return True
    try:
        keys = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
    except msgspec.DecodeError:
        return False
    except RecursionError:
        raise JsonTooDeep() from None
    return "records" in keys and "input" not in keys


def split_json(raw: bytes) -> Iterator[tuple[str, bytes]]:
    """A JSON upload: the records of a batch (`split_batch`), or the one document.

    Raises like `split_batch` only for a batch (and `JsonTooDeep` for any upload nested too
    deeply to read); a single document that is not even JSON is yielded as it is (at
    position `document`), for its decoder to report.
    """
    if is_batch(raw):
        return split_batch(raw)
    return iter([("document", raw)])


def decode_batch(raw: bytes | str, *, validator: Validator | None = None) -> list[DecodedRecord]:
    """Every record of a batch; a bad record is reported at its index and the rest go on.

    If the batch as a whole is unreadable, the result is one record at position `batch`
    carrying the DEC_JSON / DEC_SHAPE error.
    """
    validator = validator or default_validator()
    try:
        parts = list(split_batch(raw))
    except msgspec.ValidationError:  # (a subclass of DecodeError: test it first)
        error = validator.decode_failure("DEC_SHAPE")
        return [DecodedRecord(position="batch", envelope=None, errors=[error])]
    except JsonTooDeep:
        return [_too_deep("batch", validator)]
    except msgspec.DecodeError as exc:
        error = validator.decode_failure("DEC_JSON", detail=str(exc))
        return [DecodedRecord(position="batch", envelope=None, errors=[error])]
    return [decode_envelope(item, position=pos, validator=validator) for pos, item in parts]
