"""The offline commands `dipgw group`, `dipgw score`, `dipgw catalog build` on files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.commands import catalog, group, score
from tests.builders import offline_case
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


def _write(tmp_path: Path, name: str, cases: list[dict[str, Any]]) -> str:
    p = tmp_path / name
    if name.endswith(".ndjson"):
        p.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    else:
        p.write_text(json.dumps(cases), encoding="utf-8")
    return str(p)


def test_score_json_one_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "c.ndjson", [offline_case("a")])
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
    cases = [offline_case("gz"), offline_case("sz", treating_admdvs="440304", hospital_level="3")]
    path = _write(tmp_path, "c.json", cases)
    assert _main(["score", "--rules", GZ, "--rules", SZ, "--json", path]) == 0
    doc = json.loads(capsys.readouterr().out)
    codes = [r["group"]["group_code"] for r in doc["results"]]
    assert codes == ["GZ-C002", "SZ0002"]
    assert doc["results"][1]["score"]["ruleset_version"].startswith("440300/2026/")


def test_unscorable_cases_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        offline_case("ok"),
        offline_case("level", hospital_level="9"),
        offline_case("elsewhere", treating_admdvs="440604"),
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
        tmp_path,
        "c.json",
        [offline_case("a"), offline_case("b", main_diag_code="R69.X00", operations=[])],
    )
    assert _main(["group", "--rules", GZ, path]) == 1
    out = capsys.readouterr().out
    assert "GZ-C002" in out and "ungrouped" in out
    path = _write(tmp_path, "d.json", [offline_case("a")])
    assert _main(["group", "--rules", GZ, path]) == 0


def test_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, "c.json", [offline_case("a")])
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
    case = _write(tmp_path, "c.json", [offline_case("a", total_cost="9600")])
    assert _main(["score", "--rules", str(policy), "--json", case]) == 0
    doc = json.loads(capsys.readouterr().out)
    # cost 9600 = reference → normal: 1212.1212 × 1.0 × 10.00 = 12121.212 → 12121.21
    assert doc["results"][0]["score"]["estimated_payment"] == "12121.21"


def _appendectomy_history(tmp_path: Path) -> Path:
    lines = ["year,main_diag_code,operations,treatment,total_cost"]
    for year, cost in ((2023, 8000), (2024, 9000), (2025, 10000)):
        lines += [f"{year},K35.800,47.0100,surgery,{cost}"] * 3
    lines += ["2025,K35.900,,conservative,3000", "2025,K35.900,,保守治疗,5000"]
    hist = tmp_path / "h.csv"
    hist.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return hist


def test_catalog_csv_opens_with_a_bom_unless_told_not_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Excel on Chinese Windows reads a CSV without a byte-order mark as GBK: 核心病种 garbled.
    The mark does not trouble `--rules` (the test above loads a catalog written with it)."""
    hist, out, aux = _appendectomy_history(tmp_path), tmp_path / "cat.csv", tmp_path / "aux.csv"
    argv = ["catalog", "build", str(hist), "--threshold", "5", "--json"]
    assert _main([*argv, "--out", str(out), "--aux-out", str(aux)]) == 0
    assert out.read_bytes().startswith("\ufeff病种编码,".encode())
    assert (
        aux.read_bytes().startswith(b"\xef\xbb\xbf")
        and aux.read_bytes().count(b"\xef\xbb\xbf") == 1
    )
    with_bom = out.read_bytes()
    assert _main([*argv, "--out", str(out), "--no-bom"]) == 0
    assert out.read_bytes() == with_bom.removeprefix(b"\xef\xbb\xbf")
    capsys.readouterr()
    assert _main(argv) == 0  # to stdout, the summary on stderr
    assert capsys.readouterr().out == with_bom.decode("utf-8")


