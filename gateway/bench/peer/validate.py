"""The validation peer: decode + validate bytes with `Envelope.model_validate_json`, as the
obvious peer's ingest route does, for `dipgw bench validate --peer`."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from gateway.bench.peer.model import validate_json

__all__ = ["rejected", "validator"]


def validator() -> Callable[[bytes], object]:
    """What the bench times per document: one decode + validate (raises when invalid)."""
    return validate_json


def rejected(documents: list[bytes]) -> int:
    """How many of `documents` the peer refuses: 0 on the clean set, or it would time
    refusals instead of validations."""
    count = 0
    for document in documents:
        try:
            validate_json(document)
        except ValidationError:
            count += 1
    return count
