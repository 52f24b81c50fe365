"""The hot path's shortcuts: each cheap test ("this group can find nothing") only ever skips
a rule group that would indeed find nothing, so the findings are the exact engine's.

- `RecordChecks.check` (each registered rule behind its own pre-check) against the same
  rules run unconditionally (`_reference_run` below; per rule: tests/contracts/test_crossrules.py);
- the generated field checkers (guards, list loops, the whole `fast` function) against
  the exact checkers they wrap;
- the arithmetic shortcuts: certno check character in base 13, `certno_matches`,
  `duration_ok`, the age bracket.
"""

from __future__ import annotations

import copy
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import ValidationError, Validator, certno_check_char, parse_duration
from contracts._certno import _check_char, certno_matches, valid_certno_birth
from contracts._checks import RecordChecks
from contracts._fieldrules import duration_ok
from contracts._fields import LIST_NODES
from contracts._model import Settlement
from contracts._normalise import is_legacy, normalise
from contracts.samples import make_settlement
from tests.builders import BASES, EDGES, RECEIVED, at, check, edge_base, golden, legacy_golden

V = Validator()
NOW = datetime(2026, 11, 24, 9, 30)


def _reference_run(
    rc: RecordChecks,
    s: Settlement,
    legacy: bool,
    received_at: datetime | None,
    area: str | None,
    inst: str | None,
    insured: str | None,
    trusted: bool,
) -> list[ValidationError]:
    """The full engine: every registered cross-field rule, unconditionally, in registry order
    (`RecordChecks.check_all`, generated from the same registry as `check` without the
    pre-checks: a rule added to the registry is in both)."""
    out: list[ValidationError] = []
    rc.check_all(s, out, legacy, received_at, area, inst, insured, trusted)
    return out


def _reference_fast(v: Validator, env: Any, received_at: datetime | None) -> list[ValidationError]:
    """`validate_json` after a strict decode, as it was before `compile_fast_path`."""
    out: list[ValidationError] = []
    s = env.input
    legacy = is_legacy(env.infno)
    fields = v._fields
    fields._compile_exact_values("setlinfo", True)(s.setlinfo, "setlinfo.", out)
    for node in LIST_NODES:
        exact = fields._compile_exact_values(node, True)
        for i, entry in enumerate(getattr(s, node)):
            exact(entry, f"{node}[{i}].", out)
    normalise(s, env.infno)
    fields.check_required(s.setlinfo, "setlinfo", "setlinfo.", legacy, out)
    for node in LIST_NODES:
        for i, entry in enumerate(getattr(s, node)):
            fields.check_required(entry, node, f"{node}[{i}].", legacy, out)
    envelope = (env.mdtrtarea_admvs, env.fixmedins_code, env.insuplc_admdvs)
    trusted = _codes_in(v, s)
    out.extend(_reference_run(v._checks, s, legacy, received_at, *envelope, trusted))
    return out


def _codes_in(v: Validator, s: Settlement) -> bool:
    """Every diagnosis and oprninfo code in the latest tables (or empty): what the fast path
    may trust without a lookup."""
    diag, oprn = v.codes.diagnosis_table(), v.codes.operation_table()
    assert diag is not None and oprn is not None
    codes = [s.setlinfo.wm_dise_code, *(d.diag_code for d in s.diseinfo)]
    return all(not c or c in diag.entries for c in codes) and all(
        not o.oprn_oprt_code or o.oprn_oprt_code in oprn.entries for o in s.oprninfo
    )


def _generic_both_ways(env: Any) -> None:
    """The generated `check_generic` (chunks behind guards, list loops) equals the loop."""
    fields = V._fields
    got: list[ValidationError] = []
    expected: list[ValidationError] = []
    fields.check_generic(env, "envelope", "", got)
    fields.check_generic_reference(env, "envelope", "", expected)
    s = env.input
    fields.check_generic(s.setlinfo, "setlinfo", "setlinfo.", got)
    fields.check_generic_reference(s.setlinfo, "setlinfo", "setlinfo.", expected)
    for node in LIST_NODES:
        entries = getattr(s, node)
        if entries:
            fields.check_list_generic(entries, node, got)
        for i, entry in enumerate(entries):
            fields.check_generic_reference(entry, node, f"{node}[{i}].", expected)
    assert got == expected


