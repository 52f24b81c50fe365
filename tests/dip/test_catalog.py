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
from workers.dip._catalog import (
    NATIONAL_PRIMARY_LIST,
    AuxGate,
    AuxHistRow,
    BuildError,
    HistoryError,
    HistRow,
    PrimarySelection,
    read_primary_list,
    write_aux_csv,
)

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


# ------------------------------------------------ score methods (DIP 3.0 第五章第一节)


def test_benchmark_method_scores_against_the_benchmark_group() -> None:
    # 基准病种费用法: RW_i = m_i / m_benchmark × the benchmark's score (scale).
    # From test_weights_threshold_rw_and_cv: m(K35.8/47.0100) = 3300, m(K35/conservative)
    # = 16400/9. Benchmark K35.8/47.0100 at 1000: it scores 1000 itself; the other group
    # (16400/9)/3300 × 1000 = 16400/29.7 = 552.188552… → 552.1886
    opt = BuildOptions(threshold=3, method="benchmark", benchmark_group="K35.8/47.0100")
    b = build_catalog(HISTORY, opt)
    assert [(g.code, g.score) for g in b.groups] == [
        ("K35.8/47.0100", 1000.0),
        ("K35/conservative", 552.1886),
    ]
    assert b.reference_cost == pytest.approx(3300.0)
    assert b.mean_cost == pytest.approx(2520.0)  # M is still reported
    # a benchmark of 100 points: 16400/297 = 55.218855… → 55.2189
    opt = BuildOptions(
        threshold=3, method="benchmark", benchmark_group="K35.8/47.0100", scale=100.0
    )
    assert [g.score for g in build_catalog(HISTORY, opt).groups] == [100.0, 55.2189]


def test_benchmark_must_be_a_group_of_the_catalog() -> None:
    with pytest.raises(BuildError, match=r"K80\.1/51\.2300"):
        build_catalog(
            HISTORY, BuildOptions(threshold=3, method="benchmark", benchmark_group="K80.1/51.2300")
        )
    with pytest.raises(BuildError, match="benchmark_group"):
        build_catalog(HISTORY, BuildOptions(threshold=3, method="benchmark"))


def test_standard_quota_method_divides_by_the_quota() -> None:
    # 标准定额法: RW_i = m_i / M_quota, the quota worth 1 point (the text has no ×1000).
    # quota 2000: 3300/2000 = 1.65; (16400/9)/2000 = 8200/9000 = 0.91111… → 0.9111
    opt = BuildOptions(threshold=3, method="standard_quota", quota=2000.0)
    b = build_catalog(HISTORY, opt)
    assert [g.score for g in b.groups] == [1.65, 0.9111]
    assert b.reference_cost == 2000.0
    # a city that says the quota is worth 1000 points: 1650.0 and 911.1111…
    opt = BuildOptions(threshold=3, method="standard_quota", quota=2000.0, scale=1000.0)
    assert [g.score for g in build_catalog(HISTORY, opt).groups] == [1650.0, 911.1111]
    with pytest.raises(BuildError, match="quota"):
        build_catalog(HISTORY, BuildOptions(threshold=3, method="standard_quota"))


# ---------------------------------------------------------------- trimming (分位数法)

# One core group of 40 cases, 100, 200, …, 3900 and one of 100 000; one comprehensive group
# of two cases (500, 1500). A single year, weight 1.
TRIM_ROWS: list[HistRow] = [
    (2025, "K35.800", APPX, "surgery", "3A", 100.0 * k) for k in range(1, 40)
] + [
    (2025, "K35.800", APPX, "surgery", "3A", 100000.0),
    (2025, "K35.900", (), "conservative", "2", 500.0),
    (2025, "K35.900", (), "conservative", "2", 1500.0),
]


