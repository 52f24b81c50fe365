"""Field-level rules driven by the field table: required, length, dictionary, formats.

Two groups, so that the fast path can skip the first one:
- `check_generic` (REQ_FIELD for fields required in every flavour, FMT_LENGTH, DICT_VALUE):
  exactly what the fast-path decoder types enforce inside msgspec;
- `check_values` (durations, numbers, non-negative money, multi-valued dictionaries) and
  `check_required` (flavour-specific and derived required fields): what msgspec cannot
  express, or not before `normalise`; they run on both paths.
Timestamp formats are checked where text becomes a datetime: by msgspec on the fast path,
by `_raw.to_canonical` on the slow one.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from contracts._dicts import Dictionaries
from contracts._errors import ValidationError
from contracts._fields import NODES, FieldSpec, fields_of
from contracts._rulebook import Policy
from contracts._timefmt import parse_duration

__all__ = ["ALIASES", "DERIVED", "MULTI_DICT", "FieldRules", "strict_required"]

#: filled by `normalise` for some flavours: their required check runs after normalisation
DERIVED = frozenset({"psn_cash_pay", "medfee_sumamt", "fund_pay_sumamt", "insutype"})
#: dictionary fields that may hold several codes joined by a separator
MULTI_DICT = {"refldept_dept": "→"}
#: 4101's name of an amount -> the canonical name `normalise` copies it to (and back)
ALIASES = {"psn_cashpay": "psn_cash_pay"}


def strict_required(spec: FieldSpec) -> bool:
    """Required in every flavour and not derived: the fast-path decoder enforces it."""
    return spec.req_A == "Y" and spec.req_L == "Y" and spec.field not in DERIVED


class _Generic:
    __slots__ = ("dict", "field", "length", "required", "template", "values")

    def __init__(self, spec: FieldSpec, dicts: Dictionaries) -> None:
        self.field = spec.field
        self.template = spec.path
        self.required = strict_required(spec)
        self.length = spec.length if spec.type in ("str", "duration") else None
        known = spec.dict is not None and dicts.has(spec.dict) and spec.field not in MULTI_DICT
        self.dict = spec.dict if known else None
        self.values = dicts.values(spec.dict) if known and spec.dict else frozenset()


class _Python:
    """Per-node plan of the python-side field checks."""

    __slots__ = ("decimals", "durations", "ints", "multi", "req_A", "req_L")

    def __init__(self, node: str, dicts: Dictionaries) -> None:
        specs = fields_of(node)
        self.durations = tuple(s.field for s in specs if s.type == "duration")
        self.ints = tuple((s.field, 10 ** (s.length or 9)) for s in specs if s.type == "int")
        self.decimals = tuple(
            (s.field, _limit(s), s.scale or 0, s.length == 16) for s in specs if s.type == "decimal"
        )
        self.req_A = tuple(s.field for s in specs if s.req_A == "Y" and not strict_required(s))
        self.req_L = tuple(s.field for s in specs if s.req_L == "Y" and not strict_required(s))
        self.multi = tuple(
            (s.field, MULTI_DICT[s.field], dicts.values(s.dict))
            for s in specs
            if s.field in MULTI_DICT and s.dict and dicts.has(s.dict)
        )


def _limit(spec: FieldSpec) -> Decimal:
    """10 ** integer digits of a `数值型(p,s)` field."""
    return Decimal(10) ** ((spec.length or 16) - (spec.scale or 0))


def _number_ok(value: Decimal, limit: Decimal, scale: int) -> bool:
    """A finite, non-negative value below `limit` with at most `scale` decimals.

    `str` of a Decimal is a C call and an order of magnitude cheaper than `as_tuple`.
    """
    if not -limit < value < limit:
        return False
    text = str(value)
    if "E" in text:
        exponent = value.as_tuple().exponent
        return isinstance(exponent, int) and -exponent <= scale
    dot = text.find(".")
    return dot < 0 or len(text) - dot - 1 <= scale


class FieldRules:
    """The field-level rules of one Policy and one dictionary version."""

    __slots__ = ("_generic", "_policy", "_python", "_required", "_values")

    def __init__(self, policy: Policy, dicts: Dictionaries) -> None:
        self._policy = policy
        nodes = NODES
        self._generic = {n: tuple(_Generic(s, dicts) for s in fields_of(n)) for n in nodes}
        self._python = {n: _Python(n, dicts) for n in nodes}
        self._values = {(n, f): self._compile_values(n, f) for n in nodes for f in (False, True)}
        self._required = {
            (n, lg): self._compile_required(n, lg) for n in nodes for lg in (False, True)
        }

    def has_values(self, node: str, fast: bool) -> bool:
        """Whether `check_values` has anything to do for this node."""
        p = self._python[node]
        return bool(p.decimals or p.multi or (not fast and (p.durations or p.ints)))

    def has_required(self, node: str, legacy: bool) -> bool:
        """Whether `check_required` has anything to do for this node and flavour."""
        p = self._python[node]
        return bool(p.req_L if legacy else p.req_A)

    def _emit(self, out: list[ValidationError], rule: str, path: str) -> None:
        err = self._policy.error(rule, path)
        if err is not None:
            out.append(err)

    def check_generic(self, obj: Any, node: str, prefix: str, out: list[ValidationError]) -> None:
        """REQ_FIELD (all-flavour fields), FMT_LENGTH and DICT_VALUE on one object."""
        for g in self._generic[node]:
            value = getattr(obj, g.field)
            if value is None or value == "":
                if g.required:
                    self._emit(out, "REQ_FIELD", prefix + g.field)
                continue
            if not isinstance(value, str):
                continue
            if g.length is not None and len(value) > g.length:
                self._emit(out, "FMT_LENGTH", prefix + g.field)
            if g.dict is not None and value not in g.values:
                self._emit(out, "DICT_VALUE", prefix + g.field)

    def check_values(
        self, obj: Any, node: str, prefix: str, out: list[ValidationError], fast: bool = False
    ) -> None:
        """Durations, integer bounds, numbers, multi-valued dictionaries, as sent.

        Runs before `normalise`, so a derived amount is never reported in place of the one
        that was sent. `fast=True` on the fast path: its decoder already bounds every integer
        and checks every duration (unless FMT_DURATION is off, when nothing reports it).
        """
        self._values[(node, fast)](obj, prefix, out)

    def check_required(
        self, obj: Any, node: str, prefix: str, legacy: bool, out: list[ValidationError]
    ) -> None:
        """Fields required in one flavour only, or derived (after `normalise`)."""
        self._required[(node, legacy)](obj, prefix, out)

    def _compile_required(self, node: str, legacy: bool) -> Callable[..., None]:
        plan = self._python[node]
        lines = ["def check(obj, prefix, out):"]
        for name in plan.req_L if legacy else plan.req_A:
            lines += [f"    v = obj.{name}", "    if v is None or v == '':",
                      f"        emit(out, 'REQ_FIELD', prefix + '{name}')"]  # fmt: skip
        return self._exec(node, lines, {})

    def _compile_values(self, node: str, fast: bool) -> Callable[..., None]:
        """A straight-line checker for one node: no loop, no getattr (it is the hot path)."""
        plan = self._python[node]
        lines = ["def check(obj, prefix, out):"]
        for name in () if fast else plan.durations:
            lines += [f"    v = obj.{name}", "    if v and parse_duration(v) is None:",
                      f"        emit(out, 'FMT_DURATION', prefix + '{name}')"]  # fmt: skip
        if not fast:
            for name, limit in plan.ints:
                lines += [f"    v = obj.{name}", f"    if v is not None and not 0 <= v < {limit}:",
                          f"        emit(out, 'FMT_NUMBER', prefix + '{name}')"]  # fmt: skip
        for i, (name, _limit, scale, money) in enumerate(plan.decimals):
            # an alias filled by normalise (same object) is not checked a second time
            alias = ALIASES.get(name)
            guard = f" and v is not obj.{alias}" if alias else ""
            lines += [f"    v = obj.{name}", f"    if v is not None{guard}:",
                      "        if not v.is_finite():",
                      f"            emit(out, 'FMT_NUMBER', prefix + '{name}')"]  # fmt: skip
            negative = "AMT_NONNEG" if money else "FMT_NUMBER"
            lines += ["        elif v < 0:",
                      f"            emit(out, '{negative}', prefix + '{name}')",
                      "        else:",
                      "            t = str(v)",
                      "            d = t.find('.')",
                      f"            if (not v < LIMITS[{i}] or (d >= 0 and len(t) - d - 1 > "
                      f"{scale}) or 'E' in t) and not number_ok(v, LIMITS[{i}], {scale}):",
                      f"                emit(out, 'FMT_NUMBER', prefix + '{name}')"]  # fmt: skip
        for i, (name, sep, _values) in enumerate(plan.multi):
            lines += [f"    v = obj.{name}",
                      f"    if v and any(p not in MULTI[{i}] for p in v.split({sep!r})):",
                      f"        emit(out, 'DICT_VALUE', prefix + '{name}')"]  # fmt: skip
        scope: dict[str, Any] = {
            "parse_duration": parse_duration,
            "number_ok": _number_ok,
            "LIMITS": tuple(limit for _n, limit, _s, _m in plan.decimals),
            "MULTI": tuple(values for _n, _sep, values in plan.multi),
        }
        return self._exec(node, lines, scope)

    def _exec(self, node: str, lines: list[str], scope: dict[str, Any]) -> Callable[..., None]:
        lines.append("    return None")
        scope["emit"] = self._emit
        exec(compile("\n".join(lines), f"<field rules {node}>", "exec"), scope)
        checker: Callable[..., None] = scope["check"]
        return checker