def _both_ways(raw: bytes, received_at: datetime | None = RECEIVED) -> None:
    """The generated fast path and `check` equal their unguarded references."""
    try:
        env = V._strict.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        env = None
    if env is not None:
        expected = _reference_fast(V, env, received_at)
        fast_env, found = V._fast(raw, received_at)
        assert found == expected
        assert msgspec.json.encode(fast_env) == msgspec.json.encode(env)  # same normalise
    loose, _errors = V.decode(raw)
    try:
        typed = V._typed.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        typed = None
    if typed is not None:
        # the full engine's typed tier: what it accepts, the lenient decoder reads without a
        # finding, and both give the same findings and the same record
        assert loose is not None and _errors == []
        lenient = V.validate_decoded(copy.deepcopy(loose), [], received_at=received_at)
        found = V.validate_decoded(copy.deepcopy(typed), [], received_at=received_at)
        assert found == lenient
        assert msgspec.json.encode(typed) == msgspec.json.encode(loose)
    if loose is not None:
        _generic_both_ways(loose)
        s1, s2 = copy.deepcopy(loose.input), copy.deepcopy(loose.input)
        legacy = is_legacy(loose.infno)
        normalise(s1, loose.infno)
        normalise(s2, loose.infno)
        args = (received_at, loose.mdtrtarea_admvs, loose.fixmedins_code, loose.insuplc_admdvs)
        got: list[ValidationError] = []
        V._checks.check(s1, got, legacy, *args, False)
        assert got == _reference_run(V._checks, s2, legacy, *args, False)


# -- records -------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "value"), EDGES)
@pytest.mark.parametrize("base", BASES)
def test_edge_values_both_ways(path: str, value: Any, base: str) -> None:
    doc = edge_base(base)
    try:
        at(doc, path, value)
    except (IndexError, KeyError):
        pytest.skip("path absent in this flavour")
    raw = msgspec.json.encode(doc)
    check(raw)  # fast path == full engine
    _both_ways(raw)


@pytest.mark.parametrize("seed", range(60))
def test_generated_samples_both_ways(seed: int) -> None:
    rng = random.Random(seed)
    doc = make_settlement(rng, infno="4101" if seed % 3 == 0 else "4101A", now=NOW)
    for received in (None, NOW, NOW + timedelta(days=60), NOW - timedelta(days=30)):
        _both_ways(msgspec.json.encode(doc), received)


_DAYS = st.integers(min_value=0, max_value=40000)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    birth_days=_DAYS,
    adm_offset=st.integers(min_value=-10, max_value=40000),
    age=st.one_of(
        st.none(),
        st.decimals(min_value=-2, max_value=120, places=1),
        st.integers(min_value=-2, max_value=120).map(Decimal),
    ),
    nwb_age=st.one_of(st.none(), st.integers(min_value=0, max_value=400)),
)
def test_age_bracket_is_conservative(
    birth_days: int, adm_offset: int, age: Decimal | None, nwb_age: int | None
) -> None:
    """An adult whose age lies in [days // 365 - 1, days // 366 + 1] is never reported."""
    birth = date(1900, 1, 1) + timedelta(days=birth_days)
    adm = datetime.combine(birth, datetime.min.time()) + timedelta(days=adm_offset, hours=8)
    doc = golden()
    sl = doc["input"]["setlinfo"]
    dscg = adm + timedelta(days=3)
    stamp = "%Y-%m-%d %H:%M:%S"
    sl.update(
        brdy=birth.isoformat(),
        patn_cert_type="03",
        adm_time=adm.strftime(stamp),
        dscg_time=dscg.strftime(stamp),
        setl_begn_date=adm.date().isoformat(),
        setl_end_date=dscg.date().isoformat(),
        setl_time=(dscg + timedelta(hours=1)).strftime(stamp),
    )
    for key, value in (("age", age), ("nwb_age", nwb_age)):
        if value is None:
            sl.pop(key, None)
        else:
            sl[key] = str(value) if isinstance(value, Decimal) else value
    for op in doc["input"]["oprninfo"]:
        for name in ("oprn_oprt_begntime", "oprn_oprt_endtime", "anst_begntime", "anst_endtime"):
            op.pop(name, None)
    doc["input"]["icuinfo"] = []
    _both_ways(msgspec.json.encode(doc), None)