def test_trimming_drops_cases_outside_the_percentiles_nearest_rank() -> None:
    # Nearest rank: P_p is the ⌈p·n/100⌉-th smallest cost. n = 40:
    # P97.5 = 39th = 3900, so 100 000 > 3900 is dropped; P2.5 = ⌈1⌉ = 1st = 100, nothing below.
    # Kept: 100…3900, mean 100 × (39×40/2)/39 = 2000. The two-case group: P97.5 = ⌈1.95⌉ = 2nd,
    # P2.5 = 1st: both kept, mean 1000.
    # M = (78 000 + 2000)/(39 + 2) = 80 000/41; RW = 2000 / (80 000/41) × 1000 = 1025.0;
    # comprehensive 1000 × 41/80 = 512.5
    opt = BuildOptions(threshold=3, weights=(1.0,), trim=(2.5, 97.5))
    b = build_catalog(TRIM_ROWS, opt)
    core, comp = b.groups
    assert (core.case_count, core.ref_cost_all, core.score) == (39, Decimal("2000.00"), 1025.0)
    assert (comp.case_count, comp.ref_cost_all, comp.score) == (2, Decimal("1000.00"), 512.5)
    assert (b.cases_used, b.cases_trimmed) == (41, 1)
    assert b.mean_cost == pytest.approx(80000 / 41)
    # untrimmed: mean (78 000 + 100 000)/40 = 4450 for the same group
    untrimmed = build_catalog(TRIM_ROWS, BuildOptions(threshold=3, weights=(1.0,)))
    assert untrimmed.groups[0].ref_cost_all == Decimal("4450.00")
    assert untrimmed.cases_trimmed == 0


def test_trimming_linear_interpolation() -> None:
    # Linear (Excel PERCENTILE.INC, numpy's default): h = (n − 1)·p/100, interpolate between
    # the h-th and next order statistics (0-based). n = 40:
    # P97.5: h = 39 × 0.975 = 38.025 → 3900 + 0.025 × (100 000 − 3900) = 6302.5 → 100 000 out;
    # P2.5: h = 0.975 → 100 + 0.975 × 100 = 197.5 → 100 out. Kept 200…3900: 38 cases,
    # Σ = 78 000 − 100 = 77 900, mean 2050. The two-case group is below trim_min_cases = 3.
    # M = (77 900 + 2000)/40 = 1997.5; RW = 2050/1997.5 × 1000 = 1026.28285… → 1026.2829
    opt = BuildOptions(
        threshold=3, weights=(1.0,), trim=(2.5, 97.5), trim_percentile="linear", trim_min_cases=3
    )
    b = build_catalog(TRIM_ROWS, opt)
    core, comp = b.groups
    assert (core.case_count, core.ref_cost_all, core.score) == (38, Decimal("2050.00"), 1026.2829)
    assert (comp.case_count, comp.ref_cost_all) == (2, Decimal("1000.00"))
    assert b.cases_trimmed == 2
    # Without the minimum, linear trimming of two distinct costs would leave nothing
    # (P2.5 = 525, P97.5 = 1475): such a group is kept whole rather than emptied.
    opt = BuildOptions(threshold=3, weights=(1.0,), trim=(2.5, 97.5), trim_percentile="linear")
    comp = build_catalog(TRIM_ROWS, opt).groups[1]
    assert (comp.case_count, comp.ref_cost_all) == (2, Decimal("1000.00"))


def test_trimming_pools_the_years_and_weights_what_is_left() -> None:
    # 40 cases over two years (weights 3:7): 2024 has 100…2000 (20 cases), 2025 has
    # 2100…3900 (19 cases) and 100 000. Nearest rank over the pooled 40 drops 100 000.
    # m = (3 × 1050 + 7 × 3000)/10 = 2415 (2024 mean (100+2000)/2 = 1050; 2025 mean 3000)
    rows = [(2024 if c <= 2000 else 2025, *r[1:5], c) for r in TRIM_ROWS[:40] for c in [r[5]]]
    opt = BuildOptions(threshold=3, weights=(3.0, 7.0), trim=(2.5, 97.5))
    (core,) = build_catalog(rows, opt).groups
    assert (core.case_count, core.ref_cost_all) == (39, Decimal("2415.00"))


