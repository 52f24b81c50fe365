"""What every adapter yields: one record (or its failure to decode) with its errors."""

from __future__ import annotations

from functools import cache

import msgspec

from contracts import Envelope, ValidationError, Validator

__all__ = ["DecodedRecord", "default_validator"]


class DecodedRecord(msgspec.Struct, kw_only=True):
    """One record of a feed.

    `position` says where it came from (`line 12`, `records[3]`, `row 5`, `document`);
    `envelope` is None when nothing could be decoded; `errors` are decode errors (and, from
    `decode_and_validate`, the validator's findings), all in the common error shape.
    """

    position: str
    envelope: Envelope | None
    errors: list[ValidationError] = msgspec.field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """Decoded, and no error of severity reject."""
        return self.envelope is not None and not any(e.severity == "reject" for e in self.errors)


@cache
def default_validator() -> Validator:
    """A Validator with the default rules and the bundled tables, built once."""
    return Validator()
