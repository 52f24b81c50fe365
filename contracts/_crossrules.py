"""The registry of cross-field rules: each one a (may-fire pre-check, check) pair.

A rule's `check` finds what it finds and appends it to `out`; its `may_fire` says, with a few
comparisons, whether the check *could* find anything on this record. It must be
conservative: False only when the check would find nothing. The dispatcher that runs on
every record (`compile_dispatcher`, used by both the fast and the slow path) is generated
from the registry: for each rule in order, `if <may_fire>: <check>`. There is no other place
a skip condition lives, so a rule registered here cannot be silently skipped, and a rule
cannot be registered without its pre-check (`always` says "may fire on any record").

Both functions name what they need from the record by their parameter names, out of `FACTS`
(computed once per record by the dispatcher); a pre-check whose body is one `return <expr>`
defined in the same module as the dispatcher's rules is inlined (no call on the hot path).
`compile_dispatcher(..., guarded=False)` runs every check unconditionally: the full engine
the tests compare the dispatcher with.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "CHECK_FACTS",
    "FACTS",
    "CrossRule",
    "CrossRules",
    "always",
    "compile_dispatcher",
    "compile_facts",
]

#: what a pre-check may ask for (the dispatcher's locals, computed once per record):
#: `self` the RecordChecks, `s` the Settlement, `sl` its setlinfo, `legacy` (4101),
#: `received_at` (naive CST), `area`/`inst`/`insured` (the envelope's mdtrtarea_admvs,
#: fixmedins_code, insuplc_admdvs), `trusted` (codes proven in the table in force), `latest`
#: (the tables in force on `day` are the latest: a code found in them needs no other lookup),
#: `adm`, `dscg`, `birth`, `day` (the discharge date), `age_days` (at admission, None if
#: unknown)
FACTS = (
    "self", "s", "sl", "legacy", "received_at", "area", "inst", "insured", "trusted",
    "latest", "adm", "dscg", "birth", "day", "age_days",
)  # fmt: skip
#: what a check may ask for: the facts and `out`, the findings' list
CHECK_FACTS = (*FACTS, "out")

F = TypeVar("F", bound=Callable[..., object])


def always() -> bool:
    """The pre-check of a rule that may find something on any record."""
    return True


@dataclass(frozen=True)
class CrossRule:
    name: str
    may_fire: Callable[..., object]
    check: Callable[..., object]

    @property
    def may_args(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.may_fire).parameters)

    @property
    def check_args(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.check).parameters)


def _arguments(func: Callable[..., object], allowed: tuple[str, ...], what: str) -> None:
    params = inspect.signature(func).parameters.values()
    for p in params:
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) or p.name not in allowed:
            raise TypeError(
                f"{what} {getattr(func, '__qualname__', func)!r}: parameter {p.name!r} is not "
                f"one of {', '.join(allowed)}"
            )


class CrossRules:
    """The cross-field rules, in the order they run (the order of their findings)."""

    def __init__(self, rules: Iterable[CrossRule] = ()) -> None:
        self._rules: list[CrossRule] = []
        for rule in rules:
            self.register(rule.name, rule.check, may_fire=rule.may_fire)

    def register(
        self, name: str, check: Callable[..., object], *, may_fire: Callable[..., object] | None
    ) -> CrossRule:
        """Add a rule. Refused without a callable pre-check, or with a parameter that is not
        a fact (`FACTS`; `out` for the check), or under a name already taken."""
        if may_fire is None or not callable(may_fire):
            raise TypeError(
                f"cross-field rule {name!r} needs its may-fire pre-check "
                "(`always` if it may find something on any record)"
            )
        if not callable(check):
            raise TypeError(f"cross-field rule {name!r}: the check is not callable")
        if any(r.name == name for r in self._rules):
            raise ValueError(f"cross-field rule {name!r} is already registered")
        _arguments(may_fire, FACTS, f"the pre-check of {name!r}")
        _arguments(check, CHECK_FACTS, f"the check of {name!r}")
        rule = CrossRule(name, may_fire, check)
        self._rules.append(rule)
        return rule

    def rule(self, name: str, *, may_fire: Callable[..., object] | None) -> Callable[[F], F]:
        """Decorator form of `register` (on a RecordChecks method)."""

        def decorate(check: F) -> F:
            self.register(name, check, may_fire=may_fire)
            return check

        return decorate

    def __iter__(self) -> Iterator[CrossRule]:
        return iter(tuple(self._rules))

    def __len__(self) -> int:
        return len(self._rules)

    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self._rules)

    def copy(self) -> CrossRules:
        return CrossRules(self._rules)


def _inline(func: Callable[..., object], module_globals: dict[str, Any]) -> str | None:
    """The expression of a pre-check `def f(...): return <expr>` of the rules' own module
    (so every name in it means the same in the dispatcher), else None (it is called)."""
    if getattr(func, "__globals__", None) is not module_globals or func is always:
        return None
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef) or node.decorator_list:
        return None
    body = [
        b for b in node.body if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))
    ]
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return None
    value = _Unrolled(module_globals).visit(body[0].value)
    params = {a.arg for a in node.args.args}
    for n in ast.walk(value):
        if isinstance(n, (ast.NamedExpr, ast.Lambda, ast.comprehension)):
            return None  # would bind names in the dispatcher, or scope differently
        if isinstance(n, ast.Name) and n.id in CHECK_FACTS and n.id not in params:
            return None  # a global the dispatcher's local of that name would shadow
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "bool"
        and "bool" not in module_globals
        and len(value.args) == 1
        and not value.keywords
    ):
        value = value.args[0]  # `if` tests the truth itself: no call
    return ast.unparse(value)


def _plain(node: ast.expr) -> bool:
    """A name or a chain of attributes of one (`sl.setl_id`): no call, cheap to repeat."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