def test_trim_bounds_are_checked() -> None:
    for bad in ((97.5, 2.5), (-1.0, 50.0), (2.5, 101.0)):
        with pytest.raises(BuildError, match="trim"):
            build_catalog(HISTORY, BuildOptions(threshold=3, trim=bad))


# ---------------------------------------------------------------- 基层病种 (DIP 3.0 第三章第四节)


def _primary_rows() -> list[HistRow]:
    rows: list[HistRow] = []
    # A09.9 conservative: levels 1, 1, 1, 3A → primary share 3/4; costs 1000, 1200, 1400,
    # 1000: mean 1150, deviations −150, 50, 250, −150, variance 110 000/4 = 27 500,
    # sd 165.83, CV 0.1442
    for lv, c in (("1", 1000.0), ("1", 1200.0), ("1", 1400.0), ("3A", 1000.0)):
        rows.append((2025, "A09.900", (), "conservative", lv, c))
    # K35.8 + 47.0100: only 1 of 4 at level 1 → share 0.25
    for lv in ("1", "3A", "3A", "3A"):
        rows.append((2025, "K35.800", APPX, "surgery", lv, 6000.0))
    # J18.9 conservative, all at level 1 but costs 1000, 1000, 1000, 9000: mean 3000,
    # variance (3 × 2000² + 6000²)/4 = 12 000 000, sd 3464.1, CV 1.1547 > 0.7
    for c in (1000.0, 1000.0, 1000.0, 9000.0):
        rows.append((2025, "J18.900", (), "conservative", "1", c))
    # B02.9 conservative, all at level 1, cost 800 each: CV 0, share 1
    rows += [(2025, "B02.900", (), "conservative", "1", 800.0)] * 4
    return rows


NATIONAL = (("A09.9", ""), ("K35", "47.0100;47.0901"), ("J18.9", ""))


def test_primary_groups_selected_by_list_share_and_cv() -> None:
    sel = PrimarySelection(candidates=NATIONAL, levels=("1",), min_share=0.5, max_cv=0.7)
    b = build_catalog(_primary_rows(), BuildOptions(threshold=3, weights=(1.0,), primary=sel))
    kinds = {g.code: g.kind for g in b.groups}
    # A09.9: listed, share 0.75 ≥ 0.5, CV 0.1442 ≤ 0.7 → 基层; K35.8: listed (K35, 47.0100)
    # but share 0.25; J18.9: listed but CV 1.1547; B02.9: not on the list
    assert kinds == {
        "A09.9/conservative": "primary",
        "B02.9/conservative": "core",
        "J18.9/conservative": "core",
        "K35.8/47.0100": "core",
    }
    why = {d.code: d.reason for d in b.primary_decisions}
    assert "share" in why["K35.8/47.0100"] and "cv" in why["J18.9/conservative"]
    assert "B02.9/conservative" not in why  # not a candidate at all
    # without a list every core group is a candidate: B02.9 (share 1, CV 0) joins
    sel = PrimarySelection(levels=("1",), min_share=0.5, max_cv=0.7)
    b = build_catalog(_primary_rows(), BuildOptions(threshold=3, weights=(1.0,), primary=sel))
    assert sorted(g.code for g in b.groups if g.kind == "primary") == [
        "A09.9/conservative",
        "B02.9/conservative",
    ]
    # a minimum of 4 cases at primary hospitals: A09.9 has 3 → refused
    sel = PrimarySelection(candidates=NATIONAL, levels=("1",), min_cases=4, max_cv=None)
    b = build_catalog(_primary_rows(), BuildOptions(threshold=3, weights=(1.0,), primary=sel))
    # J18.9 passes now that the CV limit is off (4 cases at level 1)
    assert [g.code for g in b.groups if g.kind == "primary"] == ["J18.9/conservative"]


def test_primary_groups_are_written_as_基层病种(tmp_path: Path) -> None:
    sel = PrimarySelection(candidates=NATIONAL, levels=("1",), min_share=0.5)
    out = io.StringIO()
    write_catalog_csv(
        build_catalog(_primary_rows(), BuildOptions(threshold=3, weights=(1.0,), primary=sel)),
        out,
    )
    rows = [line.split(",") for line in out.getvalue().splitlines()]
    levels = (Level(code="1", coefficient=0.6), Level(code="3A", coefficient=1.0))
    groups, _ = parse_catalog(rows, levels)
    assert {g.code: g.kind for g in groups}["A09.9/conservative"] == "primary"


