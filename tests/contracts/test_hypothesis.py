"""Property tests: random and mutated records never crash the validator, both engine paths
agree, and every finding names a known rule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from contracts import Validator, rulebook
from tests.builders import DELETE, at, check, golden, legacy_golden

RULES = rulebook()
V = Validator()


def _leaves(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        out = [prefix + k for k in node]
        for k, v in node.items():
            out += _leaves(v, f"{prefix}{k}.")
        return out
    if isinstance(node, list):
        out = []
        for i, v in enumerate(node):
            out += _leaves(v, f"{prefix}{i}.")
        return out
    return []


PATHS = sorted(set(_leaves(golden())) | set(_leaves(legacy_golden())))
TRICKY = st.sampled_from(
    ["", " ", "0", "-1", "1e400", "NaN", "sNaN", "Infinity", "-0.001", "2026-02-30 10:00:00",
     "2026-11-20T10:00:00+08:00", "2026-11-20", "0000-00-00", "9999-12-31 23:59:59", "1/99/99",
     "A00", "K35.800x002", "47.0100", "H44010000001", "440100", "110105194912310023", "→",
     "1,2,3", "张三", "\u0000", "x" * 600, "9999-12-31T23:00:00-08:00"]
)  # fmt: skip
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    TRICKY,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
MUTATION = st.tuples(st.sampled_from(PATHS), st.one_of(VALUES, st.just(DELETE)))


def _assert_well_formed(errors: list[Any]) -> None:
    for e in errors:
        assert e.rule in RULES
        assert e.severity in ("reject", "warn")
        assert e.dimension == RULES[e.rule].dimension
        assert e.message and e.message_en


def _apply(doc: dict[str, Any], path: str, value: Any) -> bool:
    try:
        at(doc, path, value)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        return False  # the path vanished under an earlier mutation
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    legacy=st.booleans(),
    mutations=st.lists(MUTATION, min_size=1, max_size=6),
    received_day=st.integers(min_value=1, max_value=30),
)
def test_mutated_records(legacy: bool, mutations: list[tuple[str, Any]], received_day: int) -> None:
    doc = legacy_golden() if legacy else golden()
    for path, value in mutations:
        _apply(doc, path, value)
    note(repr(mutations))
    received = datetime(2026, 11, received_day, 12, 0)
    errors = check(doc, received_at=received)  # asserts fast path == full engine
    _assert_well_formed(errors)
    env, _ = V.validate_json(msgspec.json.encode(doc), received_at=received)
    if env is None:
        assert errors and all(e.rule.startswith("DEC_") for e in errors)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(raw: bytes) -> None:
    env, errors = V.validate_json(raw)
    _assert_well_formed(errors)
    if env is None:
        assert errors


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_random_json_documents(data: Any) -> None:
    errors = check(msgspec.json.encode(data))
    _assert_well_formed(errors)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), infno=st.sampled_from(["4101A", "4101"]))
def test_generated_samples_are_clean(seed: int, infno: str) -> None:
    import random

    from contracts.samples import make_settlement

    doc = make_settlement(random.Random(seed), infno=infno)
    assert check(doc, received_at=datetime(2026, 11, 24, 9, 30)) == []
