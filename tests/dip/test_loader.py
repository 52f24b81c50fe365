"""Loading rules: tolerant catalog headers (Chinese/English, CSV/XLSX), TOML policy, the stable
JSON encoding and its content hash."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import openpyxl  # type: ignore[import-untyped]
import pytest

from workers.dip import (
    SAMPLE_RULES,
    Level,
    RuleSetError,
    decode_ruleset,
    encode_ruleset,
    load_rules,
    parse_catalog,
)

LEVELS = (
    Level(code="3A", name="三级甲等", coefficient=1.0),
    Level(code="2", name="二级", coefficient=0.8),
)

POLICY = """
city = "440100"
clearing_year = 2026
version = "v1"
catalog = "cat.csv"
[[levels]]
code = "3A"
name = "三级甲等"
coefficient = 1.0
[[levels]]
code = "2"
name = "二级"
coefficient = 0.8
[point_values]
"310" = "12.00"
"""


def test_chinese_headers_with_per_level_costs_by_name() -> None:
    rows = [
        [
            "病种编码",
            "病种类型",
            "主要诊断编码",
            "主要诊断名称",
            "手术操作编码",
            "治疗方式",
            "病种分值",
            "次均费用",
            "次均费用(三级甲等)",
            "次均费用_2",
            "病例数",
            "变异系数",
        ],
        [
            "A1",
            "核心病种",
            "k35.8",
            "阑尾炎",
            "47.0100",
            "",
            "1,000.5",
            "9000",
            "10000",
            "8000",
            "120",
            "0.35",
        ],
        ["Z1", "综合病种", "K35", "阑尾炎", "", "相关手术", "900", "", "", "", "", ""],
        ["", "排除", "Z53", "", "", "", "", "", "", "", "", ""],
        ["", "排除", "", "", "89.5200", "", "", "", "", "", "", ""],
    ]
    groups, excl = parse_catalog(rows, LEVELS)
    a1, z1 = groups
    assert (a1.code, a1.kind, a1.diag, a1.operations, a1.score) == (
        "A1",
        "core",
        "K35.8",
        ("47.0100",),
        1000.5,
    )
    assert a1.ref_costs == {"3A": Decimal("10000"), "2": Decimal("8000")}
    assert (a1.ref_cost_all, a1.case_count, a1.cv) == (Decimal("9000"), 120, 0.35)
    assert (z1.kind, z1.treatment, z1.ref_cost_all, z1.ref_costs) == (
        "comprehensive",
        "surgery",
        None,
        {},
    )
    assert [(e.code, e.target) for e in excl] == [("Z53", "diagnosis"), ("89.5200", "operation")]


def test_english_headers_and_related_operations_column() -> None:
    rows = [
        [
            " Code ",
            "KIND",
            "Main_Diag_Code",
            "Operations",
            "Related_Operations",
            "Score",
            "ref_cost_3A",
        ],
        ["M2", "core", "I21.0", "36.0600", "00.2400；88.5500", "4500", "51750"],
        ["P1", "primary", "J06.9", "", "", "280", ""],
    ]
    groups, _ = parse_catalog(rows, LEVELS)
    assert groups[0].operations == ("36.0600", "00.2400", "88.5500")
    assert groups[0].ref_costs == {"3A": Decimal("51750")}
    assert groups[1].kind == "primary"


def test_kind_inferred_when_the_column_is_missing() -> None:
    rows = [
        ["code", "diag", "treatment", "score"],
        ["X", "K35", "保守治疗", "400"],
        ["Y", "K35.8", "", "420"],
    ]
    groups, _ = parse_catalog(rows, LEVELS)
    assert [(g.kind, g.treatment) for g in groups] == [
        ("comprehensive", "conservative"),
        ("core", None),
    ]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["病种编码", "分值"], ["A", "1"]], "diag"),
        (
            [["病种编码", "主要诊断编码", "次均费用_9"], ["A", "K35.8", "1"]],
            "unknown hospital level",
        ),
        ([["code", "diag", "score"], ["A", "K35.8", "abc"]], "not a number"),
        ([["code", "diag", "score"], ["A", "K35.8", ""]], "no score"),
        ([["code", "kind", "diag", "score"], ["A", "奇怪", "K35.8", "1"]], "unknown group kind"),
        ([["code", "diag", "treatment", "score"], ["A", "K35", "针灸", "1"]], "unknown treatment"),
    ],
)
def test_bad_catalogs_say_what_is_wrong(rows: list[list[str]], message: str) -> None:
    with pytest.raises(RuleSetError, match=message):
        parse_catalog(rows, LEVELS)


def _write_policy(tmp_path: Path, extra: str = "", catalog: str = "cat.csv") -> Path:
    """The policy plus ``extra``: top-level keys go first (TOML tables swallow what follows)."""
    p = tmp_path / "p.toml"
    body = POLICY.replace('"cat.csv"', f'"{catalog}"')
    text = extra + body if not extra.startswith("[") else body + extra
    p.write_text(text, encoding="utf-8")
    return p


def test_toml_policy_with_gb18030_csv_catalog(tmp_path: Path) -> None:
    text = "病种编码,主要诊断编码,手术操作编码,分值\nA1,K35.8,47.0100,980\n"
    (tmp_path / "cat.csv").write_bytes(text.encode("gb18030"))
    rs = load_rules(_write_policy(tmp_path, '[deviation]\nhigh_formula = "plus_coefficient"\n'))
    assert rs.groups[0].score == 980.0
    assert rs.policy.deviation.high_formula == "plus_coefficient"
    assert rs.catalog_version.startswith("cat.csv@")  # defaulted from the file's hash


def test_xlsx_catalog(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["病种编码", "病种类型", "主要诊断编码", "手术操作编码", "病种分值", "次均费用_3A"])
    ws.append(["A1", "核心", "K35.8", "47.0100", 980, 11270.5])
    ws.append(["A0", "核心", "K35.8", None, 420.0, None])
    wb.save(tmp_path / "cat.xlsx")
    rs = load_rules(_write_policy(tmp_path, catalog="cat.xlsx"))
    a1, a0 = rs.groups
    assert (a1.score, a1.ref_costs) == (980.0, {"3A": Decimal("11270.5")})
    assert (a0.operations, a0.score) == ((), 420.0)


def test_invalid_policy_is_reported(tmp_path: Path) -> None:
    (tmp_path / "cat.csv").write_text("code,diag,score\nA,K35.8,1\n", encoding="utf-8")
    bad = _write_policy(tmp_path, '[deviation]\nhigh_formula = "triple"\n')
    with pytest.raises(RuleSetError, match="high_formula"):
        load_rules(bad)


def test_json_encoding_round_trips_and_hash_is_content_based(tmp_path: Path) -> None:
    rs = load_rules(SAMPLE_RULES["440100"])
    doc = encode_ruleset(rs)
    again = decode_ruleset(doc)
    assert encode_ruleset(again) == doc
    assert again.content_hash == rs.content_hash
    assert len(rs.content_hash) == 64
    # the JSON document itself is a rules file
    (tmp_path / "rules.json").write_bytes(doc)
    assert load_rules(tmp_path / "rules.json").version_id == rs.version_id
    # a changed point value changes the hash
    shutil.copy(SAMPLE_RULES["440100"].with_name("440100-2026-catalog.csv"), tmp_path)
    text = SAMPLE_RULES["440100"].read_text(encoding="utf-8").replace('"12.35"', '"12.36"')
    (tmp_path / "p.toml").write_text(text, encoding="utf-8")
    changed = load_rules(tmp_path / "p.toml")
    assert changed.content_hash != rs.content_hash
    assert changed.version == rs.version  # same label, different content


def test_both_sample_cities_load_with_their_tiers() -> None:
    gz = load_rules(SAMPLE_RULES["440100"])
    sz = load_rules(SAMPLE_RULES["440300"])
    assert [lv.code for lv in gz.policy.levels] == ["3A", "3", "2M", "2C", "1"]
    assert [lv.code for lv in sz.policy.levels] == ["3", "2", "1"]
    assert (gz.city, sz.city, gz.clearing_year) == ("440100", "440300", 2026)
    kinds = {g.kind for g in gz.groups}
    assert kinds == {"core", "primary", "comprehensive", "bed_day"}
    assert sum(g.kind == "core" for g in gz.groups) >= 24


def test_title_rows_above_the_header_and_unit_suffixes() -> None:
    rows = [
        ["广州市2026年DIP病种目录（示例）", "", "", ""],
        ["说明：分值保留4位小数", "", "", ""],
        ["病种编码", "主要诊断编码", "病种分值（分）", "次均费用（元）", "次均费用_3A（元）"],
        ["A0", "K35.8", "420", "4200", "4830"],
    ]
    (g,), _ = parse_catalog(rows, LEVELS)
    assert (g.code, g.score, g.ref_cost_all, g.ref_costs) == (
        "A0",
        420.0,
        Decimal("4200"),
        {"3A": Decimal("4830")},
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("", ""),
        ("[deviation]\nhigh_threshold = 0\n", "high_threshold"),
        ("score_decimals = 12\n", "score_decimals"),
        ('[unmatched]\nungrouped_cost_fraction = "-0.1"\n', "negative"),
    ],
)
def test_policy_values_are_checked(tmp_path: Path, extra: str, message: str) -> None:
    (tmp_path / "cat.csv").write_text("code,diag,score\nA,K35.8,1\n", encoding="utf-8")
    path = _write_policy(tmp_path, extra)
    if not message:
        assert load_rules(path).policy.score_decimals == 4
        return
    with pytest.raises(RuleSetError, match=message):
        load_rules(path)


def test_point_values_must_be_positive(tmp_path: Path) -> None:
    (tmp_path / "cat.csv").write_text("code,diag,score\nA,K35.8,1\n", encoding="utf-8")
    p = tmp_path / "p.toml"
    p.write_text(POLICY.replace('"12.00"', '"0"'), encoding="utf-8")
    with pytest.raises(RuleSetError, match="point value"):
        load_rules(p)


def test_per_group_level_coefficients_columns() -> None:
    rows = [
        ["病种编码", "主要诊断编码", "分值", "等级系数_3A", "系数(二级)", "变异系数"],
        ["A1", "I21.0", "3800", "1.05", "0.9", "0.4"],
        ["A2", "K35.8", "420", "", "", ""],
    ]
    a1, a2 = parse_catalog(rows, LEVELS)[0]
    assert a1.level_coefficients == {"3A": 1.05, "2": 0.9}
    assert a1.cv == 0.4  # 变异系数 is the CV, not a level coefficient
    assert a2.level_coefficients == {}
