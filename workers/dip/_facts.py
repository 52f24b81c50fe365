"""The case input of grouping and scoring: `CaseFacts` (declared in `contracts.dip`, with
its fields) and its JSON / NDJSON readers."""

from __future__ import annotations

from typing import Final

import msgspec

from contracts.dip import CaseFacts

OPRN_CLASSES: Final = frozenset({"surgery", "intervention", "therapeutic", "diagnostic"})


def decode_cases_json(data: bytes) -> list[CaseFacts]:
    """Decode one JSON case or a JSON list of cases."""
    doc = msgspec.json.decode(data, type=CaseFacts | list[CaseFacts])
    return doc if isinstance(doc, list) else [doc]


_ndjson_decoder: Final = msgspec.json.Decoder(CaseFacts)


def decode_cases_ndjson(data: bytes) -> list[CaseFacts]:
    """Decode newline-delimited JSON cases; blank lines are skipped."""
    return [_ndjson_decoder.decode(line) for line in data.splitlines() if line.strip()]
