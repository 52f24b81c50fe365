"""CaseFacts decoding: JSON object, JSON list, NDJSON; money stays Decimal."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from workers.dip import decode_cases_json, decode_cases_ndjson

ONE = (
    b'{"case_key": "H1:1", "fixmedins_code": "H1", "hospital_level": "3A",'
    b' "treating_admdvs": "440104", "insured_admdvs": "440104", "insutype": "310",'
    b' "main_diag_code": "K35.800", "total_cost": "1234.56",'
    b' "operations": [["47.0100", "surgery"], ["89.5200", "diagnostic"]]}'
)


def test_one_object_list_and_ndjson() -> None:
    (case,) = decode_cases_json(ONE)
    assert case.total_cost == Decimal("1234.56")
    assert case.operations == (("47.0100", "surgery"), ("89.5200", "diagnostic"))
    assert (case.icu_minutes, case.age_days, case.fund_pay) == (0, None, None)
    assert len(decode_cases_json(b"[" + ONE + b"," + ONE + b"]")) == 2
    assert len(decode_cases_ndjson(ONE + b"\n\n" + ONE + b"\n")) == 2


def test_numbers_for_money_are_exact() -> None:
    (case,) = decode_cases_json(ONE.replace(b'"1234.56"', b"1234.56"))
    assert case.total_cost == Decimal("1234.56")


def test_missing_required_field_is_an_error() -> None:
    with pytest.raises(msgspec.ValidationError, match="main_diag_code"):
        decode_cases_json(ONE.replace(b'"main_diag_code": "K35.800",', b""))
