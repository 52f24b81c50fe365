"""From request bytes to checked uploads (pure: no broker, no database)."""

from __future__ import annotations

import copy
import io
import random
from datetime import datetime
from typing import Any

import msgspec
import openpyxl
import pytest

from contracts import CST
from contracts.samples import make_settlement
from gateway.checks import Checked, Checker, Rejected

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=CST)
CHECKER = Checker()


def _doc(seed: int = 1, **over: Any) -> dict[str, Any]:
    doc = make_settlement(
        random.Random(seed),
        now=NOW.replace(tzinfo=None),
        mdtrtarea_admvs="440100",
        insuplc_admdvs="440300",
        fixmedins_code="H44010000001",
    )
    doc.update(over)
    return doc


def _one(doc: Any) -> Checked | Rejected:
    return CHECKER.check_one(msgspec.json.encode(doc), NOW)


def test_a_valid_list_becomes_an_upload_with_its_routing_keys() -> None:
    doc = _doc()
    checked = _one(doc)
    assert isinstance(checked, Checked), getattr(checked, "errors", None)
    upload = checked.upload
    assert upload.case_key == f"H44010000001:{doc['input']['setlinfo']['setl_id']}"
    assert (upload.mdtrtarea_admvs, upload.insuplc_admdvs) == ("440100", "440300")
    assert checked.discharged_at is not None and checked.discharged_at.tzinfo is not None
    # the stored document is the canonical record, not the raw bytes
    assert msgspec.json.decode(upload.document)["fixmedins_code"] == "H44010000001"


def test_identity_ignores_envelope_meta_but_not_the_list() -> None:
    doc = _doc()
    resend = dict(doc, msgid="H440100000019999", inf_time="2026-11-24 10:00:00")
    first, again = _one(doc), _one(resend)
    assert isinstance(first, Checked) and isinstance(again, Checked)
    assert first.upload.content_sha256 == again.upload.content_sha256
    changed = copy.deepcopy(doc)
    changed["input"]["setlinfo"]["medins_fill_psn"] = "复核员"
    other = _one(changed)
    assert isinstance(other, Checked)
    assert other.upload.content_sha256 != first.upload.content_sha256


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", {("DEC_JSON", "")}),
        (b'{"a":', {("DEC_JSON", "")}),
        (b'"text"', {("DEC_SHAPE", "")}),
    ],
)
def test_undecodable_documents_name_their_rule(body: bytes, expected: set[tuple[str, str]]) -> None:
    rejected = CHECKER.check_one(body, NOW)
    assert isinstance(rejected, Rejected)
    assert {(e.rule, e.field) for e in rejected.errors} == expected


def test_missing_routing_keys_are_rejected_with_their_fields() -> None:
    doc = _doc()
    del doc["fixmedins_code"], doc["mdtrtarea_admvs"]
    del doc["input"]["setlinfo"]["setl_id"]
    rejected = _one(doc)
    assert isinstance(rejected, Rejected)
    fields = {e.field for e in rejected.errors if e.severity == "reject"}
    assert {"fixmedins_code", "mdtrtarea_admvs", "setlinfo.setl_id"} <= fields


def test_rejection_carries_a_masked_copy_only() -> None:
    doc = _doc()
    doc["input"]["setlinfo"]["psn_name"] = "王小明"
    doc["input"]["diseinfo"][0]["diag_code"] = "NOT-A-CODE"
    rejected = _one(doc)
    assert isinstance(rejected, Rejected)
    text = msgspec.json.encode(rejected.masked_document).decode()
    assert "王小明" not in text and doc["input"]["setlinfo"]["certno"] not in text
    assert rejected.case_key == f"H44010000001:{doc['input']['setlinfo']['setl_id']}"


@pytest.mark.parametrize(("escape", "rule"), [(b"\\u0000", "FMT004"), (b"\\ud800", "DEC_JSON")])
def test_text_postgres_cannot_store_is_rejected(escape: bytes, rule: str) -> None:
    body = msgspec.json.encode(_doc()).replace(
        b'"H44010000001"', b'"H4401000000' + escape + b'"', 1
    )
    rejected = CHECKER.check_one(body, NOW)
    assert isinstance(rejected, Rejected)
    assert rejected.errors[0].rule == rule


@pytest.mark.parametrize(
    ("where", "field"),
    [
        (("fixmedins_code",), "fixmedins_code"),
        (("input", "setlinfo", "certno"), "setlinfo.certno"),
        (("input", "diseinfo", 1, "diag_name"), "diseinfo[1].diag_name"),
        (("input", "diseinfo", 1, "110105199001010023"), "diseinfo[1]"),
        (("input", "setlinfo", "张三", "x"), "setlinfo"),
        (("input", "secret_node", "x"), "$"),
        (("110105199001010023",), "$"),
    ],
)
def test_an_unstorable_text_is_named_by_the_contracts_part_of_its_path(
    where: tuple[str | int, ...], field: str
) -> None:
    """Key names are the sender's text: only the fields the contract knows are named."""
    doc: Any = _doc()
    doc["input"]["diseinfo"] = [{}, {}]
    node = doc
    for key in where[:-1]:
        node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
    node[where[-1]] = "x\u0000"
    rejected = CHECKER.check_one(msgspec.json.encode(doc), NOW)
    assert isinstance(rejected, Rejected)
    assert [(e.rule, e.field) for e in rejected.errors] == [("FMT004", field)]
    assert "110105199001010023" not in msgspec.json.encode(rejected.errors).decode()


