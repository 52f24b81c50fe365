"""Code tables: the full 医保版 2.0 tables, effective-dated versions, legacy codes, NHSA import."""

from __future__ import annotations

import random
from datetime import date, datetime

import pytest

from contracts import (
    CodeImportError,
    CodeTable,
    CodeTables,
    DiagnosisCode,
    OperationCode,
    RuleConfig,
    Validator,
    import_nhsa_rows,
    is_diagnosis_format,
    is_operation_format,
    is_rejected,
    normalise_code,
)
from tests.builders import check, fields_of_rule, golden, mutate, rules

FULL = 33_304, 13_686  # the ICD-10 and ICD-9-CM-3 医保版 2.0 tables (data/codes/PROVENANCE.md)


def test_bundled_tables_are_the_full_2_0_tables() -> None:
    tables = CodeTables.load_bundled()
    assert [(k, v, e, n) for k, v, e, n in tables.versions()] == [
        ("diagnosis", "ICD-10-YB-2.0", date(2021, 1, 1), FULL[0]),
        ("operation", "ICD-9-CM-3-YB-2.0", date(2021, 1, 1), FULL[1]),
    ]
    assert tables.map_sizes() == (4389, 560)


def test_every_code_of_the_tables_is_well_formed() -> None:
    """The formats accept the whole tables: x-extensions, dagger/asterisk pairs, operation
    codes with five digits or a letter after the point, four-digit extensions."""
    tables = CodeTables.load_bundled()
    diag, oprn = tables.diagnosis_table(), tables.operation_table()
    assert diag is not None and oprn is not None
    assert [c for c in diag.entries if not is_diagnosis_format(c)] == []
    assert [c for c in oprn.entries if not is_operation_format(c)] == []
    assert {"17.91100", "17.912A0"} <= set(oprn.entries)


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("I11.900", "高血压心脏病不伴有（充血性）心力衰竭"),
        ("E11.900", "2型糖尿病"),
        ("K35.800x001", "急性阑尾炎"),
        ("I10.x00x002", "高血压"),
        ("J18.900", "肺炎"),
        ("A01.001+K77.0*", "伤寒性肝炎"),
    ],
)
def test_bundled_diagnosis_examples(code: str, name: str) -> None:
    hit = CodeTables.load_bundled().diagnosis(code, on=date(2026, 11, 20))
    assert hit is not None and hit.name == name and hit.category == code[:3]


def test_category_codes_are_not_diagnosis_codes() -> None:
    """The real table has no category-only codes (the old subset accepted them)."""
    tables = CodeTables.load_bundled()
    assert tables.diagnosis("K35") is None and tables.diagnosis("I10") is None


@pytest.mark.parametrize(
    ("code", "oprn_class"),
    [
        ("47.0100", "surgery"),
        ("47.0901", "surgery"),
        ("36.0600", "intervention"),
        ("81.5100", "surgery"),
        ("74.1x00", "surgery"),
        ("51.2300", "surgery"),
        ("45.2300", "diagnostic"),
        ("99.0400", "therapeutic"),
        ("17.91100", None),  # 毫针治疗: in the table, class not published there
        ("47.0903", None),
    ],
)
def test_bundled_operation_classes_where_known(code: str, oprn_class: str | None) -> None:
    hit = CodeTables.load_bundled().operation(code)
    assert hit is not None and hit.oprn_class == oprn_class


def test_operation_classes_cover_212_codes_and_all_four_classes() -> None:
    table = CodeTables.load_bundled().operation_table()
    assert table is not None and len(table) == FULL[1]
    classes = [e.oprn_class for e in table.entries.values() if e.oprn_class is not None]
    assert len(classes) == 212
    assert set(classes) == {"surgery", "intervention", "therapeutic", "diagnostic"}


def _sample(codes: list[str], n: int, seed: int) -> list[str]:
    return random.Random(seed).sample(codes, n)


