"""Masking of personal data for logs, the rejected topic, dashboards and error reports."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import msgspec

from contracts._fields import field_specs

__all__ = ["mask_personal", "mask_value"]


@cache
def _styles() -> dict[str, str]:
    """Field name -> masking style, from the `personal` column of data/fields.csv."""
    return {f.field: f.personal for f in field_specs() if f.personal}


def mask_value(style: str, value: str) -> str:
    """Mask one value: keep just enough to recognise a record, never enough to identify.

    `110105199001010023` -> `110105********0023`; `张三` -> `张*`; `13812345678` ->
    `138****5678`; addresses keep their first 6 characters (province/city).
    """
    n = len(value)
    if n == 0:
        return value
    if style == "name":
        return value[0] + "*" * (n - 1)
    if style == "certno":
        if n >= 15:
            return value[:6] + "*" * (n - 10) + value[-4:]
        return value[:1] + "*" * (n - 1)
    if style == "phone":
        if n >= 8:
            return value[:3] + "*" * (n - 7) + value[-4:]
        return "*" * n
    if style == "id":
        if n >= 8:
            return value[:4] + "*" * (n - 6) + value[-2:]
        return "*" * n
    # free text (addresses): the leading region words only
    return value[:6] + "****" if n > 6 else "*" * n


def _walk(node: Any, styles: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            style = styles.get(key) if isinstance(key, str) else None
            if style is not None and isinstance(value, str):
                out[key] = mask_value(style, value)
            elif style is not None and value is not None and not isinstance(value, (dict, list)):
                out[key] = mask_value(style, str(value))
            else:
                out[key] = _walk(value, styles)
        return out
    if isinstance(node, list):
        return [_walk(v, styles) for v in node]
    return node


def mask_personal(record: Any) -> Any:
    """A masked copy of a record: a Struct (Envelope, Settlement, a node) or plain JSON data.

    Structs come back as plain dicts (JSON-ready, money as strings); dicts and lists keep
    their shape. Every key named as personal in the field table (`psn_name`, `certno`,
    `coner_*`, `curr_addr`, `emp_tel`, `hi_no`) is masked wherever it appears.
    """
    if isinstance(record, msgspec.Struct):
        record = msgspec.to_builtins(record)
    return _walk(record, _styles())
