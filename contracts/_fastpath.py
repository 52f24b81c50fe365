"""Decoder types for the fast path: the canonical Structs, tightened per rule configuration.

Each strict type subclasses its canonical type and turns field rules into msgspec
constraints: REQ_FIELD (all-flavour fields) -> non-empty, FMT_LENGTH -> max_length,
DICT_VALUE -> Literal of the dictionary, FMT_NUMBER on integers -> bounds, FMT_DATETIME ->
naive datetime, DIAG_*/OPRN_* -> Literal of the latest code table. (FMT_DURATION is cheaper
as a memoised python test than as a regex inside the decoder: `check_values` runs it.)
A record that decodes into them cannot fail those rules, so only the python-side rules remain
to run; one that fails goes to the full engine, which reports every error. A rule switched
off (for a field or as a whole) loosens the matching constraint; a constraint can only ever
send a valid record to the slow path, never let an invalid one through, so the two paths
give the same findings (asserted by the rule tests and the property tests).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from contracts._codes import CodeTables
from contracts._dicts import Dictionaries
from contracts._fieldrules import MULTI_DICT, strict_required
from contracts._fields import FieldSpec, fields_of
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

__all__ = ["DURATION_STRICT", "INFNO_VALUES", "strict_envelope_type"]

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


def _field(
    spec: FieldSpec, policy: ConfiguredRules, dicts: Dictionaries, codes: dict[str, frozenset[str]]
) -> tuple[Any, ...] | None:
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
    if path in codes:
        values = sorted(codes[path])
        if spec.length is not None and policy.enabled("FMT_LENGTH", path):
            values = [v for v in values if len(v) <= spec.length]
        if not required:
            values.append("")
        typ: Any = _LITERAL[tuple(values)]
        return (spec.field, typ) if required else (spec.field, typ | None, None)
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
    codes: dict[str, frozenset[str]], extra: list[tuple[Any, ...]] | None = None,
) -> type[msgspec.Struct]:  # fmt: skip
    specs = fields_of(node)
    fields = [f for f in (_field(s, policy, dicts, codes) for s in specs) if f is not None]
    fields.extend(extra or [])
    return msgspec.defstruct(name, fields, bases=(base,), kw_only=True, gc=False)


def strict_envelope_type(
    policy: ConfiguredRules, dicts: Dictionaries, tables: CodeTables
) -> type[Envelope]:
    """The fast-path Envelope type for one rule configuration, dictionary version and code tables.

    Diagnosis and operation codes become Literals of the latest table version: the checks
    redo the lookups when a record's discharge date puts it under an older version.
    """
    codes: dict[str, frozenset[str]] = {}
    diag = tables.diagnosis_table()
    oprn = tables.operation_table()
    if diag is not None:
        for path in ("diseinfo.diag_code", "setlinfo.wm_dise_code"):
            codes[path] = frozenset(diag.entries)
    if oprn is not None:
        codes["oprninfo.oprn_oprt_code"] = frozenset(oprn.entries)
    nodes: list[tuple[Any, ...]] = []
    for node, base in _LIST_NODES.items():
        strict = _strict(f"Strict{base.__name__}", base, node, policy, dicts, codes)
        nodes.append((node, list[strict], msgspec.field(default_factory=list)))  # type: ignore[valid-type]
    setlinfo = _strict("StrictSetlinfo", Setlinfo, "setlinfo", policy, dicts, codes)
    settlement = msgspec.defstruct(
        "StrictSettlement",
        [("setlinfo", setlinfo), *nodes],
        bases=(Settlement,),
        kw_only=True,
        gc=False,
    )
    envelope = _strict(
        "StrictEnvelope", Envelope, "envelope", policy, dicts, codes, [("input", settlement)]
    )
    return envelope  # type: ignore[return-value]
