"""Catalog building: 1:2:7 weights, threshold, RW, CV, routing of related operations,
determinism, and a round trip through the loader and the grouper. Numbers by hand below."""

from __future__ import annotations

import io
import random
from decimal import Decimal
from pathlib import Path

import pytest

from tests.builders import dip_case
from workers.dip import (
    BuildOptions,
    Level,
    Policy,
    build_catalog,
    group,
    make_ruleset,
    parse_catalog,
    read_history,
    write_catalog_csv,
)
from workers.dip._catalog import HistoryError, HistRow

APPX = ("47.0100",)
# (year, diagnosis, operations, treatment, level, cost)
HISTORY: list[HistRow] = [
    (2023, "K35.800", APPX, "surgery", "3A", 1000.0),
    (2024, "K35.800x002", APPX, "surgery", "2", 2000.0),
    (2025, "K35.801", APPX, "surgery", "3A", 3000.0),
    (2025, "K35.800", APPX, "surgery", "3A", 5000.0),
    (2025, "K35.800", (), "conservative", "2", 1500.0),
    (2025, "K35.800", (), "conservative", "2", 2500.0),
    (2024, "K35.900", (), "conservative", "2", 1200.0),
    (2022, "K35.800", APPX, "surgery", "3A", 99999.0),  # older than the three years
]
OPT = BuildOptions(threshold=3)


def _by_code(rows: list[HistRow], opt: BuildOptions = OPT) -> dict[str, object]:
    return {g.code: g for g in build_catalog(rows, opt).groups}


def test_weights_threshold_rw_and_cv() -> None:
    b = build_catalog(HISTORY, OPT)
    assert b.years == (2023, 2024, 2025)
    assert (b.cases_used, b.cases_other_years) == (7, 1)
    # M, year means of all 7 cases: 2023 → 1000; 2024 → (2000 + 1200)/2 = 1600;
    # 2025 → (3000 + 5000 + 1500 + 2500)/4 = 3000; (1×1000 + 2×1600 + 7×3000)/10 = 2520
    assert b.mean_cost == pytest.approx(2520.0)
    core, comp = b.groups
    # K35.8 + 47.0100: 4 cases ≥ 3 → core. Year means 1000, 2000, 4000:
    # m = (1000 + 2×2000 + 7×4000)/10 = 3300; RW = 3300/2520×1000 = 1309.5238095 → 1309.5238
    assert (core.code, core.kind, core.diag, core.operations) == (
        "K35.8/47.0100",
        "core",
        "K35.8",
        ("47.0100",),
    )
    assert (core.case_count, core.ref_cost_all, core.score) == (4, Decimal("3300.00"), 1309.5238)
    # CV over 1000, 2000, 3000, 5000: mean 2750, variance (1750² + 750² + 250² + 2250²)/4
    # = 8 750 000/4 = 2 187 500, sd 1479.0199, CV = 0.537825… → 0.5378
    assert core.cv == 0.5378
    # per level: 3A has 2023 → 1000, 2025 → (3000 + 5000)/2 = 4000 → (1×1000 + 7×4000)/8
    # = 3625; level 2 has only 2024 → 2000
    assert core.ref_costs == {"2": Decimal("2000.00"), "3A": Decimal("3625.00")}
    # K35.8 conservative: 2 cases < 3 → comprehensive K35/conservative together with K35.9:
    # 2024 → 1200, 2025 → 2000: m = (2×1200 + 7×2000)/9 = 16400/9 = 1822.2222…
    # RW = 1822.2222/2520×1000 = 723.10406 → 723.1041
    assert (comp.code, comp.kind, comp.diag, comp.treatment) == (
        "K35/conservative",
        "comprehensive",
        "K35",
        "conservative",
    )
    assert (comp.case_count, comp.ref_cost_all, comp.score) == (3, Decimal("1822.22"), 723.1041)


def test_case_weighting_and_scale() -> None:
    opt = BuildOptions(threshold=3, weighting="case_weights", scale=100.0)
    core = _by_code(HISTORY, opt)["K35.8/47.0100"]
    # case weights 1, 2, 7, 7: (1000 + 2×2000 + 7×3000 + 7×5000)/(1 + 2 + 7 + 7) = 61000/17
    # = 3588.2353; M = (1000 + 2×(2000+1200) + 7×(3000+5000+1500+2500))/(1 + 2×2 + 7×4)
    # = (1000 + 6400 + 84000)/33 = 91400/33; RW = (61000/17)/(91400/33) × 100
    # = 61000×33/(17×91400) × 100 = 2013000/1553800 × 100 = 129.553353… → 129.5534
    assert core.ref_cost_all == Decimal("3588.24")  # type: ignore[attr-defined]
    assert core.score == 129.5534  # type: ignore[attr-defined]


def test_threshold_is_configurable() -> None:
    groups = _by_code(HISTORY, BuildOptions(threshold=5))
    # 4 appendectomies < 5 → comprehensive surgery group, and K35.8 conservative joins K35
    assert sorted(groups) == ["K35/conservative", "K35/surgery"]
    groups = _by_code(HISTORY, BuildOptions(threshold=2))
    assert sorted(groups) == ["K35.8/47.0100", "K35.8/conservative", "K35/conservative"]


