"""Personal data, masked by construction.

- `redact_document`: what a document may show once it leaves the gateway (the rejected topic).
  An allow-list: only the fields the field table (data/fields.csv) knows for each node of the
  national envelope are kept; a personal one is masked whatever its JSON type; an unknown key
  is dropped and only its (sanitised) name kept.
- `mask_personal`: log events. Every key the field table names as personal, and every key
  named like personal data (`idcard`, `patient_name`, `mobilePhone`, `家庭住址`, …), is masked
  whatever its type; ID-like digit runs are masked in any text.

Both walk iteratively or along the fixed envelope shape, so no nesting depth makes them
recurse; a value's contents are never copied when its type is not the field's.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

import msgspec

from contracts._fields import NODES, field_specs, fields_by_node

__all__ = ["mask_personal", "mask_value", "redact_document"]

# Runs of 15+ digits: 15/18-digit certificate numbers, person and insurance numbers (also
# inside other text, and as JSON numbers). Shown as their first 6 and last 4 digits.
_ID_RUN = re.compile(r"\d{15,}")
_BIG_INT = 10**14
# Dropped key names are the sender's text: bounded in count and length, ASCII identifier
# characters only (a name sent as a key never shows), no long digit runs.
_DROPPED_MAX = 20
_LABEL_MAX = 32
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-\[\]$@]")
_LABEL_DIGITS = re.compile(r"\d{6,}")
# Log events are shallow; deeper structure is cut (JSON renderers recurse).
_MAX_DEPTH = 32
# A kept text field: its table length, within these bounds.
_TEXT_MIN, _TEXT_MAX = 32, 200


def _scrub(text: str) -> str:
    """Mask every ID-like digit run of a text."""
    if len(text) < 15:
        return text
    return _ID_RUN.sub(lambda m: m[0][:6] + "*" * (len(m[0]) - 10) + m[0][-4:], text)


def _number(value: int | float) -> int | float | str:
    """A number as it is, or as text with its ID-like digit runs masked if its JSON or Python
    text has one (a number sent for an ID; `0.000419207961399998…` spells 18 digits too)."""
    if isinstance(value, int):
        return _scrub(str(value)) if abs(value) >= _BIG_INT else value
    for text in (repr(value), msgspec.json.encode(value).decode()):
        if _ID_RUN.search(text):
            return _scrub(text)
    return value


def mask_value(style: str, value: str) -> str:
    """Mask one value: keep just enough to recognise a record, never enough to identify.

    `110105199001010023` -> `110105********0023`; `张三` -> `张*`; `13812345678` ->
    `138****5678`; `1970-05-01` -> `1970-**-**` (style `date`: the year only); `id`
    (person, case-record, staff numbers): the first 4 and last 2; addresses and employer
    names keep their first 6 characters (province/city).
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
    if style == "date":
        if n >= 4 and value[:4].isascii() and value[:4].isdigit():
            return value[:4] + re.sub(r"[0-9]", "*", value[4:])
        return "*" * n
    # free text (addresses, employer): the leading region words only
    return value[:6] + "****" if n > 6 else "*" * n


def _type_name(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict | msgspec.Struct):
        return "object"
    return "value"


def _marker(value: Any) -> str | None:
    """A value's type in place of a value that cannot be shown: `[object]`, `[array]`, …"""
    return None if value is None else f"[{_type_name(value)}]"


def _mask_any(style: str, value: Any) -> Any:
    """A personal value masked whatever its JSON type; a structure never shows its contents."""
    if value is None:
        return None
    if isinstance(value, str):
        return mask_value(style, value)
    if isinstance(value, bool):
        return mask_value(style, "true" if value else "false")
    if isinstance(value, int | float):
        return mask_value(style, str(value))
    return f"[masked {_type_name(value)}]"


