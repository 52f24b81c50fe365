"""The offline commands `dipgw group`, `dipgw score`, `dipgw catalog build` on files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.commands import catalog, group, score
from workers.dip import SAMPLE_RULES

GZ = str(SAMPLE_RULES["440100"])
SZ = str(SAMPLE_RULES["440300"])


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dipgw")
    sub = parser.add_subparsers(dest="command")
    for module in (group, score, catalog):
        module.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def _case(key: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "case_key": key,
        "fixmedins_code": "H44010000001",
        "hospital_level": "3A",
        "treating_admdvs": "440104",
        "insured_admdvs": "440304",
        "insutype": "310",
        "main_diag_code": "K35.800x002",
        "operations": [["47.0100", "surgery"]],
        "total_cost": "11270.00",
        "discharge_date": "2026-03-02",
    }
    base.update(kw)
    return base


def _write(tmp_path: Path, name: str, cases: list[dict[str, Any]]) -> str:
    p = tmp_path / name
    if name.endswith(".ndjson"):
        p.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    else:
        p.write_text(json.dumps(cases), encoding="utf-8")
    return str(p)


def test_score_json_one_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "c.ndjson", [_case("a")])
    assert _main(["score", "--rules", GZ, "--json", path]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["command"], doc["cases"], doc["failed"], doc["errors"]) == ("score", 1, 0, [])
    result = doc["results"][0]
    # GZ-C002 K35.8 + 47.0100, score 980, 3A (1.00), cost = 3A reference → normal;
    # 980 × 12.35 = 12103.00
    assert result["group"]["group_code"] == "GZ-C002"
    assert result["score"]["deviation"] == "normal"
    assert result["score"]["case_score"] == 980.0
    assert result["score"]["estimated_payment"] == "12103.00"
    assert result["route"] == "cross_city"  # insured in Shenzhen, treated in Guangzhou


def test_each_case_uses_its_treating_city(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [_case("gz"), _case("sz", treating_admdvs="440304", hospital_level="3")]
    path = _write(tmp_path, "c.json", cases)
    assert _main(["score", "--rules", GZ, "--rules", SZ, "--json", path]) == 0
    doc = json.loads(capsys.readouterr().out)
    codes = [r["group"]["group_code"] for r in doc["results"]]
    assert codes == ["GZ-C002", "SZ0002"]
    assert doc["results"][1]["score"]["ruleset_version"].startswith("440300/2026/")


def test_unscorable_cases_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        _case("ok"),
        _case("level", hospital_level="9"),
        _case("elsewhere", treating_admdvs="440604"),
    ]
    path = _write(tmp_path, "c.json", cases)
    assert _main(["score", "--rules", GZ, "--json", path]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["failed"] == 2
    assert [(e["case_key"], e["rule"], e["field"]) for e in doc["errors"]] == [
        ("level", "DIP_SCORE", "hospital_level"),
        ("elsewhere", "DIP_NO_RULES", "mdtrtarea_admvs"),
    ]
    assert all(
        set(e) >= {"rule", "dimension", "severity", "message", "message_en"} for e in doc["errors"]
    )


def test_group_table_and_ungrouped_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path, "c.json", [_case("a"), _case("b", main_diag_code="R69.X00", operations=[])]
    )
    assert _main(["group", "--rules", GZ, path]) == 1
    out = capsys.readouterr().out
    assert "GZ-C002" in out and "ungrouped" in out
    path = _write(tmp_path, "d.json", [_case("a")])
    assert _main(["group", "--rules", GZ, path]) == 0


def test_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, "c.json", [_case("a")])
    assert _main(["score", "--rules", str(tmp_path / "missing.toml"), good]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text('[{"case_key": 1}]', encoding="utf-8")
    assert _main(["score", "--rules", GZ, str(bad)]) == 2
    assert "bad.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        _main(["score", good])  # --rules is required
    assert e.value.code == 2


def test_catalog_build_writes_a_loadable_catalog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["year,main_diag_code,operations,treatment,total_cost"]
    # 3 appendectomies a year for 2023–2025 (threshold 5 → core), two conservative K35.9
    for year, cost in ((2023, 8000), (2024, 9000), (2025, 10000)):
        lines += [f"{year},K35.800,47.0100,surgery,{cost}"] * 3
    lines += ["2025,K35.900,,conservative,3000", "2025,K35.900,,保守治疗,5000", "x,K35,,,1"]
    hist = tmp_path / "h.csv"
    hist.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "cat.csv"
    rc = _main(["catalog", "build", str(hist), "--out", str(out), "--threshold", "5", "--json"])
    assert rc == 1  # one bad row ("x" year) was skipped
    summary = json.loads(capsys.readouterr().out)
    assert (summary["core"], summary["comprehensive"], summary["rows_skipped"]) == (1, 1, 1)
    text = out.read_text(encoding="utf-8")
    # core: m = (1×8000 + 2×9000 + 7×10000)/10 = 9600; comprehensive K35 conservative: only
    # 2025, mean (3000 + 5000)/2 = 4000; M: 2025 mean (3×10000 + 3000 + 5000)/5 = 7600,
    # M = (8000 + 2×9000 + 7×7600)/10 = 79200/10 = 7920
    # RW core = 9600/7920×1000 = 1212.1212; RW comp = 4000/7920×1000 = 505.0505
    # CV core: 8000, 9000, 10000 three times each: sd = sqrt(6 000 000/9) = 816.50 → /9000
    # = 0.0907; CV comp: 3000, 5000: sd 1000 / 4000 = 0.25
    assert "K35.8/47.0100,核心病种,K35.8,47.0100,,1212.1212,9600.00,9,0.0907" in text
    assert "K35/conservative,综合病种,K35,,保守治疗,505.0505,4000.00,2,0.25" in text
    policy = tmp_path / "p.toml"
    policy.write_text(
        'city = "440100"\nclearing_year = 2026\nversion = "b"\ncatalog = "cat.csv"\n'
        '[[levels]]\ncode = "3A"\ncoefficient = 1.0\n[point_values]\n"310" = "10.00"\n',
        encoding="utf-8",
    )
    case = _write(tmp_path, "c.json", [_case("a", total_cost="9600")])
    assert _main(["score", "--rules", str(policy), "--json", case]) == 0
    doc = json.loads(capsys.readouterr().out)
    # cost 9600 = reference → normal: 1212.1212 × 1.0 × 10.00 = 12121.212 → 12121.21
    assert doc["results"][0]["score"]["estimated_payment"] == "12121.21"


def test_catalog_build_unreadable_input_exits_2(tmp_path: Path) -> None:
    assert _main(["catalog", "build", str(tmp_path / "none.csv")]) == 2


def test_commands_are_registered_in_the_cli() -> None:
    from gateway.cli import _COMMAND_MODULES

    for name in ("group", "score", "catalog"):
        assert f"gateway.commands.{name}" in _COMMAND_MODULES


def test_pipeline_reasons_and_province(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [_case("2027", discharge_date="2027-01-04"), _case("ok")]
    path = _write(tmp_path, "c.json", cases)
    # one rule set of Guangzhou (2026): never used for a 2027 case, as in the pipeline
    assert _main(["score", "--rules", GZ, "--json", path]) == 1
    doc = json.loads(capsys.readouterr().out)
    (error,) = doc["errors"]
    assert (error["case_key"], error["rule"], error["severity"]) == ("2027", "DIP_NO_RULES", "warn")
    # treated outside the province the cases are routed in: not this gateway's to settle
    assert _main(["score", "--rules", GZ, "--province", "450000", "--json", path]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [e["rule"] for e in doc["errors"]] == ["DIP_ROUTE", "DIP_ROUTE"]
