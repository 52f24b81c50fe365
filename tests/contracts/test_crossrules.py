"""Cross-field QC rules cannot be silently skipped.

Each rule is a (may-fire pre-check, check) pair of one registry
(`contracts._checks.CROSS_RULES`); the dispatcher both the fast and the slow path run is
generated from it, so whether a rule runs on a record is decided by that rule's own pre-check
and nothing else. Over mutated documents:

- per rule: a pre-check that says "cannot fire" is right (its check alone finds nothing);
- the dispatcher runs exactly the rules whose pre-check says "may fire";
- its findings equal the full engine's (every rule, unconditionally), on both paths;
- a rule registered without a pre-check is refused; a new rule is run on the fast path.
"""

from __future__ import annotations

import functools
import random
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import ValidationError, Validator
from contracts._checks import CROSS_RULES, RecordChecks
from contracts._crossrules import CrossRule, CrossRules, always
from contracts._model import Settlement
from contracts._normalise import is_legacy, normalise
from contracts.samples import make_settlement
from tests.builders import BASES, EDGES, at, edge_base, golden

V = Validator()
RC = V._checks
NOW = datetime(2026, 11, 24, 9, 30)

Args = tuple[bool, datetime | None, str | None, str | None, str | None, bool]


def _records(raw: bytes, received_at: datetime | None) -> list[tuple[Settlement, Args]]:
    """The record as each path sees it: loose decode (codes checked), and, if the strict
    decoder takes it, strict decode (codes trusted); normalised, as the dispatcher gets it."""
    out = []
    for decoder, trusted in ((V._lenient, False), (V._strict, True)):
        try:
            env = decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            continue
        if trusted is False:
            env, _errors = V.decode(raw)
            if env is None:
                continue
        s = env.input
        normalise(s, env.infno)
        args = (is_legacy(env.infno), received_at, env.mdtrtarea_admvs, env.fixmedins_code,
                env.insuplc_admdvs, trusted)  # fmt: skip
        out.append((s, args))
    return out


def _may(rule: CrossRule, facts: dict[str, Any]) -> bool:
    return bool(rule.may_fire(*(facts[a] for a in rule.may_args)))


def _run(rule: CrossRule, facts: dict[str, Any]) -> list[ValidationError]:
    out: list[ValidationError] = []
    rule.check(*(out if a == "out" else facts[a] for a in rule.check_args))
    return out


def _instrumented() -> tuple[RecordChecks, list[str]]:
    """A RecordChecks whose registry is CROSS_RULES with each check recording its name."""
    ran: list[str] = []
    rules = CrossRules()
    for rule in CROSS_RULES:

        def record(*args: Any, _check: Any = rule.check, _name: str = rule.name) -> object:
            ran.append(_name)
            return _check(*args)

        recorder = functools.wraps(rule.check)(record)  # same signature: same arguments
        rules.register(rule.name, recorder, may_fire=rule.may_fire)
    return RecordChecks(V.policy, V.codes, rules), ran


INSTRUMENTED, RAN = _instrumented()


def _all_ways(raw: bytes, received_at: datetime | None) -> None:
    for s, args in _records(raw, received_at):
        facts = RC.facts(s, *args)
        may = {rule.name for rule in CROSS_RULES if _may(rule, facts)}
        # per rule: "cannot fire" is never wrong
        for rule in CROSS_RULES:
            if rule.name not in may:
                assert _run(rule, facts) == [], f"{rule.name}: pre-check skipped a finding"
        # the dispatcher runs exactly the rules whose pre-check says they may fire
        RAN.clear()
        INSTRUMENTED.check(s, [], *args)
        assert set(RAN) == may
        assert [r.name for r in CROSS_RULES if r.name in may] == RAN  # in registry order
        # the fast path's findings are the full engine's
        found: list[ValidationError] = []
        RC.check(s, found, *args)
        full: list[ValidationError] = []
        RC.check_all(s, full, *args)
        assert found == full


# -- over mutated documents ------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(BASES),
    edits=st.lists(st.sampled_from(EDGES), min_size=0, max_size=6),
    received_day=st.one_of(st.none(), st.integers(min_value=1, max_value=60)),
)
def test_pre_checks_decide_alone_and_never_skip_a_finding(
    base: str, edits: list[tuple[str, Any]], received_day: int | None
) -> None:
    doc = edge_base(base)
    for path, value in edits:
        try:
            at(doc, path, value)
        except (IndexError, KeyError):
            continue
    received = (
        None if received_day is None else datetime(2026, 11, 1) + timedelta(days=received_day)
    )
    _all_ways(msgspec.json.encode(doc), received)