def _keep_any(value: Any, limit: int) -> Any:
    """A kept (non-personal) field's value: scalars only, ID-like digit runs masked, text cut
    to the field's length; a structure becomes its type marker."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        text = _scrub(value)
        return text if len(text) <= limit else text[:limit] + "…"
    return _marker(value)


@cache
def _chinese_names() -> frozenset[str]:
    return frozenset(f.name_cn for f in field_specs())


def _label(key: Any) -> str:
    """A dropped key's name as it may be shown."""
    text = key if isinstance(key, str) else _type_name(key)
    if text in _chinese_names():  # the national Chinese name of a field: the table's own text
        return text
    text = _LABEL_UNSAFE.sub("?", text[: _LABEL_MAX + 1])
    text = _LABEL_DIGITS.sub(lambda m: m[0][:4] + "*" * (len(m[0]) - 4), text)
    return text if len(text) <= _LABEL_MAX else text[:_LABEL_MAX] + "…"


def _dropped(keys: list[Any]) -> list[str]:
    names = [_label(k) for k in keys[:_DROPPED_MAX]]
    if len(keys) > _DROPPED_MAX:
        names.append(f"+{len(keys) - _DROPPED_MAX} more")
    return names


@cache
def _plan(node: str) -> dict[str, tuple[str | None, int]]:
    """A node's fields: (personal style or None, the text length kept)."""
    return {
        name: (spec.personal, min(max(spec.length or 0, _TEXT_MIN), _TEXT_MAX))
        for name, spec in fields_by_node()[node].items()
    }


def _redact_node(node: str, data: Mapping[Any, Any]) -> dict[str, Any]:
    """One node (`envelope` without `input`, `setlinfo`, an entry of `diseinfo`, …).

    The common values take a shortcut past `_keep` (a rejected batch redacts every list):
    text under 15 characters (within every length kept, too short for an ID run), integers
    under 10^14, and floats whose every spelling is under 15 characters."""
    plan = _plan(node)
    out: dict[str, Any] = {}
    dropped: list[Any] = []
    for key, value in data.items():
        rule = plan.get(key) if isinstance(key, str) else None
        if rule is None:
            if key == "input" and node == "envelope":
                out[key] = _redact_input(value)
            else:
                dropped.append(key)
            continue
        style, limit = rule
        if style is not None:
            out[key] = _mask_any(style, value)
            continue
        kind = value.__class__
        if kind is str:
            if len(value) < 15:
                out[key] = value
            else:
                text = _scrub(value)
                out[key] = text if len(text) <= limit else text[:limit] + "…"
        elif kind is int:
            out[key] = value if -_BIG_INT < value < _BIG_INT else _number(value)
        elif kind is float:
            size = abs(value)
            short = (size == 0.0 or 1e-4 <= size < 1e14) and len(repr(value)) < 15
            out[key] = value if short else _number(value)
        elif value is None or kind is bool:
            out[key] = value
        else:
            out[key] = _keep_any(value, limit)
    if dropped:
        out["_dropped"] = _dropped(dropped)
    return out


def _redact_entries(node: str, value: Any) -> Any:
    """A node's value: one object, or a list of them (either shape, whatever the node)."""
    if isinstance(value, dict):
        return _redact_node(node, value)
    if isinstance(value, list | tuple):
        return [_redact_node(node, v) if isinstance(v, dict) else _marker(v) for v in value]
    return _marker(value)


def _redact_input(value: Any) -> Any:
    if not isinstance(value, dict):
        return _marker(value)
    out: dict[str, Any] = {}
    dropped: list[Any] = []
    for key, entries in value.items():
        if key in NODES[1:]:
            out[key] = _redact_entries(key, entries)
        else:
            dropped.append(key)
    if dropped:
        out["_dropped"] = _dropped(dropped)
    return out


def redact_document(document: Any) -> Any:
    """What a settlement-list document may show outside the gateway (the rejected topic).

    `document` is the decoded JSON (or a Struct: `Envelope`). The national envelope shape is
    walked — envelope fields, `input`, its nodes (an object or a list of objects each) — and
    only the fields `data/fields.csv` knows for each node are kept: personal ones masked
    (`mask_value`; a list or object under a personal key becomes `[masked array]` /
    `[masked object]`, a number is masked as its text), others as scalars with ID-like digit
    runs masked (`110105********0023`) and text cut to the field's length, a structure where a
    value belongs as its type (`[object]`). Unknown keys are dropped; their names, sanitised
    and bounded, are listed under `_dropped` of the object that held them. A list of
    documents is redacted element by element; any other non-object document becomes `None`.
    """
    if isinstance(document, msgspec.Struct):
        document = msgspec.to_builtins(document)
    if isinstance(document, dict):
        return _redact_node("envelope", document)
    if isinstance(document, list | tuple):
        return [
            _redact_node("envelope", d) if isinstance(d, dict) else _marker(d) for d in document
        ]
    return None