def test_read_primary_list(tmp_path: Path) -> None:
    p = tmp_path / "list.csv"
    p.write_text(
        "section,seq,principal_dx,principal_dx_name,principal_procedures\n"
        "六、基层病种,1,A09.9,胃肠炎,\n"
        "六、基层病种,2,K35,阑尾炎,47.0100;47.0901\n"
        "六、基层病种,3,M51.1+,腰椎间盘,\n",
        encoding="utf-8",
    )
    assert read_primary_list(p) == (("A09.9", ""), ("K35", "47.0100;47.0901"), ("M51.1", ""))


def test_primary_selection_needs_levels_for_a_share() -> None:
    with pytest.raises(BuildError, match="levels"):
        build_catalog(
            _primary_rows(),
            BuildOptions(threshold=3, weights=(1.0,), primary=PrimarySelection(min_share=0.5)),
        )


# ------------------------------------------------ auxiliary CV gate (第五章第二节二)


def _aux_rows() -> list[AuxHistRow]:
    sev = (("severity", "重度"),)
    rows: list[AuxHistRow] = []
    # I21.0 + 36.0600: base 1000, 1000, 1200, 1200 (mean 1100, sd 100, CV 0.090909);
    # 重度 7000, 7000, 8000, 8000 (mean 7500, sd 500, CV 0.066667).
    for c in (1000.0, 1000.0, 1200.0, 1200.0):
        rows.append((2025, "I21.000", ("36.0600",), "surgery", "", c, ()))
    for c in (7000.0, 7000.0, 8000.0, 8000.0):
        rows.append((2025, "I21.000", ("36.0600",), "surgery", "", c, sev))
    # J18.9: the same costs 1000, 1000, 1000, 7000 in both subtypes: mean 2500,
    # variance (3 × 1500² + 4500²)/4 = 6 750 000, sd 2598.08, CV 1.03923 — the split
    # changes nothing
    for aux in ((), sev):
        for c in (1000.0, 1000.0, 1000.0, 7000.0):
            rows.append((2025, "J18.900", (), "conservative", "", c, aux))
    # an older year's cases are not the 上年度 the gate looks at
    rows.append((2024, "J18.900", (), "conservative", "", 50000.0, sev))
    return rows


def test_aux_split_kept_when_cv_drops_and_refused_when_not() -> None:
    gate = AuxGate(min_cv=0.7, min_reduction=0.2)
    b = build_catalog(_aux_rows(), BuildOptions(threshold=3, weights=(3.0, 7.0), aux=gate))
    splits = {s.group_code: s for s in b.aux}
    kept, refused = splits["I21.0/36.0600"], splits["J18.9/conservative"]
    # I21.0 whole group (8 cases): mean (4400 + 30 000)/8 = 4300; squared deviations
    # 2×3300² + 2×3100² + 2×2700² + 2×3700² = 82 960 000, /8 = 10 370 000, sd 3220.2484,
    # CV 3220.2484/4300 = 0.748895 > 0.7.
    # After the split: (4 × 0.090909 + 4 × 0.066667)/8 = 0.078788;
    # reduction 1 − 0.078788/0.748895 = 0.8948 ≥ 0.2 → kept.
    assert kept.kept and kept.factor == "severity" and kept.cases == 8
    assert kept.cv_before == pytest.approx(0.748895, abs=1e-6)
    assert kept.cv_after == pytest.approx(0.078788, abs=1e-6)
    assert kept.reduction == pytest.approx(0.8948, abs=1e-4)
    # coefficient of 重度 = m_j / M = 7500 / 4300 = 1.744186 → 1.7442; the base has none
    sub = {s.value: s for s in kept.subtypes}
    assert (sub["重度"].cases, sub["重度"].coefficient) == (4, 1.7442)
    assert (sub[""].cases, sub[""].coefficient) == (4, None)
    # J18.9: the 2024 case is not counted (8 cases of 2025); CV before = after = 1.03923,
    # reduction 0 < 0.2 → refused
    assert not refused.kept and refused.cases == 8
    assert refused.cv_before == pytest.approx(1.03923, abs=1e-5)
    assert refused.reduction == pytest.approx(0.0, abs=1e-9)
    assert "reduction" in refused.reason
    # the same J18.9 split, refused earlier for a group CV not above 1.1
    b = build_catalog(
        _aux_rows(), BuildOptions(threshold=3, weights=(3.0, 7.0), aux=AuxGate(min_cv=1.1))
    )
    assert {s.group_code: s.kept for s in b.aux} == {
        "I21.0/36.0600": False,
        "J18.9/conservative": False,
    }


