"""JSON numbers that no field can hold: refused, never rounded to 0 or infinity.

The decoders read a number into a float before an integer field takes it, so `1e-400` became
0 without a word (a positive exponent past the range fails the field's type already). Only a
document holding `e-` or `E-` somewhere is read again, exactly this time: ordinary lists pay
one search for it. The fast path skips even that for a record its sealed decoder took
(`Validator.validate_json`).
"""

from __future__ import annotations

import re
from decimal import Decimal

import msgspec

__all__ = ["numbers_out_of_range", "out_of_range"]

# |x| < 1e-300 or >= 1e301: past float's normal range (and far past any field's scale)
_SMALLEST, _LARGEST = -300, 300
_EXACT = msgspec.json.Decoder(float_hook=Decimal)
#: `e-` or `E-`: a dash (the scan for it runs in C), then a look back. Half the cost of two
#: substring tests on a 4 KB list (whose timestamps hold some forty dashes)
_NEGATIVE_EXPONENT = re.compile(rb"-(?<=[eE]-)")


def numbers_out_of_range(raw: bytes | str, *, always: bool = False) -> list[str]:
    """Record paths (`setlinfo.nwb_age`, `diseinfo[0].x`) of numbers past float's range.

    `always`: read the document again whatever it holds (after arithmetic on a decoded
    number overflowed: `1E+999999999` is a valid Decimal, and past any sum)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if not always and _NEGATIVE_EXPONENT.search(data) is None:
        return []
    try:
        tree = _EXACT.decode(data)
    except msgspec.DecodeError:
        return []  # the decoder reports it
    return out_of_range(tree)


def out_of_range(tree: object) -> list[str]:
    """Record paths of the numbers in decoded data (Decimal or float) past float's range."""
    found: list[str] = []
    stack: list[tuple[object, str]] = [(tree, "")]
    while stack:  # iterative: nesting depth is the sender's choice
        node, path = stack.pop()
        if isinstance(node, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
        elif (isinstance(node, float) and node in (float("inf"), float("-inf"))) or (
            isinstance(node, Decimal) and node and not _SMALLEST <= node.adjusted() <= _LARGEST
        ):
            found.append(path.removeprefix("input."))
    return sorted(found)
