"""The realistic record generator used by the benchmark, the demo and the tests."""

from __future__ import annotations

import random
from datetime import datetime
from math import exp, log, sqrt
from statistics import NormalDist, mean
from typing import Any

import msgspec
import pytest

from contracts import CodeTables, Validator, is_valid_certno
from contracts.samples import (
    CASES,
    COST_SIGMA,
    REGIONS,
    MixCase,
    main_codes,
    make_envelope_bytes,
    make_settlement,
)


def test_shape_of_generated_records() -> None:
    rng = random.Random(42)
    docs = [make_settlement(rng) for _ in range(200)]
    assert 7 <= mean(len(d["input"]["diseinfo"]) for d in docs) <= 9
    assert all(len(d["input"]["oprninfo"]) == 3 for d in docs)
    assert all(is_valid_certno(d["input"]["setlinfo"]["certno"]) for d in docs)
    codes = {d["fixmedins_code"] for d in docs}
    assert all(len(c) == 12 and c[0] == "H" and c[1:].isdigit() for c in codes)
    assert all(d["fixmedins_code"][1:7] == d["mdtrtarea_admvs"] for d in docs)
    regions = {r for r, _ in REGIONS}
    assert {d["mdtrtarea_admvs"] for d in docs} <= regions
    assert any(d["insuplc_admdvs"] != d["mdtrtarea_admvs"] for d in docs)  # cross-city cases
    size = mean(len(make_envelope_bytes(random.Random(i))) for i in range(50))
    assert 3000 <= size <= 5000


def test_same_seed_same_record() -> None:
    a = make_envelope_bytes(random.Random(7))
    assert a == make_envelope_bytes(random.Random(7))
    assert msgspec.json.decode(a)["infno"] == "4101A"


def test_legacy_flavour() -> None:
    doc = make_settlement(random.Random(1), infno="4101")
    assert doc["infno"] == "4101" and doc["input"]["payinfo"] and doc["input"]["iteminfo"]
    assert "medfee_sumamt" not in doc["input"]["setlinfo"]


NOW = datetime(2026, 11, 24, 10, 0)


def _band(p: float, n: int) -> tuple[float, float]:
    """p ± 4 binomial standard deviations: a seeded run outside it means a wrong law."""
    sd = sqrt(p * (1 - p) / n)
    return p - 4 * sd, p + 4 * sd


def _ratio_share(threshold: float, sigma: float, below: bool) -> float:
    """P(cost / mean < threshold) (or >) when cost = mean × LogNormal(−σ²/2, σ)."""
    p = NormalDist().cdf((log(threshold) + sigma * sigma / 2) / sigma)
    return p if below else 1 - p


def _rejections(doc: dict[str, Any], validator: Validator) -> list[str]:
    _, errors = validator.validate_json(msgspec.json.encode(doc), received_at=NOW)
    return [f"{e.rule} {e.field}" for e in errors if e.severity == "reject"]


MIX = (
    MixCase("K35", 9000.0, ("47.0100",), avoid=("K35.8", "K35.3"), label="comprehensive"),
    MixCase("N40.x", 15000.0, ("60.2900",), label="male only"),
    MixCase("O80", 4200.0, label="female, 10-60 years"),
    MixCase("D25.9", 16000.0, ("68.4100",), label="female only"),
    MixCase("I10.X", 3800.0, label="x of the extension, upper case in a catalog"),
    MixCase("I83.9", 9000.0, ("38.5900x010", "38.5901|38.5903"), label="alternatives"),
)


def test_every_generated_record_passes_every_default_rule() -> None:
    validator = Validator()
    rng = random.Random(20261124)
    for i in range(400):
        doc = make_settlement(rng, case_mix=MIX if i % 2 else None)
        assert _rejections(doc, validator) == [], doc["input"]["diseinfo"]