def test_codes_drawn_from_the_full_tables_validate() -> None:
    """Any code of the full tables passes the code rules, on both engine paths (`check`):
    a fixed-seed sample of each table, x-extension and dagger/asterisk codes included."""
    tables = CodeTables.load_bundled()
    diag, oprn = tables.diagnosis_table(), tables.operation_table()
    assert diag is not None and oprn is not None
    diag_codes, oprn_codes = sorted(diag.entries), sorted(oprn.entries)
    picks = _sample(diag_codes, 150, 12) + _sample([c for c in diag_codes if "x" in c], 50, 13)
    picks += _sample([c for c in diag_codes if "+" in c], 25, 14)
    oprn_picks = _sample(oprn_codes, 120, 15) + _sample([c for c in oprn_codes if "x" in c], 40, 16)
    oprn_picks += ["17.91100", "17.912A0", next(c for c in oprn_codes if c[-5] == "x")]
    code_rules = {"DIAG_FORMAT", "DIAG_UNKNOWN", "OPRN_FORMAT", "OPRN_UNKNOWN"}
    for i in range(0, len(picks), 3):
        doc = golden()
        for j, code in enumerate(picks[i : i + 3]):
            doc["input"]["diseinfo"][j]["diag_code"] = code
        doc["input"]["oprninfo"][0]["oprn_oprt_code"] = oprn_picks[i % len(oprn_picks)]
        doc["input"]["oprninfo"][1]["oprn_oprt_code"] = oprn_picks[(i + 1) % len(oprn_picks)]
        found = [e for e in check(doc) if e.rule in code_rules]
        assert found == [], (picks[i : i + 3], found)


def test_ordinary_codes_the_subset_lacked_validate() -> None:
    doc = mutate(
        golden(),
        input__diseinfo__0__diag_code="I11.900",
        input__setlinfo__wm_dise_code="I11.900",
        input__diseinfo__1__diag_code="E11.900",
    )
    assert check(doc) == []


def test_lookup_normalises_case_and_blanks() -> None:
    tables = CodeTables.load_bundled()
    assert tables.diagnosis(" k35.800X001 ") is not None
    assert tables.operation("74.1X00") is not None
    assert normalise_code("n40.X00") == "N40.x00"


def test_formats() -> None:
    assert is_diagnosis_format("K35.800x002")
    assert is_diagnosis_format("A01.001+K77.0*")
    assert is_diagnosis_format("M8140/3")
    assert not is_diagnosis_format("K35-8")
    assert is_operation_format("54.5100x009")
    assert not is_operation_format("4701")


def _table(kind: str, version: str, start: date, codes: list[str]) -> CodeTable:  # type: ignore[type-arg]
    if kind == "diagnosis":
        return CodeTable(kind, version, start, [DiagnosisCode(c, c, c[:3]) for c in codes])
    return CodeTable(kind, version, start, [OperationCode(c, c, "surgery") for c in codes])


def test_version_in_force_on_the_discharge_date() -> None:
    old = _table("diagnosis", "v1", date(2021, 1, 1), ["K35.800", "K35.900"])
    new = _table("diagnosis", "v2", date(2026, 7, 1), ["K35.800", "K35.801"])
    tables = CodeTables([new, old])
    assert tables.diagnosis("K35.900", on=date(2026, 6, 30)) is not None
    assert tables.diagnosis("K35.900", on=date(2026, 7, 1)) is None
    assert tables.diagnosis("K35.801", on=date(2026, 7, 1)) is not None
    assert tables.diagnosis("K35.801", on=date(2026, 6, 30)) is None
    assert tables.diagnosis("K35.800", on=date(2020, 12, 31)) is None
    assert tables.diagnosis("K35.801") is not None  # default: latest


def test_validator_uses_the_version_of_the_discharge_date() -> None:
    """A code dropped by a later version is still valid for stays discharged before it."""
    bundled = CodeTables.load_bundled()
    diag = bundled.diagnosis_table()
    assert diag is not None
    later = CodeTable(
        "diagnosis",
        "later",
        date(2026, 11, 15),
        [e for c, e in diag.entries.items() if c != "I10.x00"],
    )
    v = Validator(codes=bundled.with_tables(diagnosis=[later]))
    doc = golden()  # discharged 2026-11-20, under "later": I10.x00 unknown
    assert "DIAG_UNKNOWN" in rules(check(doc, v))
    earlier = mutate(
        doc,
        input__setlinfo__dscg_time="2026-11-14 10:00:00",
        input__setlinfo__setl_end_date="2026-11-14",
        input__setlinfo__setl_time="2026-11-14 11:00:00",
        input__icuinfo=[],
    )
    assert "DIAG_UNKNOWN" not in rules(check(earlier, v))