_MUTABLE = [(path, value) for path, value in EDGES]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(BASES),
    edits=st.lists(st.sampled_from(_MUTABLE), min_size=1, max_size=5),
    received_day=st.integers(min_value=1, max_value=60),
)
def test_combined_edits_both_ways(
    base: str, edits: list[tuple[str, Any]], received_day: int
) -> None:
    doc = edge_base(base)
    for path, value in edits:
        try:
            at(doc, path, value)
        except (IndexError, KeyError):
            continue
    _both_ways(msgspec.json.encode(doc), datetime(2026, 11, 1) + timedelta(days=received_day))


# -- generated field checkers --------------------------------------------------------------


def test_fast_function_is_readable_source() -> None:
    source = V._fast.__doc__ or ""
    assert source.startswith("def fast(raw, received_at):")
    assert "return slow(raw, received_at, exc)" in source  # told what was refused
    assert "normalise(s, infno)" in source and "check(s, out, True" in source
    assert "sl.psn_cashpay = sl.psn_cash_pay" in source  # normalise's alias step, inline
    assert "values_setlinfo(sl, 'setlinfo.', out)" in source


def test_list_checkers_name_each_entry() -> None:
    doc = golden()
    doc["input"]["bldinfo"] = [{"bld_cat": "13", "bld_amt": "2", "bld_unt": "U"},
                               {"bld_cat": "13", "bld_amt": "2.345", "bld_unt": "U"}]  # fmt: skip
    errors = check(doc)
    assert [(e.rule, e.field) for e in errors] == [("FMT_NUMBER", "bldinfo[1].bld_amt")]


def test_legacy_list_required_fields_are_indexed() -> None:
    doc = legacy_golden()
    doc["input"]["payinfo"][1].pop("fund_payamt")
    errors = check(doc)
    assert ("REQ_FIELD", "payinfo[1].fund_payamt") in [(e.rule, e.field) for e in errors]


# -- arithmetic shortcuts ------------------------------------------------------------------


@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_char_base_13_equals_weighted_sum(body: str) -> None:
    assert _check_char(body) == certno_check_char(body)


_CERTNO = st.one_of(
    st.text(alphabet="0123456789Xx", min_size=18, max_size=18),
    st.text(max_size=20),
    st.builds(lambda b: b + certno_check_char(b),
              st.from_regex(r"\A[1-6][0-9]{5}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}\Z")),
)  # fmt: skip


@settings(max_examples=400)
@given(certno=_CERTNO, birth=st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31)))
def test_certno_matches_equals_valid_birth(certno: str, birth: date) -> None:
    assert certno_matches(certno, birth) == (valid_certno_birth(certno) == birth)
    encoded = valid_certno_birth(certno)
    if encoded is not None:
        assert certno_matches(certno, encoded)


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=12), st.from_regex(r"\A\d{1,5}/\d{1,3}/\d{1,3}\n?\Z")))
def test_duration_ok_equals_parse_duration(text: str) -> None:
    assert duration_ok(text) == (parse_duration(text) is not None)
    assert duration_ok(text) == (parse_duration(text) is not None)  # memoised answer


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("region", ["990100", "44010", "440300", "440100"])
def test_insured_region_pairs_both_ways(base: str, region: str) -> None:
    """Both insured-region fields equal (the regions shortcut needs both valid)."""
    doc = edge_base(base)
    doc["insuplc_admdvs"] = region
    doc["input"]["setlinfo"]["insuplc"] = region
    raw = msgspec.json.encode(doc)
    check(raw)
    _both_ways(raw)


