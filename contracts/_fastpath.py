"""Decoder types for the fast path: the canonical Structs, tightened per rule configuration.

Each strict type subclasses its canonical type and turns field rules into msgspec
constraints: REQ_FIELD (all-flavour fields) -> non-empty, FMT_LENGTH -> max_length,
DICT_VALUE -> Literal of the dictionary, FMT_NUMBER on integers -> bounds, FMT_DATETIME ->
naive datetime. (FMT_DURATION is cheaper as a memoised python test than as a regex inside
the decoder: `check_values` runs it.) A record that decodes into them cannot fail those
rules, so only the python-side rules remain to run; one that fails goes to the full engine,
which reports every error. A rule switched off (for a field or as a whole) loosens the
matching constraint; a constraint can only ever send a valid record to the slow path, never
let an invalid one through, so the two paths give the same findings (asserted by the rule
tests and the property tests).

Diagnosis and operation codes are *not* constraints of the decoder: a Literal of the full
医保版 tables (33,304 and 13,686 codes) took half a second to build per Validator, and an
unknown code sent the whole record to the slow path. The fast path instead tests each code
against the latest table (one set lookup each) and, when one is missing, runs the code rules
with lookups (`trusted=False`), still on the strictly decoded record.

`typed_envelope_type` is the middle tier of the full engine: the canonical Structs with
naive timestamps only. A record the strict types refuse for a value (a dictionary code, an
empty required field, a length) still decodes into it, and skips the lenient decoder's
field-by-field conversion. A timestamp it cannot read as such (malformed, an offset, a bare
date in a datetime field, `""`) is read as text in that field only
(`relaxed_envelope_type`, then `_raw.convert_relaxed`); only a wrong JSON type needs the
lenient decoder.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from typing import Annotated, Any, Literal

import msgspec

from contracts._dicts import Dictionaries
from contracts._fieldrules import MULTI_DICT, strict_required
from contracts._fields import NODES, FieldSpec, fields_of
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

__all__ = [
    "DURATION_STRICT",
    "INFNO_VALUES",
    "relaxed_decoder",
    "relaxed_envelope_type",
    "strict_envelope_type",
    "typed_envelope_type",
]

#: 天/小时/分钟 with hours < 24 and minutes < 60, ASCII digits only (= parse_duration); the
#: grammar of FMT_DURATION as a regex (documentation and tests: the decoder no longer uses it)
DURATION_STRICT = r"(?a:\d{1,4}/(?:[01]?\d|2[0-3])/[0-5]?\d)"

INFNO_VALUES = ("4101", "4101A", "4101a")
_LIST_NODES: dict[str, type[msgspec.Struct]] = {
    "diseinfo": Diseinfo,
    "oprninfo": Oprninfo,
    "icuinfo": Icuinfo,
    "bldinfo": Bldinfo,
    "opspdiseinfo": Opspdiseinfo,
    "payinfo": Payinfo,
    "iteminfo": Iteminfo,
}
_LITERAL: Any = Literal


def _field(spec: FieldSpec, policy: ConfiguredRules, dicts: Dictionaries) -> tuple[Any, ...] | None:
    """(name, type[, default]) for defstruct, or None to keep the canonical field."""
    path = spec.path
    required = strict_required(spec) and policy.enabled("REQ_FIELD", path)
    if spec.type == "datetime":
        # naive only: an offset goes to the slow path, which converts it to CST
        naive: Any = Annotated[datetime, msgspec.Meta(tz=False)]
        return (spec.field, naive) if required else (spec.field, naive | None, None)
    if spec.type == "int":
        limit = 10 ** (spec.length or 9)
        bounded: Any = Annotated[int, msgspec.Meta(ge=0, lt=limit)]
        if not policy.enabled("FMT_NUMBER", path):
            bounded = int
        return (spec.field, bounded) if required else (spec.field, bounded | None, None)
    if spec.type not in ("str", "duration"):
        if not required:
            return None
        return (spec.field, date if spec.type == "date" else Decimal)
    # durations (FMT_DURATION) are left to the python side: a regex call per field inside
    # the decoder costs more than the memoised `check_values` test (see _fieldrules)
    typ: Any
    check_length = spec.length is not None and policy.enabled("FMT_LENGTH", path)
    use_dict = (
        spec.dict is not None
        and dicts.has(spec.dict)
        and spec.field not in MULTI_DICT
        and policy.enabled("DICT_VALUE", path)
    )
    if spec.node == "envelope" and spec.field == "infno" and policy.enabled("ENV_INFNO", path):
        typ = _LITERAL[INFNO_VALUES]
        return (spec.field, typ) if required else (spec.field, typ | None, None)
    if use_dict and spec.dict is not None:
        values = sorted(dicts.values(spec.dict))
        if check_length and spec.length is not None:
            values = [v for v in values if len(v) <= spec.length]
        if not required:
            values.append("")
        typ = _LITERAL[tuple(values)]
    else:
        max_length = spec.length if check_length else None
        if not required and max_length is None:
            return None
        meta = msgspec.Meta(min_length=1 if required else None, max_length=max_length)
        typ = Annotated[str, meta]
    return (spec.field, typ) if required else (spec.field, typ | None, None)


def _strict(
    name: str, base: type[msgspec.Struct], node: str, policy: ConfiguredRules, dicts: Dictionaries,
    extra: list[tuple[Any, ...]] | None = None, relaxed: frozenset[str] = frozenset(),
    sealed: bool = False,
) -> type[msgspec.Struct]:  # fmt: skip
    strict = {f[0]: f for f in (_field(s, policy, dicts) for s in fields_of(node)) if f}
    for f in extra or []:
        strict[f[0]] = f
    for text_field in relaxed:  # unconstrained text, required or not (see strict_envelope_type)
        strict[text_field] = (text_field, str | None, None)
    return msgspec.defstruct(
        name, _in_order(base, strict), bases=(base,), kw_only=True, gc=False,
        forbid_unknown_fields=sealed,
    )  # fmt: skip


def _in_order(base: type[msgspec.Struct], redefined: dict[str, tuple[Any, ...]]) -> list[Any]:
    """Every field of `base`, in its order, `redefined` ones replaced. A subclass moves the
    fields it redefines to the end, and msgspec decodes fastest when the JSON keys come in
    field order (the typed Envelope: 24 µs a record with its datetimes moved, 15 µs in
    order)."""
    fields: list[tuple[Any, ...]] = []
    for f in msgspec.structs.fields(base):
        if f.name in redefined:
            fields.append(redefined[f.name])
        elif f.default_factory is not msgspec.NODEFAULT:
            fields.append((f.name, f.type, msgspec.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, f.type, f.default))
    names = {f[0] for f in fields}
    fields.extend(f for name, f in redefined.items() if name not in names)
    return fields


def strict_envelope_type(
    policy: ConfiguredRules,
    dicts: Dictionaries,
    relaxed: frozenset[tuple[str, str]] = frozenset(),
    nodes_built: dict[tuple[str, frozenset[str], bool], Any] | None = None,
    *,
    sealed: bool = False,
) -> type[Envelope]:
    """The fast-path Envelope type for one rule configuration and dictionary version.

    `relaxed`: fields ((node, field) pairs) left unconstrained, `str | None` (timestamps
    read as text, text fields as sent), every other constraint kept: a record the strict
    types refused only for those decodes, and once they are converted and checked alone
    needs only the python-side rules (`Validator._strict_relaxed_json`). `nodes_built`: the
    caller's cache of node types (a variant rebuilds only the nodes it relaxes).

    `sealed`: every struct refuses unknown keys (`forbid_unknown_fields`). Decoded with
    `strict=True` as well (no float into an integer field), a sealed record holds JSON
    numbers only where a Decimal keeps them exactly or an integer field took an integer, so
    no number was rounded to 0 on the way (`_numbers`): the fast path's first decoder, which
    spares the clean record the look for such numbers (`Validator`).
    """
    built = {} if nodes_built is None else nodes_built

    def node_type(node: str, base: type[msgspec.Struct]) -> Any:
        fields = frozenset(f for n, f in relaxed if n == node)
        key = (node, fields, sealed)
        if key not in built:
            built[key] = _strict(
                f"Strict{base.__name__}", base, node, policy, dicts, None, fields, sealed
            )
        return built[key]

    nodes: list[tuple[Any, ...]] = []
    for node, base in _LIST_NODES.items():
        strict = node_type(node, base)
        nodes.append((node, list[strict], msgspec.field(default_factory=list)))  # type: ignore[valid-type]
    setlinfo = node_type("setlinfo", Setlinfo)
    settlement = msgspec.defstruct(
        "StrictSettlement",
        [("setlinfo", setlinfo), *nodes],
        bases=(Settlement,),
        kw_only=True,
        gc=False,
        forbid_unknown_fields=sealed,
    )
    envelope_relaxed = frozenset(f for n, f in relaxed if n == "envelope")
    envelope = _strict(
        "StrictEnvelope", Envelope, "envelope", policy, dicts, [("input", settlement)],
        envelope_relaxed, sealed,
    )  # fmt: skip
    return envelope  # type: ignore[return-value]


def _naive(
    name: str, base: type[msgspec.Struct], node: str, extra: list[tuple[Any, ...]],
    relaxed: frozenset[str] = frozenset(),
) -> Any:  # fmt: skip
    """`base` with its datetime fields naive-only (every field in the base's order); the
    timestamps named in `relaxed` (dates too) are text, for `_raw.convert_relaxed`."""
    naive: Any = Annotated[datetime, msgspec.Meta(tz=False)]
    redefined = {
        s.field: (s.field, naive | None, None) for s in fields_of(node) if s.type == "datetime"
    }
    redefined.update((f, (f, str | None, None)) for f in relaxed)
    redefined.update((e[0], e) for e in extra)
    fields = _in_order(base, redefined)
    return msgspec.defstruct(name, fields, bases=(base,), kw_only=True, gc=False)


@cache
def _typed_node(node: str, relaxed: frozenset[str]) -> Any:
    base = _LIST_NODES.get(node, Setlinfo)
    return _naive(f"Typed{base.__name__}", base, node, [], relaxed)


@cache
def typed_envelope_type() -> type[Envelope]:
    """The canonical Envelope with naive timestamps only: the full engine's first decoder.

    What it accepts, the lenient decoder plus `_raw.to_canonical` would turn into the same
    Structs without a finding (same JSON types; a naive timestamp parses the same way); what
    it refuses goes to them.
    """
    return relaxed_envelope_type(frozenset())


@lru_cache(maxsize=256)
def relaxed_envelope_type(relaxed: frozenset[tuple[str, str]]) -> type[Envelope]:
    """`typed_envelope_type` with the timestamps `relaxed` ((node, field) pairs) as text.

    The full engine's answer to an unreadable timestamp: the typed decoder names the field
    it refused, this type reads that field (in every entry of its node) as text, and
    `_raw.convert_relaxed` converts only those texts, the lenient decoder's way; the rest of
    the record decodes typed, without converting each timestamp. `Validator` asks for one
    field, or for whole nodes (`_raw.whole_nodes`): at most 31 sets, so the cache holds them
    all and no sender can make a process build decoders on end.
    """
    by_node: dict[str, frozenset[str]] = {
        node: frozenset(f for n, f in relaxed if n == node) for node in NODES
    }
    nodes: list[tuple[Any, ...]] = []
    for node in _LIST_NODES:
        typed = _typed_node(node, by_node[node])
        nodes.append((node, list[typed], msgspec.field(default_factory=list)))  # type: ignore[valid-type]
    setlinfo = _typed_node("setlinfo", by_node["setlinfo"])
    settlement_fields = [("setlinfo", setlinfo, msgspec.field(default_factory=setlinfo)), *nodes]
    settlement = msgspec.defstruct(
        "TypedSettlement", settlement_fields, bases=(Settlement,), kw_only=True, gc=False
    )
    inp = ("input", settlement, msgspec.field(default_factory=settlement))
    envelope: type[Envelope] = _naive(
        "TypedEnvelope", Envelope, "envelope", [inp], by_node["envelope"]
    )
    return envelope


@lru_cache(maxsize=256)
def relaxed_decoder(relaxed: frozenset[tuple[str, str]]) -> msgspec.json.Decoder[Envelope]:
    """The JSON decoder of `relaxed_envelope_type(relaxed)` (not strict: as the others)."""
    return msgspec.json.Decoder(relaxed_envelope_type(relaxed), strict=False)
