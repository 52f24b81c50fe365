"""Which encoding a text file from a HIS is in: the one place that decides.

HIS exports on Chinese Windows are usually GBK (GB18030 is its superset); everything else we
read is UTF-8. Short ASCII or UTF-8 text also decodes as GB18030, so UTF-8 is tried first and
GB18030 only for bytes that are not UTF-8. A UTF-16 byte-order mark (Excel's "Unicode text")
is honoured as well.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["GB18030_NOTE", "UTF16_NOTE", "DecodedText", "UndecodableText", "decode_text"]

GB18030_NOTE = "decoded from GB18030 (GBK)"
UTF16_NOTE = "decoded from UTF-16"


class UndecodableText(ValueError):
    """Neither UTF-8 nor GB18030: `offset` is where UTF-8 decoding first failed (the bytes
    themselves are never shown: they may be part of a patient's name)."""

    def __init__(self, offset: int) -> None:
        super().__init__(
            f"not UTF-8 or GB18030 (GBK) text: first undecodable byte at offset {offset}"
        )
        self.offset = offset


@dataclass(frozen=True, slots=True)
class DecodedText:
    text: str
    note: str | None
    """None for UTF-8 (nothing worth telling the sender); else what was done."""


def decode_text(data: bytes) -> DecodedText:
    """The text of `data` (UTF-8 with or without BOM, UTF-16 with BOM, or GB18030).

    Raises `UndecodableText`."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return DecodedText(data.decode("utf-16"), UTF16_NOTE)
        except UnicodeDecodeError as exc:
            raise UndecodableText(exc.start) from None
    try:
        return DecodedText(data.decode("utf-8-sig"), None)
    except UnicodeDecodeError as exc:
        first_bad = exc.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
    try:
        return DecodedText(data.decode("gb18030"), GB18030_NOTE)
    except UnicodeDecodeError as exc:
        # the further of the two: a GBK file with one damaged byte points at that byte
        raise UndecodableText(max(first_bad, exc.start)) from None
