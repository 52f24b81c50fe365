"""Reading NHSA files and the store of imported code tables."""

from __future__ import annotations

from pathlib import Path

from adapters import load_code_store, read_table_rows
from contracts import CodeTables


def test_store_without_manifest_is_just_the_bundle(tmp_path: Path) -> None:
    bundled = CodeTables.load_bundled().versions()
    assert load_code_store(tmp_path).versions() == bundled
    assert load_code_store(None).versions() == bundled


def test_read_csv_in_gb18030_and_utf8(tmp_path: Path) -> None:
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("诊断代码,诊断名称\nA00.000,古典生物型霍乱\n".encode("gb18030"))
    utf = tmp_path / "utf.csv"
    utf.write_text("\ufeff诊断代码,诊断名称\nA00.000,古典生物型霍乱\n", encoding="utf-8")
    assert list(read_table_rows(gbk)) == list(read_table_rows(utf))
    assert list(read_table_rows(gbk))[1] == ["A00.000", "古典生物型霍乱"]