@pytest.mark.parametrize("seed", range(40))
def test_generated_samples(seed: int) -> None:
    rng = random.Random(seed)
    doc = make_settlement(rng, infno="4101" if seed % 3 == 0 else "4101A", now=NOW)
    for received in (None, NOW, NOW + timedelta(days=60)):
        _all_ways(msgspec.json.encode(doc), received)


def test_icu_spans_inside_the_stay_are_skipped_only_when_clean() -> None:
    """`_icu`'s own shortcut (`_inside`) against `_span` on every stay."""
    for base in BASES:
        for path, value in [("", None), *EDGES]:
            doc = edge_base(base)
            if path:
                try:
                    at(doc, path, value)
                except (IndexError, KeyError):
                    continue
            for s, _args in _records(msgspec.json.encode(doc), NOW):
                adm, dscg = s.setlinfo.adm_time, s.setlinfo.dscg_time
                got: list[ValidationError] = []
                RC._icu(s, got, adm, dscg)
                expected: list[ValidationError] = []
                for i, c in enumerate(s.icuinfo):
                    RC._span(expected, i, "icuinfo", "scs_cutd_inpool_time", c.scs_cutd_inpool_time,
                             "scs_cutd_exit_time", c.scs_cutd_exit_time, adm, dscg,
                             "DATE_ICU_STAY")  # fmt: skip
                assert got == expected


# -- the registry ------------------------------------------------------------------------------


def test_the_registry_holds_every_rule_group_in_order() -> None:
    assert CROSS_RULES.names() == (
        "regions", "conditional", "ages", "identifiers", "identity", "dates", "diagnoses",
        "operations", "icu", "weights", "amounts",
    )  # fmt: skip
    for rule in CROSS_RULES:
        assert callable(rule.may_fire) and callable(rule.check)
    # the generated dispatcher holds one test (or an unconditional call) per rule
    source = RC.check.__doc__ or ""
    for rule in CROSS_RULES:
        assert f"# {rule.name}" in source


def _noop(self: Any, s: Any, out: list[ValidationError]) -> None:
    return None


def test_a_rule_without_a_pre_check_is_refused() -> None:
    rules = CROSS_RULES.copy()
    with pytest.raises(TypeError, match="needs its may-fire pre-check"):
        rules.register("new", _noop, may_fire=None)
    with pytest.raises(TypeError, match="needs its may-fire pre-check"):
        rules.rule("new", may_fire=None)(_noop)
    with pytest.raises(TypeError, match="needs its may-fire pre-check"):
        rules.register("new", _noop, may_fire="sl.gend == '2'")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="is not one of"):
        rules.register("new", _noop, may_fire=lambda record: True)
    with pytest.raises(TypeError, match="is not one of"):
        rules.register("new", lambda self, s, out, extra: None, may_fire=always)
    with pytest.raises(ValueError, match="already registered"):
        rules.register("dates", _noop, may_fire=always)
    assert rules.names() == CROSS_RULES.names()  # nothing was added


def test_a_new_rule_runs_on_the_fast_path_when_its_pre_check_fires() -> None:
    rules = CROSS_RULES.copy()

    def female(sl: Any) -> bool:
        return bool(sl.gend == "2")

    def flag(self: RecordChecks, s: Settlement, out: list[ValidationError]) -> None:
        self._emit(out, "SEX_DIAG", "setlinfo.gend")

    rules.register("test_female", flag, may_fire=female)
    v = Validator(cross_rules=rules)
    doc = golden()
    for gend, expected in (("1", False), ("2", True)):
        doc["input"]["setlinfo"]["gend"] = gend
        doc["input"]["setlinfo"]["patn_cert_type"] = "03"  # certno says nothing of the sex
        raw = msgspec.json.encode(doc)
        v._strict.decode(raw)  # the strict decoder takes it: this is the fast path
        _env, found = v.validate_json(raw, received_at=NOW)
        assert any(e.field == "setlinfo.gend" and e.rule == "SEX_DIAG" for e in found) is expected
    assert "test_female" not in CROSS_RULES.names()  # the default registry is untouched
