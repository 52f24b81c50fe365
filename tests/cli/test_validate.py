"""`dipgw validate FILE…`: per-record report, summary, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from tests.builders import golden, mutate
from tests.commands import MODULES, run

RECEIVED = ["--received-at", "2026-11-24T09:30:00+08:00"]


def _write(path: Path, docs: list[object], ndjson: bool = False) -> Path:
    if ndjson:
        path.write_bytes(b"\n".join(msgspec.json.encode(d) for d in docs) + b"\n")
    else:
        path.write_bytes(msgspec.json.encode(docs[0] if len(docs) == 1 else docs))
    return path


def test_commands_are_registered_in_the_cli() -> None:
    from gateway import cli

    assert set(MODULES) <= set(cli._COMMAND_MODULES)


def test_clean_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "one.json", [golden()])
    assert run(["validate", str(path), "--json", *RECEIVED]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"] == {"records": 1, "accepted": 1, "rejected": 0, "by_rule": {},
                                 "by_dimension": {}, "by_severity": {}}  # fmt: skip
    assert report["records"][0]["accepted"] is True
    assert report["records"][0]["case_key"] == "H44010000001:SETL000000000001"


def test_rejections_exit_1_with_json_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = mutate(golden(), input__setlinfo__gend="7", input__setlinfo__dscg_way="2")
    path = _write(tmp_path / "feed.ndjson", [golden(), bad], ndjson=True)
    assert run(["validate", str(path), "--json", *RECEIVED]) == 1
    report = json.loads(capsys.readouterr().out)
    first, second = report["records"]
    assert (first["position"], first["accepted"]) == ("line 1", True)
    assert (second["position"], second["accepted"]) == ("line 2", False)
    keys = {"rule", "field", "dimension", "severity", "message", "message_en"}
    assert all(set(e) == keys for e in second["errors"])
    assert {(e["rule"], e["field"], e["severity"]) for e in second["errors"]} == {
        ("DICT_VALUE", "setlinfo.gend", "reject"),
        ("REQ_ACP_MEDINS", "setlinfo.acp_medins_name", "warn"),
        ("REQ_ACP_MEDINS", "setlinfo.acp_optins_code", "warn"),
    }
    summary = report["summary"]
    assert summary["by_rule"] == {"DICT_VALUE": 1, "REQ_ACP_MEDINS": 2}
    assert summary["by_dimension"] == {"完整性": 2, "规范性": 1}
    assert (summary["accepted"], summary["rejected"]) == (1, 1)


def test_warnings_alone_exit_0(tmp_path: Path) -> None:
    path = _write(tmp_path / "w.json", [mutate(golden(), input__setlinfo__dscg_way="2")])
    assert run(["validate", str(path), "--json", *RECEIVED]) == 0


def test_human_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = mutate(golden(), input__setlinfo__certno="440100197005010010")
    path = _write(tmp_path / "batch.json", [golden(), bad])
    assert run(["validate", str(path), *RECEIVED]) == 1
    out = capsys.readouterr().out
    assert "CERTNO_CHECK" in out and "records[1]" in out and "规范性" in out
    assert "440100197005010010" not in out  # personal data never printed


def test_unreadable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path / "ok.json", [golden()])
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a workbook")
    assert run(["validate", str(good), str(broken), "--json", *RECEIVED]) == 2
    captured = capsys.readouterr()
    assert "unreadable" in captured.err
    assert json.loads(captured.out)["summary"]["records"] == 1
    assert run(["validate", str(tmp_path / "missing.json")]) == 2
    assert run(["validate", str(tmp_path / "x.txt")]) == 2
    assert run(["validate"]) == 2  # usage


def test_rules_file_and_csv_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[rules]\n"REQ_FIELD" = "off"\n"DIAG_MAIN" = "off"\n', encoding="utf-8")
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"机构": "fixmedins_code", "区划": "mdtrtarea_admvs"}), "utf-8")
    data = tmp_path / "rows.csv"
    data.write_text(
        "机构,区划,setlinfo.setl_id\nH44010000001,440100,S1\nH4401,440100,S2\n", "utf-8"
    )
    code = run(["validate", str(data), "--rules", str(rules), "--mapping", str(mapping), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [r["accepted"] for r in report["records"]] == [True, False]
    assert [e["rule"] for e in report["records"][1]["errors"]] == ["INST_FORMAT"]


def test_bad_rules_file_exits_2(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[rules]\n"NOPE" = "off"\n', encoding="utf-8")
    path = _write(tmp_path / "one.json", [golden()])
    assert run(["validate", str(path), "--rules", str(rules)]) == 2


def test_wrapped_batch_with_spaces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "batch.json"
    path.write_bytes(b'{ "records" : ' + msgspec.json.encode([golden(), golden()]) + b"}")
    assert run(["validate", str(path), "--json", *RECEIVED]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["position"] for r in report["records"]] == ["records[0]", "records[1]"]