class _Substitute(ast.NodeTransformer):
    def __init__(self, name: str, by: ast.expr) -> None:
        self.name, self.by = name, by

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self.by if node.id == self.name else node


class _Unrolled(ast.NodeTransformer):
    """`all(<test> for v in (a, b))` -> `(<test of a> and <test of b>)` (`any`: `or`),
    over a literal tuple of names or attributes: no generator, no call. The result is used
    for its truth (the dispatcher's `if`, `not`), which the unrolled form keeps."""

    def __init__(self, module_globals: dict[str, Any]) -> None:
        self.shadowed = module_globals

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        func = node.func
        if not (
            isinstance(func, ast.Name)
            and func.id in ("all", "any")
            and func.id not in self.shadowed
            and len(node.args) == 1
            and not node.keywords
            and isinstance(gen := node.args[0], ast.GeneratorExp)
            and len(gen.generators) == 1
        ):
            return node
        loop = gen.generators[0]
        if not (
            isinstance(loop.target, ast.Name)
            and not loop.ifs
            and not loop.is_async
            and isinstance(loop.iter, ast.Tuple)
            and loop.iter.elts
            and all(_plain(e) for e in loop.iter.elts)
        ):
            return node
        name = loop.target.id
        if any(
            isinstance(n, (ast.NamedExpr, ast.Lambda, ast.comprehension)) for n in ast.walk(gen.elt)
        ):
            return node
        tests = [
            _Substitute(name, e).visit(ast.parse(ast.unparse(gen.elt), mode="eval").body)
            for e in loop.iter.elts
        ]
        op = ast.And() if func.id == "all" else ast.Or()
        return ast.BoolOp(op=op, values=tests) if len(tests) > 1 else tests[0]


_PROLOGUE = """\
def dispatch(s, out, legacy, received_at, area, inst, insured, trusted):
    sl = s.setlinfo
    adm = sl.adm_time
    dscg = sl.dscg_time
    birth = sl.brdy
    if received_at is not None and received_at.tzinfo is not None:
        received_at = received_at.astimezone(CST).replace(tzinfo=None)
    day = dscg.date() if dscg is not None else None
    latest = LATEST.get(day)
    if latest is None:
        latest = LATEST[day] = IS_LATEST(day)
    trusted = trusted and latest
    if birth is not None and adm is not None:
        age_days = adm.toordinal() - birth.toordinal()
        if age_days < 0:
            age_days = None
    else:
        age_days = AGE_UNKNOWN_BIRTH(sl)"""


def compile_dispatcher(
    rules: CrossRules,
    self: object,
    scope: dict[str, Any],
    *,
    guarded: bool = True,
    module_globals: dict[str, Any] | None = None,
) -> Callable[..., None]:
    """`dispatch(s, out, legacy, received_at, area, inst, insured, trusted)`: every rule of
    `rules`, in order, each behind its own pre-check (`guarded=False`: none).

    `scope` supplies CST, LATEST (day -> tables in force are the latest), IS_LATEST and
    AGE_UNKNOWN_BIRTH(sl) for the prologue; pre-checks defined in `module_globals` are
    inlined, any other is called.
    """
    namespace: dict[str, Any] = dict(module_globals or {})
    namespace.update(scope)
    namespace["self"] = self
    lines = [_PROLOGUE]
    for i, rule in enumerate(rules):
        namespace[f"CHECK_{i}"] = rule.check
        call = f"CHECK_{i}({', '.join(rule.check_args)})"
        if not guarded or rule.may_fire is always:
            lines.append(f"    {call}  # {rule.name}")
            continue
        expr = _inline(rule.may_fire, module_globals) if module_globals is not None else None
        if expr is None:
            namespace[f"MAY_{i}"] = rule.may_fire
            expr = f"MAY_{i}({', '.join(rule.may_args)})"
        lines += [f"    if {expr}:  # {rule.name}", f"        {call}"]
    lines.append("    return None")
    source = "\n".join(lines)
    exec(
        compile(source, f"<cross-field rules{'' if guarded else ', unguarded'}>", "exec"), namespace
    )
    dispatch: Callable[..., None] = namespace["dispatch"]
    dispatch.__doc__ = source  # readable when debugging
    return dispatch


def compile_facts(self: object, scope: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """The dispatcher's prologue alone: `facts(s, out, …)` -> every fact by name."""
    namespace = {**scope, "self": self}
    names = ", ".join(f"{f!r}: {f}" for f in FACTS)
    source = f"{_PROLOGUE}\n    return {{{names}}}"
    exec(compile(source, "<cross-field facts>", "exec"), namespace)
    facts: Callable[..., dict[str, Any]] = namespace["dispatch"]
    return facts
