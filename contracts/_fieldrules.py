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

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from contracts._dicts import Dictionaries
from contracts._errors import ValidationError
from contracts._fields import LIST_NODES, NODES, FieldSpec, fields_of, spec_of
from contracts._normalise import normalise
from contracts._rulebook import ConfiguredRules
from contracts._timefmt import parse_duration

__all__ = [
    "ALIASES",
    "DERIVED",
    "MULTI_DICT",
    "FieldRules",
    "duration_ok",
    "field_path",
    "strict_required",
]

#: filled by `normalise` for some flavours: their required check runs after normalisation
DERIVED = frozenset({"psn_cash_pay", "medfee_sumamt", "fund_pay_sumamt", "insutype"})
_INDEX = re.compile(r"\[\d*\]")
#: dictionary fields that may hold several codes joined by a separator
MULTI_DICT = {"refldept_dept": "→"}
#: 4101's name of an amount -> the canonical name `normalise` copies it to (and back)
ALIASES = {"psn_cashpay": "psn_cash_pay"}


#: the sealed fast path's answer to a failed values guard (see `compile_fast_path`)
_UNSEALED_MARK = "        return UNSEALED(raw, received_at)"
_UNSEALED_NOT = "        pass"
_UNSEALED_BACK = "        return None"


def field_path(node: str, index: int, field: str) -> str:
    """A finding's path: `inf_time` (envelope), `setlinfo.adm_time`, `oprninfo[1].anst_endtime`."""
    if node == "envelope":
        return field
    return f"setlinfo.{field}" if node == "setlinfo" else f"{node}[{index}].{field}"


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

    __slots__ = ("decimals", "durations", "ints", "multi", "req_A", "req_L", "texts")

    def __init__(self, node: str, dicts: Dictionaries) -> None:
        specs = fields_of(node)
        self.durations = tuple(s.field for s in specs if s.type == "duration")
        self.texts = frozenset(s.field for s in specs if s.type in ("str", "duration"))
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


_DURATIONS_OK: set[str] = set()


