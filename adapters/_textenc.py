"""Which encoding a text file from a HIS is in: the one place that decides.

HIS exports on Chinese Windows are usually GBK (GB18030 is its superset); everything else we
read is UTF-8. Short ASCII or UTF-8 text also decodes as GB18030, so UTF-8 is tried first and
GB18030 only for bytes that are not UTF-8. A UTF-16 byte-order mark (Excel's "Unicode text")
is honoured as well.
"""

from __future__ import annotations

import codecs
from typing import Literal

from contracts import ContractError

__all__ = [
    "GB18030_NOTE",
    "UTF16_NOTE",
    "UndecodableText",
    "decode_text",
    "detect_encoding",
    "utf8_body",
]

GB18030_NOTE = "decoded from GB18030 (GBK)"
UTF16_NOTE = "decoded from UTF-16"

Encoding = Literal["utf-8-sig", "utf-16", "gb18030"]
_NOTES: dict[Encoding, str | None] = {
    "utf-8-sig": None,
    "utf-16": UTF16_NOTE,
    "gb18030": GB18030_NOTE,
}
_CHUNK = 1 << 20


class UndecodableText(ContractError, ValueError):
    """Neither UTF-8 nor GB18030: `offset` is the first byte that is neither (the bytes
    themselves are never shown: they may be part of a patient's name)."""

    def __init__(self, offset: int) -> None:
        super().__init__(
            f"not UTF-8 or GB18030 (GBK) text: first undecodable byte at offset {offset}"
        )
        self.offset = offset


def _first_bad(data: bytes, encoding: str) -> int | None:
    """Where `data` stops decoding as `encoding` (None: it decodes), in bounded memory: the
    text is decoded a chunk at a time and dropped."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    view = memoryview(data)
    for start in range(0, max(len(data), 1), _CHUNK):
        chunk = view[start : start + _CHUNK]
        try:
            decoder.decode(chunk, final=start + _CHUNK >= len(data))
        except UnicodeDecodeError as exc:
            # the decoder may hold back a few bytes of a character split across chunks
            pending = len(decoder.getstate()[0])
            return max(0, start - pending + exc.start)
    return None


def _decode(data: bytes) -> tuple[Encoding, str | None]:
    """The encoding, and the text unless it is UTF-8 (validated only, in bounded memory:
    most files are UTF-8 and their bytes go on as they are)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return "utf-16", data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise UndecodableText(exc.start) from None
    utf8_bad = _first_bad(data, "utf-8")
    if utf8_bad is None:
        return "utf-8-sig", None
    try:
        return "gb18030", data.decode("gb18030")
    except UnicodeDecodeError as exc:
        # the further of the two: a GBK file with one damaged byte points at that byte
        raise UndecodableText(max(utf8_bad, exc.start)) from None


def detect_encoding(data: bytes) -> Encoding:
    """UTF-8 (BOM or not), UTF-16 with a BOM, or GB18030. Raises `UndecodableText`."""
    return _decode(data)[0]


def decode_text(data: bytes) -> str:
    """The text of `data`, whichever of the encodings above. Raises `UndecodableText`."""
    encoding, text = _decode(data)
    return data.decode(encoding) if text is None else text


def utf8_body(data: bytes) -> tuple[bytes, str | None]:
    """`data` as UTF-8 bytes (UTF-8 input is returned as is, BOM and all) and a note for the
    sender when it was converted. Raises `UndecodableText`."""
    encoding, text = _decode(data)
    if text is None:
        return data, None
    return text.encode("utf-8"), _NOTES[encoding]