def test_catalog_build_benchmark_and_standard_quota_methods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hist, out = _appendectomy_history(tmp_path), tmp_path / "cat.csv"
    # m(core) = 9600 and m(K35/conservative) = 4000, as in the test above.
    # 基准病种 K35.8/47.0100 at 1000 points: 1000.0 and 4000/9600 × 1000 = 416.6667
    argv = ["catalog", "build", str(hist), "--out", str(out), "--threshold", "5", "--json"]
    assert _main([*argv, "--method", "benchmark", "--benchmark", "K35.8/47.0100"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["method"], summary["reference_cost"], summary["scale"]) == (
        "benchmark",
        9600.0,
        1000.0,
    )
    text = out.read_text(encoding="utf-8")
    assert "K35.8/47.0100,核心病种,K35.8,47.0100,,1000.0,9600.00,9,0.0907" in text
    assert "K35/conservative,综合病种,K35,,保守治疗,416.6667,4000.00,2,0.25" in text
    # 标准定额 4000 yuan = 1 point: 9600/4000 = 2.4, 4000/4000 = 1.0
    assert _main([*argv, "--method", "standard_quota", "--quota", "4000"]) == 0
    capsys.readouterr()
    text = out.read_text(encoding="utf-8")
    assert ",2.4,9600.00," in text and ",1.0,4000.00," in text
    # a method without its figure, or an unknown benchmark, is bad usage
    assert _main([*argv, "--method", "standard_quota"]) == 2
    assert _main([*argv, "--method", "benchmark", "--benchmark", "K80.1/51.2300"]) == 2
    assert "K80.1/51.2300" in capsys.readouterr().err


def test_catalog_build_trims_selects_primary_and_gates_aux(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A09.9 conservative at level 1: costs 100, 200, …, 3900 and 100 000, one year; the cases
    # from 3000 up are 重度.
    lines = ["year,main_diag_code,total_cost,hospital_level,aux_severity"]
    for k in range(1, 40):
        lines.append(f"2025,A09.900,{100 * k},1,{'重度' if k >= 30 else ''}")
    lines.append("2025,A09.900,100000,1,")
    hist = tmp_path / "h.csv"
    hist.write_text("\n".join(lines) + "\n", encoding="utf-8")
    plist = tmp_path / "list.csv"
    plist.write_text("principal_dx,principal_procedures\nA09.9,\n", encoding="utf-8")
    out, aux = tmp_path / "cat.csv", tmp_path / "aux.csv"
    argv = [
        "catalog", "build", str(hist), "--out", str(out), "--weights", "1", "--json",
        "--trim",  # 2.5,97.5, nearest rank
        "--primary-list", str(plist), "--primary-levels", "1", "--primary-min-share", "0.5",
        "--aux-out", str(aux), "--aux-min-cv", "0.5",
    ]  # fmt: skip
    assert _main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    # P97.5 of 40 costs = the 39th = 3900: 100 000 is trimmed; mean (100 + … + 3900)/39 = 2000
    # = M, RW 1000. CV: variance 100² × (39² − 1)/12 = 1 266 666.67, sd 1125.46, CV 0.5627
    # ≤ 0.7 and all 39 at level 1 → 基层病种.
    assert (summary["cases_trimmed"], summary["primary"]) == (1, 1)
    text = out.read_text(encoding="utf-8")
    assert "A09.9/conservative,基层病种,A09.9,,,1000.0,2000.00,2000.00,39,0.5627" in text
    # severity: base 100…2900 (29 cases, mean 1500, sd √(100² × 840/12) = 836.66, CV 0.557773);
    # 重度 3000…3900 (10, mean 3450, sd √(100² × 99/12) = 287.23, CV 0.083255).
    # After: (29 × 0.557773 + 10 × 0.083255)/39 = 0.436102; reduction 1 − 0.436102/0.562731
    # = 0.2250 ≥ 0.2; group CV 0.5627 > 0.5 → kept; coefficient 3450/2000 = 1.725
    assert (summary["aux_kept"], summary["aux_refused"]) == (1, 0)
    rows = aux.read_text(encoding="utf-8").splitlines()
    assert (
        "A09.9/conservative,severity,重度,10,3450.00,0.0833,1.725,39,0.5627,0.4361,0.225,kept,"
        in rows
    )
    # a 25 % reduction asked: refused
    assert _main([*argv, "--aux-min-reduction", "0.25"]) == 0
    assert json.loads(capsys.readouterr().out)["aux_refused"] == 1
    assert ",refused,cv reduction" in aux.read_text(encoding="utf-8")
    # linear percentiles cut the cheapest case too: 38 cases, mean 77 900/38 = 2050
    assert _main([*argv, "--trim-percentile", "linear"]) == 0
    assert json.loads(capsys.readouterr().out)["cases_trimmed"] == 2
    assert ",2050.00,2050.00,38," in out.read_text(encoding="utf-8")


def test_catalog_build_unreadable_input_exits_2(tmp_path: Path) -> None:
    assert _main(["catalog", "build", str(tmp_path / "none.csv")]) == 2


def test_commands_are_registered_in_the_cli() -> None:
    from gateway.cli import _COMMAND_MODULES

    for name in ("group", "score", "catalog"):
        assert f"gateway.commands.{name}" in _COMMAND_MODULES


def test_pipeline_reasons_and_province(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [offline_case("2027", discharge_date="2027-01-04"), offline_case("ok")]
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
