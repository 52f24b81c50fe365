"""The slow path's decoder: every field accepted as JSON text, then converted one by one.

A record that the fast-path decoder refuses is decoded into these loose types (timestamps as
plain strings), so that one malformed date becomes one FMT_DATETIME error on its field while
the rest of the record is still checked. `to_canonical` then builds the canonical Structs.
`convert_relaxed` converts the same way, in place, only the timestamps a relaxed typed
decoder read as text (the full engine's usual route for a malformed timestamp); the lenient
decoder remains the reference and the route for wrong JSON types.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

import msgspec

from contracts._errors import ValidationError
from contracts._fieldrules import field_path, strict_required
from contracts._fields import LIST_NODES, NODES, FieldSpec, fields_of
from contracts._model import (
    Bldinfo,
    Diseinfo,
    Envelope,
    Icuinfo,
    Iteminfo,
    Oprninfo,
    Opspdiseinfo,
    Payinfo,
    Setlinfo,
    Settlement,
)
from contracts._rulebook import ConfiguredRules
from contracts._timefmt import CST

__all__ = [
    "convert_relaxed",
    "convert_temporal",
    "field_at",
    "is_temporal",
    "raw_envelope_type",
    "required_present",
    "temporal_at",
    "to_canonical",
    "whole_nodes",
]

_CANONICAL: dict[str, type[msgspec.Struct]] = {
    "setlinfo": Setlinfo,
    "diseinfo": Diseinfo,
    "oprninfo": Oprninfo,
    "icuinfo": Icuinfo,
    "bldinfo": Bldinfo,
    "opspdiseinfo": Opspdiseinfo,
    "payinfo": Payinfo,
    "iteminfo": Iteminfo,
}
_PY: dict[str, Any] = {"decimal": Decimal, "int": int}


def _raw_fields(node: str) -> list[tuple[str, Any, None]]:
    return [(s.field, _PY.get(s.type, str) | None, None) for s in fields_of(node)]


@cache
def raw_envelope_type() -> type[msgspec.Struct]:
    """Loose Envelope: same field names, timestamps as text."""
    nodes: list[tuple[str, Any, Any]] = []
    for node in LIST_NODES:
        cls = msgspec.defstruct(f"Raw{node}", _raw_fields(node), kw_only=True)
        nodes.append((node, list[cls], msgspec.field(default_factory=list)))  # type: ignore[valid-type]
    setlinfo = msgspec.defstruct("RawSetlinfo", _raw_fields("setlinfo"), kw_only=True)
    settlement = msgspec.defstruct(
        "RawSettlement",
        [("setlinfo", setlinfo, msgspec.field(default_factory=setlinfo)), *nodes],
        kw_only=True,
    )
    inp = ("input", settlement, msgspec.field(default_factory=settlement))
    return msgspec.defstruct("RawEnvelope", [*_raw_fields("envelope"), inp], kw_only=True)


_DATETIME = msgspec.json.Decoder(datetime)
_DATE = msgspec.json.Decoder(date)
_ENCODE = msgspec.json.encode


def convert_temporal(text: str, kind: str) -> date | datetime | None:
    """National (or RFC 3339) text -> naive CST datetime / date; None when unreadable.

    Parses with the same JSON decoders as the fast path (so both paths accept exactly the
    same texts), plus a bare date for a datetime field (midnight), a datetime for a date
    field (its day) and offsets (converted to CST).
    """
    raw = _ENCODE(text)
    if kind == "date":  # the usual text of a date field first: one parse, no exception
        try:
            return _DATE.decode(raw)
        except msgspec.ValidationError:
            pass
    try:
        moment = _DATETIME.decode(raw)
    except msgspec.ValidationError:
        if kind == "date":
            return None
        try:
            day = _DATE.decode(raw)
        except msgspec.ValidationError:
            return None
        return datetime.combine(day, time())
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(CST).replace(tzinfo=None)
        except OverflowError:  # 9999-12-31T23:00:00-08:00 is past the last datetime in CST
            return None
    return moment.date() if kind == "date" else moment


@cache
def _temporal(node: str) -> tuple[FieldSpec, ...]:
    return tuple(s for s in fields_of(node) if s.type in ("date", "datetime"))


def _read(text: str | None, kind: str) -> date | datetime | bool | None:
    """One timestamp text as the canonical value (None for none); False if unreadable, for
    which the caller reports FMT_DATETIME (`_unreadable`) at a path it builds only then."""
    if text is None or text == "":
        return None
    converted = convert_temporal(text, kind)
    return False if converted is None else converted


def _unreadable(path: str, policy: ConfiguredRules, out: list[ValidationError]) -> None:
    err = policy.error("FMT_DATETIME", path)
    if err is not None:
        out.append(err)


def _convert(
    obj: msgspec.Struct, node: str, cls: type[Any], prefix: str, policy: ConfiguredRules,
    out: list[ValidationError],
) -> Any:  # fmt: skip
    values = msgspec.structs.asdict(obj)
    for spec in _temporal(node):
        value = _read(values[spec.field], spec.type)
        if value is False:
            _unreadable(prefix + spec.field, policy, out)
            value = None
        values[spec.field] = value
    return cls(**values)


#: `$.inf_time`, `$.input.setlinfo.adm_time`, `$.input.oprninfo[1].oprn_oprt_endtime`
_TEMPORAL_AT = re.compile(
    r" - at `\$(?:\.input\.(?P<node>[a-z]+)(?:\[\d+\])?)?\.(?P<field>[a-z_0-9]+)`$"
)


@cache
def _temporal_pairs() -> frozenset[tuple[str, str]]:
    return frozenset((node, s.field) for node in NODES for s in _temporal(node))


def whole_nodes(pairs: frozenset[tuple[str, str]]) -> frozenset[tuple[str, str]]:
    """Every timestamp of the nodes `pairs` name: what a second failing field relaxes, so
    that a process builds at most 16 + 15 relaxed decoders (one field, or whole nodes of
    the four that hold timestamps), whatever combinations senders get wrong."""
    nodes = {node for node, _field in pairs}
    return frozenset(p for p in _temporal_pairs() if p[0] in nodes)


def field_at(message: str) -> tuple[str, str] | None:
    """(node, field) of the field a decoder's error message names, else None."""
    m = _TEMPORAL_AT.search(message)
    if m is None:
        return None
    return (m.group("node") or "envelope", m.group("field"))


