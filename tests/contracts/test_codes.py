"""Code tables: bundled subset, effective-dated versions, O(1) lookups, NHSA import."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from contracts import (
    CodeImportError,
    CodeTable,
    CodeTables,
    DiagnosisCode,
    OperationCode,
    Validator,
    import_nhsa_rows,
    is_diagnosis_format,
    is_operation_format,
    normalise_code,
)
from tests.builders import check, golden, mutate, rules

REFERENCE = Path("/work/shared/reference/icd10-categories.json")


def test_bundled_diagnoses_cover_every_category() -> None:
    tables = CodeTables.load_bundled()
    table = tables.diagnosis_table()
    assert table is not None
    categories = [code for code in table.entries if len(code) == 3]
    assert len(categories) == 1964
    if REFERENCE.exists():
        assert set(categories) == set(json.loads(REFERENCE.read_text(encoding="utf-8")))
    assert len(table) - 1964 >= 300


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("K35.800x002", "急性化脓性阑尾炎"),
        ("I21.000", "急性前壁透壁性心肌梗死"),
        ("S72.000", "股骨颈骨折"),
        ("O80.000", "头位顺产"),
        ("P07.300", "早产儿"),
        ("C34.900", "肺恶性肿瘤"),
        ("N40.x00", "前列腺增生"),
        ("A00", "霍乱"),
    ],
)
def test_bundled_diagnosis_examples(code: str, name: str) -> None:
    hit = CodeTables.load_bundled().diagnosis(code, on=date(2026, 11, 20))
    assert hit is not None and hit.name == name and hit.category == code[:3]


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
    ],
)
def test_bundled_operation_examples(code: str, oprn_class: str) -> None:
    hit = CodeTables.load_bundled().operation(code)
    assert hit is not None and hit.oprn_class == oprn_class


def test_operation_subset_covers_all_four_classes() -> None:
    table = CodeTables.load_bundled().operation_table()
    assert table is not None and len(table) >= 200
    assert {e.oprn_class for e in table.entries.values()} == {
        "surgery",
        "intervention",
        "therapeutic",
        "diagnostic",
    }


def test_lookup_normalises_case_and_blanks() -> None:
    tables = CodeTables.load_bundled()
    assert tables.diagnosis(" k35.800X002 ") is not None
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
    with pytest.raises(CodeImportError, match="类别"):
        list(import_nhsa_rows("operation", [["手术操作代码", "手术操作名称"], ["47.0100", "x"]]))
    with pytest.raises(CodeImportError, match="malformed"):
        list(import_nhsa_rows("diagnosis", [["诊断代码", "诊断名称"], ["K35-8", "x"]]))
    with pytest.raises(CodeImportError, match="operation class"):
        list(
            import_nhsa_rows(
                "operation", [["手术操作代码", "手术操作名称", "类别"], ["47.0100", "x", "?"]]
            )
        )