def test_national_endpoint_checks_the_transaction_number() -> None:
    rejected = CHECKER.check_one(msgspec.json.encode(_doc(infno="4101A")), NOW, infno="4101")
    assert isinstance(rejected, Rejected)
    assert "ENV_INFNO" in {e.rule for e in rejected.errors}


def test_batch_and_ndjson_check_each_record_and_bound_the_size() -> None:
    good, bad = _doc(1), _doc(2)
    bad["input"]["setlinfo"]["setl_id"] = ""
    body = msgspec.json.encode({"records": [good, bad, good]})
    results = CHECKER.check_many(body, "batch", NOW, max_records=3)
    assert [type(r).__name__ for r in results] == ["Checked", "Rejected", "Checked"]
    assert [r.position for r in results] == ["records[0]", "records[1]", "records[2]"]
    with pytest.raises(Rejected) as too_many:
        CHECKER.check_many(body, "batch", NOW, max_records=2)
    assert too_many.value.errors[0].rule == "BATCH_TOO_LARGE"
    lines = msgspec.json.encode(good) + b"\n\n{oops\n"
    results = CHECKER.check_many(lines, "ndjson", NOW, max_records=10)
    assert [(r.position, type(r).__name__) for r in results] == [
        ("line 1", "Checked"),
        ("line 3", "Rejected"),
    ]


def _flat_rows() -> tuple[list[str], list[list[str]]]:
    doc = _doc(5)
    s = doc["input"]["setlinfo"]
    header = ["fixmedins_code", "mdtrtarea_admvs", "insuplc_admdvs", *s.keys()]
    row = [
        doc["fixmedins_code"],
        doc["mdtrtarea_admvs"],
        doc["insuplc_admdvs"],
        *(str(v) for v in s.values()),
    ]
    return header, [row]


def test_csv_and_xlsx_exports_are_checked_row_by_row() -> None:
    header, rows = _flat_rows()
    csv_body = ("\n".join(",".join(r) for r in [header, *rows]) + "\n").encode()
    results = CHECKER.check_many(csv_body, "csv", NOW, max_records=10)
    assert [r.position for r in results] == ["row 2"]
    book = openpyxl.Workbook()
    sheet = book.active
    for r in [header, *rows]:
        sheet.append(r)
    out = io.BytesIO()
    book.save(out)
    results_x = CHECKER.check_many(out.getvalue(), "xlsx", NOW, max_records=10)
    assert [r.position for r in results_x] == ["row 2"]
    # a flat row has no diagnoses here: both must give the same verdict and errors
    assert type(results[0]) is type(results_x[0])
    with pytest.raises(Rejected):
        CHECKER.check_many(b"PK\x03\x04 not a workbook", "xlsx", NOW, max_records=10)


def _flat_export(doc: dict[str, Any]) -> tuple[list[str], list[str]]:
    """A settlement list as one flat row with path headers (docs/upload-format.md)."""
    row = {k: str(v) for k, v in doc.items() if k != "input"}
    row.update({f"setlinfo.{k}": str(v) for k, v in doc["input"]["setlinfo"].items()})
    for node in ("diseinfo", "oprninfo", "icuinfo"):
        for i, entry in enumerate(doc["input"].get(node, [])):
            row.update({f"{node}[{i}].{k}": str(v) for k, v in entry.items()})
    header = sorted(row)
    return header, [row[h] for h in header]


@pytest.mark.parametrize("column", ["setlinfo.psn_name", "diseinfo[0].diag_name"])
def test_a_csv_row_with_text_postgres_cannot_store_is_refused_at_the_door(column: str) -> None:
    """A NUL in a free-text cell used to be accepted, then dead-lettered by the sink (22P05):
    a receipt answered 'accepted' whose case was never stored. (XLSX cannot carry a NUL:
    XML forbids it, and the workbook is refused whole.)"""
    doc = _doc(7)
    header, row = _flat_export(doc)
    assert isinstance(_one(doc), Checked)
    clean = list(row)
    row[header.index(column)] = "王\x00小明"
    body = "\n".join(",".join(r) for r in (header, clean, row)).encode() + b"\n"
    first, second = CHECKER.check_many(body, "csv", NOW, max_records=10)
    assert isinstance(first, Checked)
    assert isinstance(second, Rejected)
    assert [(e.rule, e.field) for e in second.errors] == [("FMT004", column)]