def test_related_operations_split_or_fall_back_like_the_grouper() -> None:
    ivus = ("36.0600", "00.2400")
    rows: list[HistRow] = [(2025, "I21.000", ivus, "surgery", "", 40000.0)] * 3
    rows += [(2025, "I21.000", ("36.0600",), "surgery", "", 30000.0)] * 2
    # IVUS + an extra op: contains the core combination's related op → joins it
    rows += [(2025, "I21.000", ("36.0600", "88.5500", "00.2400"), "surgery", "", 46000.0)]
    # another related op only once → falls back to the main-operation combination
    rows += [(2025, "I21.000", ("36.0600", "88.5700"), "surgery", "", 33000.0)]
    b = build_catalog(rows, BuildOptions(threshold=3, weights=(1.0,)))
    got = {g.code: (g.case_count, g.ref_cost_all) for g in b.groups}
    # 36.0600+00.2400: 3 × 40000 + 46000 → 4 cases, mean 166000/4 = 41500
    # 36.0600 alone: 2 × 30000 + 33000 → 3 cases ≥ 3, mean 93000/3 = 31000
    assert got == {
        "I21.0/36.0600+00.2400": (4, Decimal("41500.00")),
        "I21.0/36.0600": (3, Decimal("31000.00")),
    }
    no_rel = build_catalog(
        rows, BuildOptions(threshold=3, weights=(1.0,), related_operations=False)
    )
    assert [(g.code, g.case_count) for g in no_rel.groups] == [("I21.0/36.0600", 7)]


def test_small_comprehensive_groups_can_be_dropped() -> None:
    b = build_catalog(HISTORY, BuildOptions(threshold=3, min_comprehensive_cases=4))
    assert [g.code for g in b.groups] == ["K35.8/47.0100"]
    assert b.cases_dropped == 3


def test_deterministic_whatever_the_input_order() -> None:
    rng = random.Random(7)
    rows: list[HistRow] = []
    for _ in range(3000):
        sub = rng.choice(("K35.8", "K35.3", "I21.0", "J18.9", "K80.1"))
        ops = rng.choice(((), ("47.0100",), ("36.0600",), ("36.0600", "00.2400"), ("51.2300",)))
        tr = "surgery" if ops else "conservative"
        rows.append(
            (
                rng.choice((2023, 2024, 2025)),
                sub + "00",
                ops,
                tr,
                rng.choice(("3A", "2")),
                round(rng.uniform(1000, 50000), 2),
            )
        )

    def csv_text(rs: list[HistRow]) -> str:
        out = io.StringIO()
        write_catalog_csv(build_catalog(rs, BuildOptions()), out)
        return out.getvalue()

    first = csv_text(rows)
    rng.shuffle(rows)
    assert csv_text(rows) == first
    assert first.count("\n") > 5


def test_built_catalog_loads_and_groups_its_own_history() -> None:
    out = io.StringIO()
    write_catalog_csv(build_catalog(HISTORY, OPT), out)
    rows = [line.split(",") for line in out.getvalue().splitlines()]
    levels = (Level(code="3A", coefficient=1.0), Level(code="2", coefficient=0.8))
    groups, _ = parse_catalog(rows, levels)
    policy = Policy(
        city="440100",
        clearing_year=2026,
        version="built",
        levels=levels,
        point_values={"310": Decimal("10")},
    )
    rs = make_ruleset(policy, groups)
    case = dip_case(case_key="k", fixmedins_code="H", total_cost=Decimal("3000"))
    assert group(case, rs).group_code == "K35.8/47.0100"
    conservative = dip_case(
        case_key="k", fixmedins_code="H", total_cost=Decimal("3000"), operations=()
    )
    assert group(conservative, rs).group_code == "K35/conservative"


def test_read_history_csv_and_ndjson(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text(
        "年度,主要诊断编码,手术操作编码,手术操作类别,医疗总费用,医院等级\n"
        "2024,K35.800,47.0100+88.7200,surgery+diagnostic,8000.5,3A\n"
        "2025,K35.800,,,4000,2\n"
        "2025,K35.800,47.0100,,abc,2\n",
        encoding="utf-8",
    )
    skipped: list[str] = []
    rows = list(read_history(tmp_path / "h.csv", skipped=skipped))
    assert rows == [
        (2024, "K35.800", ("47.0100", "88.7200"), "surgery", "3A", 8000.5),
        (2025, "K35.800", (), "conservative", "2", 4000.0),
    ]
    assert len(skipped) == 1 and "h.csv:4" in skipped[0]
    (tmp_path / "h.ndjson").write_text(
        '{"discharge_date": "2025-03-01", "main_diag_code": "I21.000",'
        ' "operations": [["36.0600", "intervention"]], "total_cost": 30000}\n'
        '{"year": 2025, "main_diag_code": "I21.000", "operations": "36.0600",'
        ' "treatment": "治疗性操作", "total_cost": "31000.5"}\n',
        encoding="utf-8",
    )
    rows = list(read_history(tmp_path / "h.ndjson", intervention_as="surgery"))
    assert [(r[0], r[2], r[3], r[5]) for r in rows] == [
        (2025, ("36.0600",), "surgery", 30000.0),
        (2025, ("36.0600",), "therapeutic", 31000.5),
    ]


def test_history_without_required_columns_is_refused(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("year,main_diag_code\n2025,K35.8\n", encoding="utf-8")
    with pytest.raises(HistoryError, match="cost"):
        list(read_history(tmp_path / "h.csv"))
    with pytest.raises(HistoryError, match="weights"):
        build_catalog(HISTORY[:1], BuildOptions())  # one year, three weights
