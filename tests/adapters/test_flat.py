"""CSV and XLSX exports mapped onto the upload document."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from adapters import chinese_mapping, iter_csv, iter_xlsx, row_to_document
from tests.builders import RECEIVED, golden, validator


def _flatten(doc: dict[str, Any]) -> dict[str, str]:
    """The golden record as one flat row with path headers."""
    row: dict[str, str] = {}
    for key, value in doc.items():
        if key != "input":
            row[key] = str(value)
    for key, value in doc["input"]["setlinfo"].items():
        row[f"setlinfo.{key}"] = str(value)
    for node in ("diseinfo", "oprninfo", "icuinfo"):
        for i, entry in enumerate(doc["input"][node]):
            for key, value in entry.items():
                row[f"{node}[{i}].{key}"] = str(value)
    return row


def _csv(rows: list[dict[str, str]], extra_line: str = "") -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue() + extra_line


def _accepted(record: Any) -> bool:
    assert record.envelope is not None, record.errors
    errors = validator().validate_decoded(record.envelope, record.errors, received_at=RECEIVED)
    return not any(e.severity == "reject" for e in errors)


def test_csv_with_path_headers(tmp_path: Path) -> None:
    row = _flatten(golden())
    broken = dict(row, **{"setlinfo.lv1_nurscare_days": "many"})
    path = tmp_path / "export.csv"
    path.write_text(
        _csv([row, broken, row], extra_line='a,b\n"unterminated\n'), encoding="utf-8-sig"
    )
    records = list(iter_csv(path))
    assert [r.position for r in records[:3]] == ["row 2", "row 3", "row 4"]
    assert _accepted(records[0]) and _accepted(records[2])
    assert [(e.rule, e.field) for e in records[1].errors] == [
        ("DEC_TYPE", "setlinfo.lv1_nurscare_days")
    ]
    assert records[2].envelope is not None
    assert records[2].envelope.input.diseinfo[2].diag_code == "E11.900"


def test_csv_row_with_too_many_cells_is_dec_row() -> None:
    text = "setl_id,psn_name\nS1,张三\nS2,李四,extra\n"
    records = list(iter_csv(io.StringIO(text)))
    assert records[0].errors == [] or all(e.rule != "DEC_ROW" for e in records[0].errors)
    assert [e.rule for e in records[1].errors] == ["DEC_ROW"]
    assert records[1].envelope is None and records[1].position == "row 3"


def test_csv_with_chinese_headers_and_a_mapping() -> None:
    mapping = chinese_mapping()
    assert mapping["人员姓名"] == "setlinfo.psn_name"
    assert mapping["诊断代码1"] == "diseinfo[0].diag_code"
    assert mapping["手术操作代码2"] == "oprninfo[1].oprn_oprt_code"
    text = "结算ID,人员姓名,诊断代码1,主诊断标志1,诊断代码3\nS1,张三,K80.100,1,I10.x00\n"
    [record] = list(iter_csv(io.StringIO(text), mapping))
    assert record.envelope is not None
    sl = record.envelope.input.setlinfo
    assert (sl.setl_id, sl.psn_name) == ("S1", "张三")
    # list entries are packed in index order
    assert [d.diag_code for d in record.envelope.input.diseinfo] == ["K80.100", "I10.x00"]


def test_row_to_document_defaults() -> None:
    doc = row_to_document([("setlinfo.setl_id", "S1")], {"fixmedins_code": "H44010000001"})
    assert doc["infno"] == "4101A" and doc["fixmedins_code"] == "H44010000001"
    assert doc["input"]["setlinfo"] == {"setl_id": "S1"}


def test_xlsx_with_excel_types(tmp_path: Path) -> None:
    from datetime import datetime

    row = _flatten(golden())
    wb = Workbook()
    ws = wb.active
    headers = list(row)
    ws.append(headers)
    values: list[Any] = []
    for h in headers:
        v = row[h]
        if h == "setlinfo.adm_time":
            values.append(datetime(2026, 11, 10, 8, 0))  # a real Excel datetime cell
        elif h == "setlinfo.lv1_nurscare_days":
            values.append(2.0)  # Excel stores numbers as floats
        elif h == "setlinfo.gend":
            values.append(1)
        else:
            values.append(v)
    ws.append(values)
    ws.append([None] * len(headers))  # blank row: skipped
    ws.append(["x" if h == "setlinfo.brdy" else values[i] for i, h in enumerate(headers)])
    path = tmp_path / "export.xlsx"
    wb.save(path)
    records = list(iter_xlsx(path))
    assert [r.position for r in records] == ["row 2", "row 4"]
    assert _accepted(records[0])
    assert records[0].envelope is not None
    assert records[0].envelope.input.setlinfo.adm_time == datetime(2026, 11, 10, 8, 0)
    assert [(e.rule, e.field) for e in records[1].errors] == [("FMT_DATETIME", "setlinfo.brdy")]


@pytest.mark.parametrize(
    "header",
    ["diseinfo[" + "9" * 5000 + "].diag_code", "diseinfo[١].diag_code", "diseinfo[1000].x"],
)
def test_a_list_column_is_an_ascii_index_below_1000_or_ignored(header: str) -> None:
    """A 5,000-digit index made int() refuse the whole file (issue 11)."""
    doc = row_to_document([("setlinfo.setl_id", "S1"), (header, "K35.800")])
    assert "diseinfo" not in doc["input"]
    doc = row_to_document([("diseinfo[2].diag_code", "K35.800")])
    assert doc["input"]["diseinfo"] == [{"diag_code": "K35.800"}]