def test_lookup_is_a_dict_access() -> None:
    table = CodeTables.load_bundled().diagnosis_table()
    assert table is not None and isinstance(table.entries, dict)


NHSA_DIAG = [
    ["医疗保障疾病诊断分类与代码（ICD-10医保版2.0）"],
    [],
    ["章", "章代码范围", "类目代码", "类目名称", "亚目代码", "亚目名称", "诊断代码", "诊断名称"],
    ["1", "A00-B99", "A00", "霍乱", "A00.0", "古典生物型霍乱", "A00.000", "古典生物型霍乱"],
    ["1", "A00-B99", "A00", "霍乱", "A00.0", "古典生物型霍乱", "a00.000X001", "霍乱轻型"],
    ["", "", "", "", "", "", "", ""],
]


def test_import_nhsa_diagnosis_rows() -> None:
    entries = list(import_nhsa_rows("diagnosis", NHSA_DIAG))
    assert [(e.code, e.name) for e in entries] == [
        ("A00.000", "古典生物型霍乱"),
        ("A00.000x001", "霍乱轻型"),
    ]


def test_import_nhsa_operation_rows_keeps_the_class() -> None:
    rows = [
        ["类目代码", "手术操作代码", "手术操作名称", "类别"],
        ["47.0", "47.0100", "腹腔镜下阑尾切除术", "手术"],
        ["45.2", "45.2300", "结肠镜检查", "诊断性操作"],
        ["36.0", "36.0600", "非药物洗脱冠状动脉支架置入", "介入治疗"],
        ["99.0", "99.0400", "浓缩红细胞输注", "治疗性操作"],
    ]
    entries = list(import_nhsa_rows("operation", rows))
    assert [getattr(e, "oprn_class", None) for e in entries] == [
        "surgery",
        "diagnostic",
        "intervention",
        "therapeutic",
    ]


def test_import_rejects_bad_layouts() -> None:
    with pytest.raises(CodeImportError):
        list(import_nhsa_rows("diagnosis", [["foo", "bar"], ["1", "2"]]))
    with pytest.raises(CodeImportError, match="malformed"):
        list(import_nhsa_rows("diagnosis", [["诊断代码", "诊断名称"], ["K35-8", "x"]]))
    with pytest.raises(CodeImportError, match="operation class"):
        list(
            import_nhsa_rows(
                "operation", [["手术操作代码", "手术操作名称", "类别"], ["47.0100", "x", "?"]]
            )
        )


def test_import_operations_without_a_class_column() -> None:
    """NHSA releases (and the bundled 2.0 table) without 类别: the class is not published."""
    rows = [["手术操作代码", "手术操作名称"], ["47.0100", "腹腔镜下阑尾切除术"], ["17.912A0", "x"]]
    entries = list(import_nhsa_rows("operation", rows))
    assert [(e.code, getattr(e, "oprn_class", "?")) for e in entries] == [
        ("47.0100", None),
        ("17.912A0", None),
    ]
    with_empty = [["手术操作代码", "手术操作名称", "类别"], ["47.0100", "x", ""]]
    assert [getattr(e, "oprn_class", "?") for e in import_nhsa_rows("operation", with_empty)] == [
        None
    ]


# --- effective-dated versions: a newer NHSA release ---------------------------------------

NEW_CODE = "K35.800x099"  # not in 2.0; valid only in the newer version below
NEWER = date(2027, 1, 1)


def _newer_release() -> CodeTables:
    bundled = CodeTables.load_bundled()
    diag = bundled.diagnosis_table()
    assert diag is not None and NEW_CODE not in diag
    entries = [*diag.entries.values(), DiagnosisCode(NEW_CODE, "新增代码", "K35")]
    return bundled.with_tables(diagnosis=[CodeTable("diagnosis", "ICD-10-YB-2.1", NEWER, entries)])


def _discharged(doc: dict[str, object], day: str) -> dict[str, object]:
    return mutate(
        doc,
        input__setlinfo__adm_time=f"{day} 08:00:00",
        input__setlinfo__dscg_time=f"{day} 18:00:00",
        input__setlinfo__setl_begn_date=day,
        input__setlinfo__setl_end_date=day,
        input__setlinfo__setl_time=f"{day} 19:00:00",
        input__setlinfo__dcla_time=f"{day} 19:00:00",
        input__oprninfo=[],
        input__icuinfo=[],
    )


