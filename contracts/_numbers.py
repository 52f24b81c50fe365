"""JSON numbers that no field can hold: refused, never rounded to 0 or infinity.

The decoders read a number into a float before an integer field takes it, so `1e-400` became
0 without a word (a positive exponent past the range fails the field's type already). Only a
document holding `e-` or `E-` somewhere is read again, exactly this time: ordinary lists pay
two substring tests.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

__all__ = ["numbers_out_of_range"]

# |x| < 1e-300 or >= 1e301: past float's normal range (and far past any field's scale)
_SMALLEST, _LARGEST = -300, 300
_EXACT = msgspec.json.Decoder(float_hook=Decimal)


def numbers_out_of_range(raw: bytes | str) -> list[str]:
    """Record paths (`setlinfo.nwb_age`, `diseinfo[0].x`) of numbers past float's range."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if b"e-" not in data and b"E-" not in data:  # (a regex search costs as much as a decode)
        return []
    try:
        tree = _EXACT.decode(data)
    except msgspec.DecodeError:
        return []  # the decoder reports it
    found: list[str] = []
    stack: list[tuple[object, str]] = [(tree, "")]
    while stack:  # iterative: nesting depth is the sender's choice
        node, path = stack.pop()
        if isinstance(node, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
        elif isinstance(node, Decimal) and node and not _SMALLEST <= node.adjusted() <= _LARGEST:
            found.append(path.removeprefix("input."))
    return sorted(found)