# -- logs ----------------------------------------------------------------------------------


@cache
def _styles() -> dict[str, str]:
    """Field name -> masking style, from the `personal` column of data/fields.csv."""
    return {f.field: f.personal for f in field_specs() if f.personal}


@cache
def _not_personal() -> frozenset[str]:
    return frozenset(f.field for f in field_specs() if not f.personal)


# Key words of keys named like personal data (case-insensitive words of snake_case,
# camelCase and Chinese keys), with the style their value is masked in.
_WORDS = {
    word: style
    for style, words in (
        ("name", "name names fullname surname firstname lastname xingming"),
        ("certno", "cert certno certificate idcard idno idnumber sfz sfzh sfzhm passport ssn"),
        ("phone", "phone tel telephone mobile cellphone sjh"),
        ("text", "addr address adr dz"),
        ("date", "birth birthday birthdate dob brdy csrq"),
    )
    for word in words.split()
}
_PAIRS = {("id", "card"): "certno", ("id", "no"): "certno", ("id", "number"): "certno"}
_CHINESE = (
    ("身份证", "certno"),
    ("证件", "certno"),
    ("姓名", "name"),
    ("名字", "name"),
    ("联系人", "name"),
    ("电话", "phone"),
    ("手机", "phone"),
    ("地址", "text"),
    ("住址", "text"),
    ("出生", "date"),
)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


@lru_cache(maxsize=4096)
def _looks_personal(key: str) -> str | None:
    """The masking style of a key named like personal data, if it is."""
    for word, style in _CHINESE:
        if word in key:
            return style
    words = [w.lower() for w in _WORD.findall(key)]
    for word in words:
        if word in _WORDS:
            return _WORDS[word]
    for pair in itertools.pairwise(words):
        if pair in _PAIRS:
            return _PAIRS[pair]
    return None


def _style_of(key: Any) -> str | None:
    if not isinstance(key, str):
        return None
    style = _styles().get(key)
    if style is not None or key in _not_personal():
        return style
    return _looks_personal(key[:100])


def mask_personal(record: Any) -> Any:
    """A masked copy of a log event or record: a Struct or plain data (dicts, lists, tuples).

    Structs come back as plain dicts (JSON-ready, money as strings), tuples as lists. Every
    key named as personal in the field table (`psn_name`, `certno`, `psn_no`, `brdy`, …) and
    every key named like personal data (`idcard`, `CertNo`, `patient_name`, `mobilePhone`,
    `家庭住址`, …) is masked wherever it appears, whatever its value's type (a list or object
    becomes `[masked array]` / `[masked object]`); ID-like digit runs are masked in every
    text. Structure deeper than 32 levels is cut (`[too deep]`). For documents leaving the
    gateway use `redact_document`, which keeps only known fields.
    """
    root: list[Any] = [None]
    # (value, the container it goes into, its slot there, depth): a work list, no recursion
    work: list[tuple[Any, Any, Any, int]] = [(record, root, 0, 0)]
    while work:
        value, parent, slot, depth = work.pop()
        if isinstance(value, msgspec.Struct):
            value = msgspec.to_builtins(value)
        if isinstance(value, dict | list | tuple) and depth >= _MAX_DEPTH:
            parent[slot] = "[too deep]"
        elif isinstance(value, dict):
            out: dict[Any, Any] = {}
            parent[slot] = out
            for key, item in value.items():
                style = _style_of(key)
                name = _scrub(key) if isinstance(key, str) else key
                if style is not None:
                    out[name] = _mask_any(style, item)
                else:
                    out[name] = None
                    work.append((item, out, name, depth + 1))
        elif isinstance(value, list | tuple):
            items: list[Any] = [None] * len(value)
            parent[slot] = items
            work.extend((item, items, i, depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            parent[slot] = _scrub(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parent[slot] = _number(value)
        else:
            parent[slot] = value
    return root[0]
