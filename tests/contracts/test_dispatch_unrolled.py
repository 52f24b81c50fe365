"""The dispatcher inlines a pre-check of `all(...)`/`any(...)` over a literal tuple unrolled
(no generator, no call), with the same truth; anything else stays as it was."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from contracts._crossrules import _inline


def _all_plain(sl: Any) -> bool:
    return not all(v is None or (v.isascii() and v.isprintable()) for v in (sl.a, sl.b, sl.c))


def _any_plain(sl: Any) -> bool:
    return any(v == "x" for v in (sl.a, sl.b))


def _over_a_call(sl: Any) -> bool:
    return all(v for v in (sl.a, str(sl.b)))


def _filtered(sl: Any) -> bool:
    return all(v for v in (sl.a, sl.b) if v)


@pytest.mark.parametrize("func", [_all_plain, _any_plain])
def test_unrolled_with_the_same_truth(func: Any) -> None:
    expr = _inline(func, globals())
    assert expr is not None and " for " not in expr
    for a in (None, "x", "中", "a\u200b", ""):
        for b in (None, "x", "ok"):
            for c in (None, "\x00", "y"):
                sl = SimpleNamespace(a=a, b=b, c=c)
                assert bool(eval(expr, {}, {"sl": sl})) == bool(func(sl))


@pytest.mark.parametrize("func", [_over_a_call, _filtered])
def test_anything_else_is_called(func: Any) -> None:
    assert _inline(func, globals()) is None
