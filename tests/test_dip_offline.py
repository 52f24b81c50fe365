"""Offline runner: picking the treating city's rules (and clearing year) for each case."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from workers.dip import CaseFacts, sample_rules
from workers.dip._offline import CaseFileError, RulesBook, load_case_file, run_cases

GZ = sample_rules("440100")
SZ = sample_rules("440300")
GZ_2027 = msgspec.structs.replace(GZ, policy=msgspec.structs.replace(GZ.policy, clearing_year=2027))

CASE = CaseFacts(
    case_key="k",
    fixmedins_code="H44010000001",
    hospital_level="3A",
    treating_admdvs="440104",
    insured_admdvs="440104",
    insutype="310",
    main_diag_code="K35.800",
    operations=(("47.0100", "surgery"),),
    total_cost=Decimal("11270"),
    discharge_date="2027-01-05",
)


def test_rules_by_treating_city_and_discharge_year() -> None:
    book = RulesBook([GZ, GZ_2027, SZ])
    assert book.for_case(CASE) is GZ_2027
    case_2026 = msgspec.structs.replace(CASE, discharge_date="2026-12-31")
    assert book.for_case(case_2026) is GZ
    # two years of the city and neither matches: refuse rather than guess
    assert book.for_case(msgspec.structs.replace(CASE, discharge_date="2025-06-01")) is None
    # a single rule set of the city is used whatever the date
    assert RulesBook([GZ]).for_case(CASE) is GZ
    assert book.for_case(msgspec.structs.replace(CASE, treating_admdvs="440604")) is None


def test_run_cases_reports_errors_per_case() -> None:
    bad = msgspec.structs.replace(CASE, case_key="bad", hospital_level="X")
    out = run_cases([CASE, bad], RulesBook([GZ]), with_score=True)
    assert out[0].error is None and out[0].scored is not None
    assert out[0].scored.estimated_payment == Decimal("12103.00")  # 980 × 12.35
    assert out[1].error is not None and out[1].error["field"] == "hospital_level"
    assert out[1].grouped is not None and out[1].grouped.group_code == "GZ-C002"


def test_case_files(tmp_path: Path) -> None:
    enc = msgspec.json.encode(CASE)
    (tmp_path / "a.ndjson").write_bytes(enc + b"\n" + enc + b"\n")
    (tmp_path / "b.txt").write_bytes(enc + b"\n" + enc + b"\n")  # unknown suffix: sniffed
    assert len(load_case_file(tmp_path / "a.ndjson")) == 2
    assert len(load_case_file(tmp_path / "b.txt")) == 2
    with pytest.raises(CaseFileError):
        load_case_file(tmp_path / "missing.json")