def duration_ok(text: str) -> bool:
    """`parse_duration(text) is not None`, remembering the valid texts (a few thousand).

    The fast path's guard tests membership in the set first (one hash lookup per field).
    """
    if text in _DURATIONS_OK:
        return True
    if parse_duration(text) is None:
        return False
    if len(_DURATIONS_OK) < 100_000:
        _DURATIONS_OK.add(text)
    return True


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
    """The field-level rules of one rule configuration and one dictionary version."""

    __slots__ = (
        "_checked",
        "_checked_sealed",
        "_dict_errors",
        "_dicts",
        "_generic",
        "_generic_by_field",
        "_generic_checks",
        "_generic_lists",
        "_list_required",
        "_list_values",
        "_policy",
        "_python",
        "_required",
        "_values",
    )

    def __init__(self, policy: ConfiguredRules, dicts: Dictionaries) -> None:
        self._policy = policy
        self._dicts = dicts
        #: DICT_VALUE errors with their allowed values, by path (formatted once each)
        self._dict_errors: dict[str, ValidationError] = {}
        self._checked: Callable[..., tuple[Any, list[ValidationError]]] | None = None
        self._checked_sealed: Callable[..., tuple[Any, list[ValidationError]] | None] | None = None
        nodes = NODES
        self._generic = {n: tuple(_Generic(s, dicts) for s in fields_of(n)) for n in nodes}
        self._generic_by_field = {(n, g.field): g for n in nodes for g in self._generic[n]}
        self._python = {n: _Python(n, dicts) for n in nodes}
        self._generic_checks = {n: self._compile_generic(n) for n in nodes}
        self._generic_lists = {
            n: self._compile_list(n, self._generic_checks[n], self._generic_guard(n))
            for n in LIST_NODES
        }
        self._values = {(n, f): self._compile_values(n, f) for n in nodes for f in (False, True)}
        self._required = {
            (n, lg): self._compile_required(n, lg) for n in nodes for lg in (False, True)
        }
        self._list_values = {
            (n, f): self._compile_list(
                n, self._values[(n, f)], self._values_guard(n, f), self._numbers_guard(n)
            )
            for n in LIST_NODES
            for f in (False, True)
        }
        self._list_required = {
            (n, lg): self._compile_list(n, self._required[(n, lg)], self._required_guard(n, lg))
            for n in LIST_NODES
            for lg in (False, True)
        }

    def has_values(self, node: str, fast: bool) -> bool:
        """Whether `check_values` has anything to do for this node."""
        p = self._python[node]
        return bool(p.decimals or p.multi or p.durations or (not fast and p.ints))

    def has_required(self, node: str, legacy: bool) -> bool:
        """Whether `check_required` has anything to do for this node and flavour."""
        p = self._python[node]
        return bool(p.req_L if legacy else p.req_A)

    def _emit(self, out: list[ValidationError], rule: str, path: str) -> None:
        err = self._policy.error(rule, path)
        if err is not None:
            out.append(self._with_allowed(err) if rule == "DICT_VALUE" else err)

    def _with_allowed(self, err: ValidationError) -> ValidationError:
        """A DICT_VALUE error that names the allowed values: naming only the dictionary sent
        integrators to look it up (found: issue 14)."""
        hit = self._dict_errors.get(err.field)
        if hit is not None:  # one policy per FieldRules: same path, same error
            return hit
        spec = spec_of(_INDEX.sub("", err.field))
        if spec is None or spec.dict is None or not self._dicts.has(spec.dict):
            return err
        cn, en = self._dicts.allowed(spec.dict)
        hit = msgspec.structs.replace(
            err, message=f"{err.message}（{cn}）", message_en=f"{err.message_en} ({en})"
        )
        if len(self._dict_errors) < 10_000:  # paths carry list indexes: bounded
            self._dict_errors[err.field] = hit
        return hit

    def check_generic(self, obj: Any, node: str, prefix: str, out: list[ValidationError]) -> None:
        """REQ_FIELD (all-flavour fields), FMT_LENGTH and DICT_VALUE on one object.

        Generated per node (`_compile_generic`): the full engine runs it on every object of
        every record the strict decoder refuses, and a loop of `getattr` over the field
        table was most of that engine's time.
        """
        self._generic_checks[node](obj, prefix, out)

    def check_list_generic(self, entries: list[Any], node: str, out: list[ValidationError]) -> None:
        """`check_generic` on every entry of a list node (paths `node[i].field`), each entry
        behind a guard that proves it clean (the path is built only for an entry that is not)."""
        self._generic_lists[node](entries, out)

    def _generic_guard(self, node: str) -> str:
        """An expression on `obj`, true only if `check_generic` would find nothing on it."""
        return " and ".join(t for t in self._generic_terms(node) if t) or "True"

    def _generic_terms(self, node: str) -> list[str | None]:
        """Per generic field, an expression true only if that field is clean (None: it
        cannot fail). A dictionary whose values all fit the length needs no length test."""
        texts = {s.field for s in fields_of(node) if s.type in ("str", "duration")}
        terms: list[str | None] = []
        for i, g in enumerate(self._generic[node]):
            name = g.field
            if name not in texts:
                terms.append(f"obj.{name} is not None" if g.required else None)
                continue
            tests = []
            fits = g.length is None or all(len(v) <= g.length for v in g.values)
            if g.length is not None and (g.dict is None or not fits):
                tests.append(f"len(v) <= {g.length}")
            if g.dict is not None:
                tests.append(f"v in VALUES_{i}")
            if g.required:
                terms.append(f"((v := obj.{name}).__class__ is str and v != ''"
                             + "".join(f" and {t}" for t in tests) + ")")  # fmt: skip
            elif tests:
                terms.append(f"((v := obj.{name}) is None or v.__class__ is str and "
                             f"(v == '' or {' and '.join(tests)}))")  # fmt: skip
            else:
                terms.append(None)
        return terms

    def check_generic_reference(
        self, obj: Any, node: str, prefix: str, out: list[ValidationError]
    ) -> None:
        """`check_generic` as a plain loop over the field table (what the tests compare the
        generated checker with)."""
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

    def check_generic_field(
        self, entries: list[Any], node: str, field: str, out: list[ValidationError]
    ) -> None:
        """`check_generic_reference` for one field, on `setlinfo` (`[obj]`) or each entry of
        a list node: what the full engine finds on a record the strict types accept but for
        that field."""
        g = self._generic_by_field[node, field]
        for i, obj in enumerate(entries):
            value = getattr(obj, field)
            if value is None or value == "":
                if g.required:
                    self._emit(out, "REQ_FIELD", field_path(node, i, field))
                continue
            if not isinstance(value, str):
                continue
            if g.length is not None and len(value) > g.length:
                self._emit(out, "FMT_LENGTH", field_path(node, i, field))
            if g.dict is not None and value not in g.values:
                self._emit(out, "DICT_VALUE", field_path(node, i, field))

    def _compile_generic(self, node: str) -> Callable[..., None]:
        """Straight-line `check_generic` for one node: one attribute read per field, no loop;
        the fields in chunks of eight, each chunk behind its guard (`_generic_terms`), so a
        record with one bad field pays the exact test of eight fields, not of a hundred.

        A text field tests `not v` (None or ""); another type is "" only if someone put a
        str there, so it tests `v is None` first and the class second (`Decimal == ""` goes
        through an ABC instance check).
        """
        lines = ["def check(obj, prefix, out):"]
        scope: dict[str, Any] = {}
        texts = {s.field for s in fields_of(node) if s.type in ("str", "duration")}
        generic = self._generic[node]
        terms = self._generic_terms(node)
        scope.update((f"VALUES_{i}", g.values) for i, g in enumerate(generic) if g.dict)
        live = [i for i, t in enumerate(terms) if t is not None]
        for start in range(0, len(live), 8):
            chunk = live[start : start + 8]
            guard = " and ".join(str(terms[i]) for i in chunk)
            lines.append(f"    if not ({guard}):")
            for i in chunk:
                g = generic[i]
                name = g.field
                lines.append(f"        v = obj.{name}")
                if name in texts:
                    lines.append("        if v is None or v == '':")
                else:
                    lines.append("        if v is None or (v.__class__ is str and v == ''):")
                if g.required:
                    lines.append(f"            emit(out, 'REQ_FIELD', prefix + '{name}')")
                else:
                    lines.append("            pass")
                if g.length is None and g.dict is None:
                    continue
                lines.append("        elif isinstance(v, str):")
                pad = " " * 16
                if g.length is not None:
                    lines += [f"            if len(v) > {g.length}:",
                              f"{pad}emit(out, 'FMT_LENGTH', prefix + '{name}')"]  # fmt: skip
                if g.dict is not None:
                    lines += [f"            if v not in VALUES_{i}:",
                              f"{pad}emit(out, 'DICT_VALUE', prefix + '{name}')"]  # fmt: skip
        return self._exec(f"{node} generic", lines, scope)

    def check_values(
        self, obj: Any, node: str, prefix: str, out: list[ValidationError], fast: bool = False
    ) -> None:
        """Durations, integer bounds, numbers, multi-valued dictionaries, as sent.

        Runs before `normalise`, so a derived amount is never reported in place of the one
        that was sent. `fast=True` on the fast path: its decoder already bounds every integer
        (durations are checked here on both paths).
        """
        self._values[(node, fast)](obj, prefix, out)

    def check_list_values(
        self, entries: list[Any], node: str, out: list[ValidationError], fast: bool = False
    ) -> None:
        """`check_values` on every entry of a list node (paths `node[i].field`)."""
        self._list_values[(node, fast)](entries, out)

    def check_list_required(
        self, entries: list[Any], node: str, legacy: bool, out: list[ValidationError]
    ) -> None:
        """`check_required` on every entry of a list node (paths `node[i].field`)."""
        self._list_required[(node, legacy)](entries, out)

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
        """The values checker of one node; on the fast path behind its guard (see below)."""
        exact = self._compile_exact_values(node, fast)
        guard = self._values_guard(node, fast)
        if guard is None:
            return exact
        lines = ["def check(obj, prefix, out):", f"    if not ({guard}):",
                 "        exact(obj, prefix, out)"]  # fmt: skip
        return self._exec(node, lines, {"exact": exact, **self._guard_scope(node)})

    def _values_guard(self, node: str, fast: bool) -> str | None:
        """A cheap expression on `obj`, true only if the exact checker would find nothing.

        The common clean case costs a few C calls per field: `same_quantum` proves that a
        Decimal has the usual exponent (then `str` and `find` are not needed), one chained
        comparison proves the bounds. When the guard is false the exact checker decides, so
        the guard can only ever be conservative. The full engine's guard also bounds the
        integers (the strict decoder does that on the fast path).
        """
        terms = self._values_terms(node)
        if not fast:
            plan = self._python[node]
            terms += [f"((v := obj.{n}) is None or 0 <= v < {limit})" for n, limit in plan.ints]
        return " and ".join(terms) or "True"

    def _numbers_guard(self, node: str) -> str | None:
        """The Decimal terms of the values guard alone: false when a Decimal of `obj` is
        unusual (the sealed fast path then hands the record over), None without Decimals."""
        return " and ".join(self._decimal_terms(node)) or None

    def _values_terms(self, node: str) -> list[str]:
        plan = self._python[node]
        terms = [f"(not (v := obj.{name}) or v in DURATIONS_OK)" for name in plan.durations]
        terms += self._decimal_terms(node)
        for i, (name, sep, _values) in enumerate(plan.multi):
            terms.append(
                f"(not (v := obj.{name}) or v in MULTI[{i}] or "
                f"all(map(MULTI[{i}].__contains__, v.split({sep!r}))))"
            )
        return terms

    def _decimal_terms(self, node: str) -> list[str]:
        plan = self._python[node]
        terms: list[str] = []
        for i, (name, _limit, _scale, money) in enumerate(plan.decimals):
            # the usual exponent first: fen for money, units for ages, weights, volumes.
            # `not is_signed()` (finite, by the exponent): at least 0, and not a negative
            # zero, which the sealed decoder keeps where the strict one reads "-0" as 0
            usual, other = (f"QUANTUM_{i}", "ONE") if money else ("ONE", f"QUANTUM_{i}")
            terms.append(
                f"((v := obj.{name}) is None or (v.same_quantum({usual}) or "
                f"v.same_quantum({other})) and not v.is_signed() and v < LIMIT_{i})"
            )
        return terms

    def _required_guard(self, node: str, legacy: bool) -> str:
        """True only if `check_required` would find nothing."""
        return " and ".join(self._required_terms(node, legacy)) or "True"

    def _required_terms(self, node: str, legacy: bool) -> list[str]:
        """Per field: text must be truthy (not None, not ""); other types not None.

        (`Decimal != ""` would be true as well, but through an ABC instance check.)
        """
        plan = self._python[node]
        names = plan.req_L if legacy else plan.req_A
        return [f"obj.{n}" if n in plan.texts else f"obj.{n} is not None" for n in names]

    def _guard_scope(self, node: str) -> dict[str, Any]:
        plan = self._python[node]
        scope: dict[str, Any] = {
            "DURATIONS_OK": _DURATIONS_OK,
            "ONE": Decimal(1),
            "MULTI": tuple(values for _n, _sep, values in plan.multi),
        }
        for i, (_name, limit, scale, _money) in enumerate(plan.decimals):
            scope[f"LIMIT_{i}"] = limit  # names, not a tuple: a global load beats a subscript
            scope[f"QUANTUM_{i}"] = Decimal(1).scaleb(-scale)
        return scope

    def _compile_list(
        self,
        node: str,
        exact: Callable[..., None],
        guard: str | None,
        numbers: str | None = None,
    ) -> Callable[..., bool]:
        """Run a per-entry checker over a list node; the path prefix is built only on demand.

        Returns whether an entry that failed the guard also fails `numbers` (the values
        checkers: an unusual Decimal, see `compile_fast_path`).
        """
        if guard == "True":
            lines = ["def check(entries, out):", "    return False"]
            scope: dict[str, Any] = {}
        else:
            lines = ["def check(entries, out):", "    unusual = False",
                     "    for i, obj in enumerate(entries):"]  # fmt: skip
            if guard is not None:
                lines += [f"        if {guard}:", "            continue"]
            if numbers is not None:
                lines += [f"        if not ({numbers}):", "            unusual = True"]
            lines += [f"        exact(obj, f'{node}[{{i}}].', out)", "    return unusual"]
            scope = {"exact": exact, **self._guard_scope(node)}
            scope.update(
                (f"VALUES_{i}", g.values) for i, g in enumerate(self._generic[node]) if g.dict
            )
        exec(compile("\n".join(lines), f"<field rules {node} list>", "exec"), scope)
        checker: Callable[..., bool] = scope["check"]
        return checker

    def _compile_exact_values(self, node: str, fast: bool) -> Callable[..., None]:
        """A straight-line checker for one node: no loop, no getattr (it is the hot path)."""
        plan = self._python[node]
        lines = ["def check(obj, prefix, out):"]
        for name in plan.durations:
            lines += [f"    v = obj.{name}", "    if v and not duration_ok(v):",
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
            "duration_ok": duration_ok,
            "number_ok": _number_ok,
            "LIMITS": tuple(limit for _n, limit, _s, _m in plan.decimals),
            "MULTI": tuple(values for _n, _sep, values in plan.multi),
        }
        return self._exec(node, lines, scope)

    def compile_fast_path(
        self,
        decode: Callable[[Any], Any],
        slow: Callable[..., tuple[Any, list[ValidationError]]],
        check: Callable[..., None],
        diagnoses: Any = None,
        operations: Any = None,
        unsealed: Callable[..., tuple[Any, list[ValidationError]]] | None = None,
    ) -> Callable[..., tuple[Any, list[ValidationError]]]:
        """`Validator.validate_json` as one generated function.

        `fast(raw, received_at) -> (envelope, findings)`: the strict `decode`; if it refuses
        the document, `slow(raw, received_at, error)` (the full engine, told what the strict
        decoder refused); otherwise, unrolled, the
        values of `setlinfo` (its guard inline), of each list node that has any,
        `normalise`, the required fields of the envelope's flavour, then the cross-field
        `check` (`RecordChecks.check`, codes trusted: generated from the cross-field rule
        registry, each rule behind its own pre-check). Same calls, same order, as
        `_values(fast=True)`, `normalise`, `_required` and `RecordChecks.run`.

        `diagnoses` / `operations`: the codes of the latest tables (a container). The codes
        are trusted (no lookup by the checks) only if every `diseinfo`, `wm_dise_code` and
        `oprninfo` code is in them; otherwise the checks look each one up (and report it).
        None: trusted without a test (the decoder enforces the codes).

        `unsealed(raw, received_at)`: given, `decode` is sealed (`strict_envelope_type`),
        and a record that fails a values guard is handed to it whole: what the sealed
        decoder lets through decodes the same under the strict one, except what a values
        guard stops (a negative zero, kept where the strict decoder reads `"-0"` as 0; a
        number out of float's range, which only a Decimal can hold there). So a clean
        record never pays the look for numbers out of range (`_numbers`). `checked`
        (decoded by other means, the look done) runs the values checks instead.
        """
        scope: dict[str, Any] = {
            "check": check,
            "normalise": normalise,
            "decode": decode,
            "slow": slow,
            "REFUSED": (msgspec.ValidationError, msgspec.DecodeError),
            "DIAG": diagnoses,
            "OPRN": operations,
            "UNSEALED": unsealed,
        }
        scope.update(self._guard_scope("setlinfo"))
        scope["values_setlinfo"] = self._values[("setlinfo", True)]
        guard = "\n        and ".join(self._values_terms("setlinfo")) or "True"
        head = [
            "def fast(raw, received_at):",
            "    try:",
            "        env = decode(raw)",
            "    except REFUSED as exc:",
            "        return slow(raw, received_at, exc)",
        ]
        lines = [
            "    out = []",
            "    s = env.input",
            "    obj = sl = s.setlinfo",
            "    infno = env.infno",
            f"    if not (\n        {guard}\n    ):",
            f"        if not ({self._numbers_guard('setlinfo') or 'True'}):",
            "    " + _UNSEALED_MARK,  # (`pass` in `checked`, or not sealed)
            "        values_setlinfo(sl, 'setlinfo.', out)",
        ]
        for node in LIST_NODES:
            if self.has_values(node, True):
                scope[f"values_{node}"] = self._list_values[(node, True)]
                if self._numbers_guard(node) is None:
                    lines += [f"    entries = s.{node}", "    if entries:",
                              f"        values_{node}(entries, out)"]  # fmt: skip
                    continue
                lines += [f"    entries = s.{node}",
                          f"    if entries and values_{node}(entries, out):",
                          _UNSEALED_MARK]  # fmt: skip
        # = normalise(s, infno): its first step (the cash-payment alias) inline, the rest
        # only concerns 4101 (normalise repeats the alias step, which changes nothing then)
        lines += [
            "    if sl.psn_cash_pay is None:",
            "        sl.psn_cash_pay = sl.psn_cashpay",
            "    elif sl.psn_cashpay is None:",
            "        sl.psn_cashpay = sl.psn_cash_pay",
            "    if infno == '4101':",
            "        normalise(s, infno)",
        ]
        if diagnoses is None and operations is None:
            lines.append("    trusted = True")
        else:
            # a for-else per list: no generator, no call (the common case finds every code)
            lines += [
                "    trusted = True",
                "    c = sl.wm_dise_code",
                "    if c and c not in DIAG:",
                "        trusted = False",
                "    else:",
                "        for e in s.diseinfo:",
                "            c = e.diag_code",
                "            if c and c not in DIAG:",
                "                trusted = False",
                "                break",
                "        else:",
                "            for e in s.oprninfo:",
                "                c = e.oprn_oprt_code",
                "                if c and c not in OPRN:",
                "                    trusted = False",
                "                    break",
            ]
        for legacy in (True, False):
            flavour = "L" if legacy else "A"
            lines.append("    if infno == '4101':" if legacy else "    else:")
            scope[f"required_{flavour}"] = self._required[("setlinfo", legacy)]
            required = "\n            and ".join(self._required_terms("setlinfo", legacy))
            lines += [f"        if not (\n            {required or 'True'}\n        ):",
                      f"            required_{flavour}(sl, 'setlinfo.', out)"]  # fmt: skip
            for node in LIST_NODES:
                if self.has_required(node, legacy):
                    scope[f"required_{flavour}_{node}"] = self._list_required[(node, legacy)]
                    lines += [f"        entries = s.{node}", "        if entries:",
                              f"            required_{flavour}_{node}(entries, out)"]  # fmt: skip
            lines.append(
                f"        check(s, out, {legacy}, received_at, env.mdtrtarea_admvs, "
                "env.fixmedins_code, env.insuplc_admdvs, trusted)"
            )
        lines.append("    return env, out")
        checked_lines = [x.replace(_UNSEALED_MARK, _UNSEALED_NOT) for x in lines]
        source = "\n".join(head + (lines if unsealed is not None else checked_lines))
        # the same body without the decode: for a record decoded strictly by other means
        # (`Validator._strict_relaxed_json`)
        checked_source = "\n".join(["def checked(env, received_at):", *checked_lines])
        # and for a record decoded sealed by other means: where the sealed fast path hands
        # the record to `unsealed`, it answers None (the caller hands it over)
        sealed_lines = [x.replace(_UNSEALED_MARK, _UNSEALED_BACK) for x in lines]
        sealed_source = "\n".join(["def checked_sealed(env, received_at):", *sealed_lines])
        exec(compile(source, "<fast path>", "exec"), scope)
        exec(compile(checked_source, "<fast path checks>", "exec"), scope)
        exec(compile(sealed_source, "<fast path checks, sealed>", "exec"), scope)
        self._checked_sealed = scope["checked_sealed"]
        fast: Callable[..., tuple[Any, list[ValidationError]]] = scope["fast"]
        fast.__doc__ = source  # readable when debugging: `validator._fast.__doc__`
        self._checked = scope["checked"]
        return fast

    def checks_after_decode(self) -> Callable[..., tuple[Any, list[ValidationError]]]:
        """`checked(env, received_at) -> (env, findings)`: the fast path of the last
        `compile_fast_path` after its decode, for a record that satisfies the strict types."""
        if self._checked is None:
            raise RuntimeError("compile_fast_path first")
        return self._checked

    def checks_after_sealed_decode(
        self,
    ) -> Callable[..., tuple[Any, list[ValidationError]] | None]:
        """`checked_sealed(env, received_at) -> (env, findings) | None`: `checks_after_decode`
        for a record a sealed decoder (`strict_envelope_type(sealed=True)`) accepted; None
        where the sealed fast path hands a record to `unsealed` (a values guard failed)."""
        if self._checked_sealed is None:
            raise RuntimeError("compile_fast_path first")
        return self._checked_sealed

    def _exec(self, node: str, lines: list[str], scope: dict[str, Any]) -> Callable[..., None]:
        lines.append("    return None")
        scope["emit"] = self._emit
        exec(compile("\n".join(lines), f"<field rules {node}>", "exec"), scope)
        checker: Callable[..., None] = scope["check"]
        return checker
