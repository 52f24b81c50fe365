"""Offline runner: the treating city's rules for each case's clearing year, as the pipeline."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from contracts import CST
from tests.builders import dip_case
from workers.dip import sample_rules
from workers.dip._offline import CaseFileError, RulesBook, load_case_file, run_cases

GZ = sample_rules("440100")
SZ = sample_rules("440300")
GZ_2027 = msgspec.structs.replace(GZ, policy=msgspec.structs.replace(GZ.policy, clearing_year=2027))

CASE = dip_case(case_key="k", discharge_date="2027-01-05")


def test_rules_by_treating_city_and_clearing_year() -> None:
    book = RulesBook([GZ, GZ_2027, SZ])
    assert book("440100", 2027) is GZ_2027
    assert book("440100", 2026) is GZ
    assert book("440100", 2025) is None
    # a single rule set of the city is NOT used for another year (the pipeline does not)
    assert RulesBook([GZ])("440100", 2027) is None
    assert book("440600", 2026) is None


def test_run_cases_reports_errors_per_case() -> None:
    case = msgspec.structs.replace(CASE, discharge_date="2026-03-02")
    bad = msgspec.structs.replace(case, case_key="bad", hospital_level="X")
    out = run_cases([case, bad], RulesBook([GZ]), with_score=True, province="440000")
    assert out[0].error is None and out[0].scored is not None
    assert out[0].scored.estimated_payment == Decimal("12103.00")  # 980 × 12.35
    assert out[0].route_scope == "same_city"
    assert out[1].error is not None
    assert (out[1].error["rule"], out[1].error["field"]) == ("DIP_SCORE", "hospital_level")
    assert (out[1].error["dimension"], out[1].error["severity"]) == ("", "warn")
    assert out[1].grouped is not None and out[1].grouped.group_code == "GZ-C002"


def test_no_rules_for_the_clearing_year() -> None:
    (o,) = run_cases([CASE], RulesBook([GZ]), with_score=True, province="440000")  # 2027
    assert o.error is not None and o.error["rule"] == "DIP_NO_RULES"
    assert o.error["message_en"] == (
        "no DIP rules in force for treating city 440100, clearing year 2027"
    )
    assert o.grouped is None and o.scored is None


def test_clearing_year_without_discharge_date_is_the_year_received() -> None:
    undated = msgspec.structs.replace(CASE, discharge_date="")
    book = RulesBook([GZ, GZ_2027])
    at = datetime(2026, 12, 31, 23, 30, tzinfo=CST)  # 2026 in China
    (o,) = run_cases([undated], book, with_score=True, province="440000", received_at=at)
    assert o.scored is not None and o.scored.ruleset_version == GZ.version_id


def test_case_files(tmp_path: Path) -> None:
    enc = msgspec.json.encode(CASE)
    (tmp_path / "a.ndjson").write_bytes(enc + b"\n" + enc + b"\n")
    (tmp_path / "b.txt").write_bytes(enc + b"\n" + enc + b"\n")  # unknown suffix: sniffed
    assert len(load_case_file(tmp_path / "a.ndjson")) == 2
    assert len(load_case_file(tmp_path / "b.txt")) == 2
    with pytest.raises(CaseFileError):
        load_case_file(tmp_path / "missing.json")