def test_aux_small_subtypes_fold_into_the_base() -> None:
    # at least 5 cases per subtype: 重度 has 4 → folded into the base, nothing left to split
    gate = AuxGate(min_cv=0.7, min_reduction=0.2, min_subtype_cases=5)
    b = build_catalog(_aux_rows(), BuildOptions(threshold=3, weights=(3.0, 7.0), aux=gate))
    i21 = next(s for s in b.aux if s.group_code == "I21.0/36.0600")
    assert not i21.kept and "subtype" in i21.reason
    # at least 9 cases in the group: 8 → refused
    gate = AuxGate(min_cv=0.7, min_reduction=0.2, min_group_cases=9)
    b = build_catalog(_aux_rows(), BuildOptions(threshold=3, weights=(3.0, 7.0), aux=gate))
    assert all(not s.kept and "cases" in s.reason for s in b.aux)


def test_aux_report_csv_and_history_columns(tmp_path: Path) -> None:
    p = tmp_path / "h.csv"
    p.write_text(
        "year,main_diag_code,operations,treatment,total_cost,aux_severity,辅助分型_age\n"
        "2025,I21.000,36.0600,surgery,1000,重度,\n"
        "2025,I21.000,36.0600,surgery,1200,,65+\n",
        encoding="utf-8",
    )
    rows = list(read_history(p))
    assert [r[6] for r in rows] == [(("severity", "重度"),), (("age", "65+"),)]  # type: ignore[misc]
    gate = AuxGate(min_cv=0.7, min_reduction=0.2)
    out = io.StringIO()
    write_aux_csv(
        build_catalog(_aux_rows(), BuildOptions(threshold=3, weights=(3.0, 7.0), aux=gate)), out
    )
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("group_code,factor,subtype,cases,mean_cost,cv,coefficient")
    assert any(line.startswith("I21.0/36.0600,severity,重度,4,7500.00,") for line in lines)


def test_the_bundled_national_list_reads_and_matches() -> None:
    # DIP 3.0 六、基层病种: 127 rows; K35 with 47.0100 (laparoscopic appendectomy) is one,
    # M51.1+ (dagger) reads as M51.1
    rows = read_primary_list(NATIONAL_PRIMARY_LIST)
    assert len(rows) == 127
    assert ("K35", "47.0100") in rows and ("M51.1", "") in rows
    sel = PrimarySelection(candidates=rows, levels=("1",), max_cv=None)
    hist = _primary_rows() + [(2025, "I21.000", ("36.0600",), "surgery", "1", 30000.0)] * 3
    b = build_catalog(hist, BuildOptions(threshold=3, weights=(1.0,), primary=sel))
    # A09.9, B02.9 (带状疱疹), J18.9 (肺炎) conservative and K35 + 47.0100 are on the national
    # list, selected (no share or CV asked); I21.0 + 36.0600 (PCI) is not
    assert sorted(g.code for g in b.groups if g.kind == "primary") == [
        "A09.9/conservative",
        "B02.9/conservative",
        "J18.9/conservative",
        "K35.8/47.0100",
    ]
    assert {g.code: g.kind for g in b.groups}["I21.0/36.0600"] == "core"