def temporal_at(message: str) -> tuple[str, str] | None:
    """(node, field) of the timestamp a decoder's error message names, else None."""
    pair = field_at(message)
    return pair if pair in _temporal_pairs() else None


def is_temporal(pair: tuple[str, str]) -> bool:
    """Whether (node, field) is a timestamp of the contract."""
    return pair in _temporal_pairs()


@lru_cache(maxsize=256)
def _relaxed_plan(
    relaxed: frozenset[tuple[str, str]],
) -> tuple[tuple[str, tuple[FieldSpec, ...]], ...]:
    """(node, its relaxed timestamps) in `to_canonical`'s order: lists, setlinfo, envelope."""
    plan = []
    for node in (*LIST_NODES, "setlinfo", "envelope"):
        specs = tuple(s for s in _temporal(node) if (node, s.field) in relaxed)
        if specs:
            plan.append((node, specs))
    return tuple(plan)


def convert_relaxed(
    envelope: Any, relaxed: frozenset[tuple[str, str]], policy: ConfiguredRules,
    out: list[ValidationError],
) -> None:  # fmt: skip
    """Convert, in place, the timestamps a relaxed decoder read as text (`_fastpath.
    relaxed_envelope_type`), exactly as `to_canonical` converts them, errors in its order
    (list nodes, setlinfo, the envelope). Every other timestamp was decoded typed, which
    `to_canonical` would have converted to the same value without a finding."""
    inp = envelope.input
    for node, specs in _relaxed_plan(relaxed):
        if node == "envelope":
            objects: list[Any] = [envelope]
        elif node == "setlinfo":
            objects = [inp.setlinfo]
        else:
            objects = getattr(inp, node)
        for i, obj in enumerate(objects):
            for spec in specs:
                name = spec.field
                value = _read(getattr(obj, name), spec.type)
                if value is False:
                    value = None
                    _unreadable(field_path(node, i, name), policy, out)
                setattr(obj, name, value)


def required_present(envelope: Any, relaxed: frozenset[tuple[str, str]]) -> bool:
    """No relaxed timestamp that the strict types require is left None by the conversion
    (the strict types would have refused it: the full engine reports REQ_FIELD or not)."""
    inp = envelope.input
    for node, specs in _relaxed_plan(relaxed):
        required = [s.field for s in specs if strict_required(s)]
        if not required:
            continue
        if node == "envelope":
            objects: list[Any] = [envelope]
        elif node == "setlinfo":
            objects = [inp.setlinfo]
        else:
            objects = getattr(inp, node)
        for obj in objects:
            for name in required:
                if getattr(obj, name) is None:
                    return False
    return True


def to_canonical(raw: Any, policy: ConfiguredRules, out: list[ValidationError]) -> Envelope:
    """The canonical Envelope of a loosely decoded one; unreadable timestamps become None
    and an FMT_DATETIME error each."""
    inp = raw.input
    lists: dict[str, list[Any]] = {}
    for node in LIST_NODES:
        cls = _CANONICAL[node]
        lists[node] = [
            _convert(entry, node, cls, f"{node}[{i}].", policy, out)
            for i, entry in enumerate(getattr(inp, node))
        ]
    setlinfo = _convert(inp.setlinfo, "setlinfo", Setlinfo, "setlinfo.", policy, out)
    envelope_values = msgspec.structs.asdict(raw)
    envelope_values["input"] = Settlement(setlinfo=setlinfo, **lists)
    text = envelope_values.get("inf_time")
    if text:
        moment = convert_temporal(text, "datetime")
        if moment is None:
            err = policy.error("FMT_DATETIME", "inf_time")
            if err is not None:
                out.append(err)
        envelope_values["inf_time"] = moment
    else:
        envelope_values["inf_time"] = None
    return Envelope(**envelope_values)
