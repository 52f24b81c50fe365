"""The realistic record generator used by the benchmark, the demo and the tests."""

from __future__ import annotations

import random
from statistics import mean

import msgspec

from contracts import is_valid_certno
from contracts.samples import REGIONS, make_envelope_bytes, make_settlement


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