def test_costs_are_log_normal_around_the_average() -> None:
    """Shares below 0.5× and above 2× the average, and the mean, as the law says."""
    rng = random.Random(99)
    n = 4000
    mix = (MixCase("J18", 6200.0),)
    costs = [
        float(make_settlement(rng, case_mix=mix)["input"]["setlinfo"]["medfee_sumamt"]) / 6200
        for _ in range(n)
    ]
    low = sum(c < 0.5 for c in costs) / n
    high = sum(c > 2.0 for c in costs) / n
    lo_band, hi_band = (
        _band(_ratio_share(0.5, COST_SIGMA, True), n),
        _band(_ratio_share(2.0, COST_SIGMA, False), n),
    )
    assert lo_band[0] <= low <= lo_band[1], (low, lo_band)
    assert hi_band[0] <= high <= hi_band[1], (high, hi_band)
    # the mean is the average: sd of the mean = sqrt(e^σ² − 1) / sqrt(n) ≈ 0.0075
    assert abs(mean(costs) - 1) < 4 * sqrt(exp(COST_SIGMA**2) - 1) / sqrt(n)
    # and the default cases too: nothing near the old uniform 6,000-90,000 spread
    docs = [make_settlement(random.Random(i)) for i in range(300)]
    by_case = {c[0]: c[6] for c in CASES}
    ratios = [
        float(d["input"]["setlinfo"]["medfee_sumamt"])
        / by_case[d["input"]["setlinfo"]["wm_dise_code"]]
        for d in docs
    ]
    assert 0.85 < mean(ratios) < 1.15 and max(ratios) < 5


def test_secondary_diagnoses_come_from_the_whole_table_and_fit_the_patient() -> None:
    tables = CodeTables.load_bundled()
    rng = random.Random(5)
    seen: set[str] = set()
    for _ in range(300):
        doc = make_settlement(rng)
        gend = doc["input"]["setlinfo"]["gend"]
        main, *others = doc["input"]["diseinfo"]
        codes = [d["diag_code"] for d in others]
        assert len(set(codes)) == len(codes) and main["diag_code"] not in codes
        for d in others:
            found = tables.diagnosis(d["diag_code"])
            assert found is not None and found.name == d["diag_name"]
            assert d["diag_code"][0] not in "OPZUVWXYST"
            if d["diag_code"][:3] in ("N40", "N41", "C61", "D29"):
                assert gend == "1"
            if d["diag_code"][:3] in ("N80", "N83", "C53", "D25"):
                assert gend == "2"
        seen.update(codes)
    common = {"I10.x00", "E11.900", "E78.500", "J44.900", "K29.500"}
    assert len(seen) > 800 and common & seen  # both the whole table and the usual ones


def test_main_codes_of_a_mix_case() -> None:
    assert main_codes("K35", avoid=("K35.8", "K35.3")) == ("K35.200", "K35.201")
    assert main_codes("i10.X")[0] == "I10.x00"  # normalised like any code
    assert all("+" not in c for c in main_codes("A01"))  # no dagger/asterisk pairs
    assert main_codes("Z38.0") == () and main_codes("P07") == ()  # newborns only
    assert main_codes("O80") and main_codes("K35.9") == ()  # no such code


def test_mix_case_sets_sex_age_department_and_exactly_its_operations() -> None:
    rng = random.Random(8)
    for _ in range(60):
        doc = make_settlement(rng, case_mix=(MixCase("N40.x", 15000.0, ("60.2900",)),))
        setl = doc["input"]["setlinfo"]
        assert setl["gend"] == "1" and setl["dscg_caty"] == "A04"
        assert [o["oprn_oprt_code"] for o in doc["input"]["oprninfo"]] == ["60.2900"]
        doc = make_settlement(rng, case_mix=(MixCase("O80", 4200.0),))
        setl = doc["input"]["setlinfo"]
        assert setl["gend"] == "2" and 18 <= int(setl["age"]) <= 59
        assert doc["input"]["oprninfo"] == [] and setl["dscg_caty"] == "A05.02"
        doc = make_settlement(rng, case_mix=MIX[-1:])
        ops = [o["oprn_oprt_code"] for o in doc["input"]["oprninfo"]]
        assert ops[0] == "38.5900x010" and ops[1] in ("38.5901", "38.5903")


def test_mix_weights_and_unusable_entries() -> None:
    rng = random.Random(1)
    mix = (MixCase("J18", 6200.0, weight=9.0), MixCase("K35", 4000.0, weight=1.0))
    mains = [
        make_settlement(rng, case_mix=mix)["input"]["setlinfo"]["wm_dise_code"] for _ in range(1000)
    ]
    share = sum(m.startswith("J18") for m in mains) / 1000
    assert _band(0.9, 1000)[0] <= share <= _band(0.9, 1000)[1]
    with pytest.raises(ValueError, match=r"Z38\.0"):
        make_settlement(rng, case_mix=(MixCase("Z38.0", 3000.0),))
    with pytest.raises(ValueError, match=r"99\.9999"):
        make_settlement(rng, case_mix=(MixCase("J18", 3000.0, ("99.9999",)),))