@pytest.mark.parametrize("base", BASES)
def test_identical_constrained_diagnoses_keep_their_own_index(base: str) -> None:
    doc = edge_base(base)
    entry = {"diag_type": "1", "diag_code": "N80.000", "diag_name": "子宫内膜异位症",
             "adm_cond_type": "1", "maindiag_flag": "0"}  # fmt: skip
    doc["input"]["setlinfo"]["gend"] = "1"
    doc["input"]["setlinfo"].pop("certno", None)
    doc["input"]["diseinfo"][1:1] = [dict(entry), dict(entry)]
    raw = msgspec.json.encode(doc)
    fields = [e.field for e in check(raw) if e.rule == "SEX_DIAG"]
    assert fields == ["diseinfo[1].diag_code", "diseinfo[2].diag_code"]
    _both_ways(raw)


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize(
    "unknown", ["input.diseinfo.2.diag_code", "input.oprninfo.0.oprn_oprt_code"]
)
def test_an_unknown_code_leaves_the_others_checked(
    base: str, unknown: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One unknown code among known ones: the known constrained code still gets its finding
    at its own index, the unknown one its own, and only the unknown diagnosis is looked up
    in the table (the others are known to the latest table, which is in force)."""
    doc = edge_base(base)
    doc["input"]["setlinfo"]["gend"] = "1"
    doc["input"]["setlinfo"].pop("certno", None)
    doc["input"]["diseinfo"][1:1] = [{"diag_type": "1", "diag_code": "N80.000",
        "diag_name": "子宫内膜异位症", "adm_cond_type": "1", "maindiag_flag": "0"}]  # fmt: skip
    at(doc, unknown, "Z99.999x999" if "diag" in unknown else "99.9999x999")
    raw = msgspec.json.encode(doc)
    looked_up: list[str] = []
    lookup = type(V._checks)._diagnosis

    def counted(self: Any, table: Any, code: str) -> Any:
        looked_up.append(code)
        return lookup(self, table, code)

    monkeypatch.setattr(type(V._checks), "_diagnosis", counted)
    found = {(e.rule, e.field) for e in check(raw, V)}
    assert ("SEX_DIAG", "diseinfo[1].diag_code") in found
    if "diag" in unknown:
        assert ("DIAG_UNKNOWN", "diseinfo[2].diag_code") in found
        assert set(looked_up) == {"Z99.999x999"}
    else:
        assert ("OPRN_UNKNOWN", "oprninfo[0].oprn_oprt_code") in found
        assert looked_up == []
    _both_ways(raw)


def test_codes_are_not_decoder_constraints() -> None:
    """An unknown or legacy code leaves the record on the fast path: the strict decoder takes
    it and the checks look the codes up (trusted only when every code is known)."""
    for code in ("Z99.999x999", "K35.900", "BNG010"):
        doc = golden()
        doc["input"]["diseinfo"][1]["diag_code"] = code
        raw = msgspec.json.encode(doc)
        env = V._strict.decode(raw)
        assert not _codes_in(V, env.input)
        _both_ways(raw)
    assert _codes_in(V, V._strict.decode(msgspec.json.encode(golden())).input)


@pytest.mark.parametrize(
    ("path", "value", "typed", "finds"),
    [
        ("input.setlinfo.gend", "7", True, "DICT_VALUE"),
        ("input.setlinfo.psn_name", "", True, "REQ_FIELD"),
        ("input.setlinfo.medcasno", "B" * 41, True, "FMT_LENGTH"),
        ("input.setlinfo.lv1_nurscare_days", 10**12, True, "FMT_NUMBER"),
        ("input.oprninfo.1.oprn_oprt_endtime", "2026/11/12 10:30", False, "FMT_DATETIME"),
        ("input.setlinfo.adm_time", "2026-11-10T08:00:00+08:00", False, None),  # converted
        ("input.setlinfo.adm_time", "2026-11-10", False, None),  # a bare date: midnight
        ("input.setlinfo.lv1_nurscare_days", "many", False, "DEC_TYPE"),
    ],
)
def test_the_full_engine_decodes_typed_first(
    path: str, value: Any, typed: bool, finds: str | None
) -> None:
    """A record refused by the strict types for a value decodes into the typed tier (no
    field-by-field conversion); a timestamp that needs converting or a wrong type does not,
    and goes to the relaxed decoder (that field as text) or the lenient one. Either way the
    findings are the lenient engine's."""
    doc = golden()
    at(doc, path, value)
    raw = msgspec.json.encode(doc)
    with pytest.raises(msgspec.ValidationError):
        V._strict.decode(raw)
    try:
        V._typed.decode(raw)
        decoded = True
    except msgspec.ValidationError:
        decoded = False
    assert decoded is typed
    found = check(raw)  # validate_json == decode + validate_decoded
    assert [e.rule for e in found] == ([finds] if finds else [])
    _both_ways(raw)