def test_a_code_of_a_newer_version_counts_from_its_effective_date() -> None:
    """The version switch follows the discharge date: a code only the newer release has is
    accepted for a stay discharged on or after its effective date and refused before."""
    tables = _newer_release()
    v = Validator(codes=tables)
    doc = mutate(golden(), input__diseinfo__1__diag_code=NEW_CODE)
    after = _discharged(doc, "2027-01-01")
    before = _discharged(doc, "2026-12-31")
    received = datetime(2027, 1, 2, 9, 0, 0)
    assert "DIAG_UNKNOWN" not in rules(check(after, v, received))
    assert fields_of_rule(check(before, v, received), "DIAG_UNKNOWN") == {"diseinfo[1].diag_code"}
    assert tables.diagnosis(NEW_CODE, on=NEWER) is not None
    assert tables.diagnosis(NEW_CODE, on=date(2026, 12, 31)) is None


# --- legacy codes ---------------------------------------------------------------------------


def test_a_legacy_diagnosis_is_a_warning_naming_the_2_0_code() -> None:
    tables = CodeTables.load_bundled()
    assert tables.diagnosis("K35.900") is None  # ICD-10 国标 code, not 医保版 2.0
    assert tables.legacy_diagnosis("K35.900") == tables.diagnosis("K35.800x001")
    errors = check(mutate(golden(), input__diseinfo__1__diag_code="K35.900"))
    assert [(e.rule, e.field, e.severity) for e in errors] == [
        ("DIAG_LEGACY", "diseinfo[1].diag_code", "warn")
    ]
    assert "K35.800x001" in errors[0].message and "K35.800x001" in errors[0].message_en
    assert not is_rejected(errors)


def test_a_legacy_operation_is_a_warning_naming_the_2_0_code() -> None:
    errors = check(mutate(golden(), input__oprninfo__1__oprn_oprt_code="37.8300x002"))
    assert [(e.rule, e.field, e.severity) for e in errors] == [
        ("OPRN_LEGACY", "oprninfo[1].oprn_oprt_code", "warn")
    ]
    assert "00.5000x004" in errors[0].message


def test_legacy_codes_everywhere_a_code_is_checked() -> None:
    doc = mutate(
        golden(),
        input__setlinfo__wm_dise_code="k35.900",  # normalised before the map lookup
        input__opspdiseinfo=[
            {"diag_name": "x", "diag_code": "K35.900", "oprn_oprt_name": "y",
             "oprn_oprt_code": "37.8300x002"}
        ],
    )  # fmt: skip
    found = {(e.rule, e.field) for e in check(doc) if e.rule.endswith("_LEGACY")}
    assert found == {
        ("DIAG_LEGACY", "setlinfo.wm_dise_code"),
        ("DIAG_LEGACY", "opspdiseinfo[0].diag_code"),
        ("OPRN_LEGACY", "opspdiseinfo[0].oprn_oprt_code"),
    }


def test_a_city_can_refuse_legacy_codes_or_switch_the_hint_off() -> None:
    doc = mutate(golden(), input__diseinfo__1__diag_code="K35.900")
    strict = Validator(RuleConfig(rules={"DIAG_LEGACY": "reject"}))
    assert [(e.rule, e.severity) for e in check(doc, strict)] == [("DIAG_LEGACY", "reject")]
    off = Validator(RuleConfig(rules={"DIAG_LEGACY": "off"}))
    assert [e.rule for e in check(doc, off)] == ["DIAG_UNKNOWN"]


def test_unknown_codes_that_no_map_knows_stay_unknown() -> None:
    doc = mutate(golden(), input__diseinfo__1__diag_code="K35.999")
    assert rules(check(doc)) == {"DIAG_UNKNOWN"}
    # a legacy code whose 2.0 target is not in the version in force: nothing to name
    tables = CodeTables.load_bundled()
    diag = tables.diagnosis_table()
    assert diag is not None
    without = CodeTable(
        "diagnosis", "drops-K35.800x001", date(2026, 1, 1),
        [e for c, e in diag.entries.items() if c != "K35.800x001"],
    )  # fmt: skip
    v = Validator(codes=tables.with_tables(diagnosis=[without]))
    assert rules(check(mutate(golden(), input__diseinfo__1__diag_code="K35.900"), v)) == {
        "DIAG_UNKNOWN"
    }
