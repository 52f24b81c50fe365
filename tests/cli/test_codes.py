"""`dipgw codes import|list|lookup` and the code store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import Workbook

from adapters import load_code_store
from contracts import Validator
from tests.builders import check, golden, mutate, rules
from tests.commands import run


def _nhsa_operations_xlsx(path: Path) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.append(["医疗保障手术操作分类与代码（ICD-9-CM-3医保版2.0）"])
    ws.append(["章", "类目代码", "手术操作代码", "手术操作名称", "类别"])
    ws.append(["7", "47.0", "47.0100", "腹腔镜下阑尾切除术", "手术"])
    ws.append(["7", "47.0", "47.0900x099", "经脐单孔腹腔镜阑尾切除术", "手术"])  # not in 2.0
    ws.append(["16", "89.5", "89.5200", "心电图", "诊断性操作"])
    ws.append(["16", "89.5", "51.2300", "腹腔镜下胆囊切除术", "手术"])
    wb.save(path)
    return path


def test_import_xlsx_then_lookup_and_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "codes"
    source = _nhsa_operations_xlsx(tmp_path / "icd9.xlsx")
    argv = ["codes", "import", str(source), "--kind", "operation", "--version", "OPS-2026",
            "--effective", "2026-11-15", "--store", str(store)]  # fmt: skip
    assert run(argv) == 0
    assert "imported 4 operation codes" in capsys.readouterr().out
    assert (
        run(["codes", "lookup", "47.0900x099", "--kind", "operation", "--store", str(store)]) == 0
    )
    assert json.loads(capsys.readouterr().out)["oprn_class"] == "surgery"
    # before the effective date the bundled version is in force, where the code is unknown
    argv = ["codes", "lookup", "47.0900x099", "--kind", "operation", "--on", "2026-11-14",
            "--store", str(store)]  # fmt: skip
    assert run(argv) == 1
    tables = load_code_store(store)
    v = Validator(codes=tables)
    doc = mutate(golden(), input__oprninfo__1__oprn_oprt_code="47.0900x099")
    assert "OPRN_UNKNOWN" not in rules(check(doc, v))  # discharged 2026-11-20: new version
    assert "OPRN_UNKNOWN" in rules(check(doc))  # bundled only
    # 99.0400 is not in the imported version: unknown for stays discharged after 2026-11-15
    assert "OPRN_UNKNOWN" in rules(
        check(mutate(golden(), input__oprninfo__1__oprn_oprt_code="99.0400"), v)
    )


def test_import_csv_diagnoses_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "codes"
    source = tmp_path / "icd10.csv"
    source.write_bytes("诊断代码,诊断名称\nK80.100,胆囊结石伴有其他胆囊炎\n".encode("gb18030"))
    argv = ["codes", "import", str(source), "--kind", "diagnosis", "--version", "D-1",
            "--effective", "2027-01-01", "--store", str(store)]  # fmt: skip
    assert run(argv) == 0
    capsys.readouterr()
    assert run(["codes", "list", "--json", "--store", str(store)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"kind": "diagnosis", "version": "D-1", "effective": "2027-01-01", "codes": 1} in listed
    assert any(r["version"].startswith("ICD-9-CM-3") for r in listed)


def test_import_errors_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n", encoding="utf-8")
    base = ["--kind", "diagnosis", "--version", "x", "--store", str(tmp_path / "s")]
    assert run(["codes", "import", str(bad), *base, "--effective", "2026-01-01"]) == 2
    assert run(["codes", "import", str(bad), *base, "--effective", "soon"]) == 2
    assert (
        run(["codes", "import", str(tmp_path / "nope.xlsx"), *base, "--effective", "2026-01-01"])
        == 2
    )
    assert not (tmp_path / "s" / "manifest.toml").exists()


def test_import_a_release_without_a_class_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Newer NHSA operation files (like the bundled 2.0 table) may carry no 类别: imported,
    the class is not published (null), and the codes count from the effective date."""
    store = tmp_path / "codes"
    source = tmp_path / "icd9.csv"
    source.write_text("手术操作代码,手术操作名称\n17.912A0,x\n47.0900x099,新增术式\n", "utf-8")
    argv = ["codes", "import", str(source), "--kind", "operation", "--version", "OPS-2027",
            "--effective", "2027-01-01", "--store", str(store)]  # fmt: skip
    assert run(argv) == 0
    capsys.readouterr()
    look = ["codes", "lookup", "47.0900x099", "--kind", "operation", "--store", str(store)]
    assert run([*look, "--on", "2027-01-01"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "code": "47.0900x099",
        "name": "新增术式",
        "oprn_class": None,
    }
    assert run([*look, "--on", "2026-12-31"]) == 1  # the bundled 2.0 table: unknown
