"""Follow-on findings of a wrong stay bound are grouped under it (issue 14, point 3).

The issue's case: one wrong discharge time gave DATE_SETL_PERIOD and five DATE_OPRN_STAY on
fields that were right, and nothing on the discharge time, so integrators fixed the wrong
fields. Each follow-on now names the field to check first (`caused_by`), and nothing that
fails is hidden.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

import contracts._validator
from contracts import RuleConfig, Validator, is_rejected
from tests.builders import check, golden, legacy_golden

# before the seven-day upload lag of a discharge on 2026-11-14: only the dates are at fault
RECEIVED = datetime(2026, 11, 20, 12, 0)
DSCG = "setlinfo.dscg_time"


def _five_operations(doc: dict[str, Any]) -> dict[str, Any]:
    """The golden stay (2026-11-10 08:00 to 11-20 10:00), one operation a day on 11-15 to
    11-19 (start time only), no ICU stay."""
    template = doc["input"]["oprninfo"][1]
    doc["input"]["oprninfo"] = [
        {**template, "oprn_oprt_type": "1" if day == 15 else "2",
         "oprn_oprt_begntime": f"2026-11-{day} 09:00:00"}
        for day in range(15, 20)
    ]  # fmt: skip
    doc["input"]["icuinfo"] = []
    return doc


def _issue_case() -> dict[str, Any]:
    doc = _five_operations(golden())
    doc["input"]["setlinfo"]["dscg_time"] = "2026-11-14 10:00:00"  # typed for 11-20
    return doc


def test_the_base_of_the_issue_case_is_clean() -> None:
    assert check(_five_operations(golden()), received_at=RECEIVED) == []


def test_a_wrong_discharge_time_groups_its_six_follow_ons_under_it() -> None:
    errors = check(_issue_case(), received_at=RECEIVED)
    assert [(e.rule, e.field) for e in errors] == [
        ("DATE_SETL_PERIOD", "setlinfo.setl_end_date"),
        *(("DATE_OPRN_STAY", f"oprninfo[{i}].oprn_oprt_begntime") for i in range(5)),
    ]
    assert {e.caused_by for e in errors} == {DSCG}
    for e in errors:
        assert e.severity == "reject"  # the verdict is what it was: nothing suppressed
        assert e.message.endswith("请先核对setlinfo.dscg_time）"), e.message
        assert e.message_en.endswith(
            "(probably follows from setlinfo.dscg_time: 6 times of this record conflict "
            "with it; check it first)"
        ), e.message_en


def test_fixing_the_root_field_alone_clears_every_follow_on() -> None:
    """What `caused_by` promises: the one field named is the one to fix."""
    doc = _issue_case()
    doc["input"]["setlinfo"]["dscg_time"] = "2026-11-20 10:00:00"
    assert check(doc, received_at=RECEIVED) == []


def test_follow_ons_come_right_after_the_root_fields_own_finding() -> None:
    """Uploaded late, the discharge time has a finding of its own (LAG_UPLOAD, a warning):
    the follow-ons come right after it; other findings keep their place."""
    doc = _issue_case()
    doc["input"]["setlinfo"]["gend"] = "7"  # a finding unrelated to the stay, first
    errors = check(doc, received_at=datetime(2026, 11, 24, 9, 30))
    assert [(e.rule, e.caused_by) for e in errors] == [
        ("DICT_VALUE", ""),
        ("LAG_UPLOAD", ""),
        ("DATE_SETL_PERIOD", DSCG),
        *(("DATE_OPRN_STAY", DSCG) for _ in range(5)),
    ]


def test_one_operations_own_wrong_times_are_not_blamed_on_the_discharge() -> None:
    doc = golden()
    op = doc["input"]["oprninfo"][0]
    op["oprn_oprt_begntime"], op["oprn_oprt_endtime"] = "2026-11-22 09:00:00", "2026-11-22 10:30:00"
    errors = check(doc)
    assert {(e.rule, e.field) for e in errors} == {
        ("DATE_OPRN_STAY", "oprninfo[0].oprn_oprt_begntime"),
        ("DATE_OPRN_STAY", "oprninfo[0].oprn_oprt_endtime"),
    }
    assert {e.caused_by for e in errors} == {""}
    assert "check it first" not in errors[0].message_en


def test_a_late_admission_time_groups_the_times_before_it() -> None:
    doc = _five_operations(golden())
    doc["input"]["setlinfo"]["adm_time"] = "2026-11-17 08:00:00"  # typed for 11-10
    errors = check(doc, received_at=RECEIVED)
    assert [(e.rule, e.field, e.caused_by) for e in errors] == [
        ("DATE_SETL_PERIOD", "setlinfo.setl_begn_date", "setlinfo.adm_time"),
        *(
            ("DATE_OPRN_STAY", f"oprninfo[{i}].oprn_oprt_begntime", "setlinfo.adm_time")
            for i in range(2)
        ),
    ]
    assert "入院时间" in errors[0].message


def test_a_discharge_before_admission_takes_the_times_after_it() -> None:
    """DATE_ADM_DSCG is the discharge time's own finding: its follow-ons come under it."""
    doc = golden()
    doc["input"]["setlinfo"]["dscg_time"] = "2026-11-09 10:00:00"  # typed for 11-20
    doc["input"]["icuinfo"] = []
    errors = check(doc, received_at=datetime(2026, 11, 12, 12, 0))
    assert [(e.rule, e.field, e.caused_by) for e in errors] == [
        ("DATE_ADM_DSCG", DSCG, ""),
        ("DATE_SETL_PERIOD", "setlinfo.setl_end_date", DSCG),
        *(
            ("DATE_OPRN_STAY", f"oprninfo[0].{name}", DSCG)
            for name in ("oprn_oprt_begntime", "oprn_oprt_endtime", "anst_begntime", "anst_endtime")
        ),
    ]


def test_ipt_days_follows_a_wrong_discharge_time_in_4101() -> None:
    doc = _five_operations(legacy_golden())
    for op in doc["input"]["oprninfo"]:
        op["oprn_oprt_date"] = op["oprn_oprt_begntime"][:10]
    doc["input"]["setlinfo"]["dscg_time"] = "2026-11-14 10:00:00"
    errors = check(doc, received_at=RECEIVED)
    ipt = [e for e in errors if e.rule == "IPT_DAYS"]
    assert ipt and ipt[0].caused_by == DSCG
    assert {e.caused_by for e in errors} == {DSCG}


def test_a_city_that_made_the_stay_rules_warnings_keeps_them_warnings() -> None:
    v = Validator(RuleConfig.from_mapping({"rules": {"DATE_OPRN_STAY": "warn"}}))
    errors = check(_issue_case(), v, received_at=RECEIVED)
    assert [(e.rule, e.severity) for e in errors if e.rule == "DATE_OPRN_STAY"] == [
        ("DATE_OPRN_STAY", "warn")
    ] * 5
    assert {e.caused_by for e in errors} == {DSCG}
    assert is_rejected(errors)  # DATE_SETL_PERIOD still rejects, as before


def test_a_clean_record_never_reaches_the_grouping(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot path of a clean record is what it was: the grouping runs only on findings."""
    import msgspec

    def boom(errors: object, settlement: object) -> None:
        raise AssertionError("grouping ran on a clean record")

    v = Validator()
    monkeypatch.setattr(contracts._validator, "group_follow_ons", boom)
    _, errors = v.validate_json(msgspec.json.encode(golden()), received_at=RECEIVED)
    assert errors == []
    with pytest.raises(AssertionError, match="grouping ran"):
        v.validate_json(msgspec.json.encode(_issue_case()), received_at=RECEIVED)
