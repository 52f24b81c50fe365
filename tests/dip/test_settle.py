"""Monthly prepay and annual clearing of a small city, every figure derived by hand here.

City 440100, clearing year 2026, three hospitals (H1, H2, H3), two funds (310 职工, 390 居民).
H2's 310 case is a cross-city patient (no difference in the math: the treating city's rules).
310: budget 20 000, payment ratio 0.8, 预算点值 10, floor 0.8 / ceiling 1.1.
390: budget 6 000, payment ratio 0.6, 预算点值 8, floor 0.9 / ceiling 1.05.
Prepay 90 %, deposit 5 %; assessment [0,60) 0.90 / none back, [60,90) 0.95 / half back,
[90,100] 1.00 / all back; surplus kept 100 % to 10 %, 50 % to 20 %, 0 beyond; overspend borne
70 % by the fund to 10 %, 0 beyond. One approved special review: H2, fund 310, 200 points.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.dip import (
    HospitalInput,
    MonthLine,
    PriorMonths,
    SettleCase,
    SettlementPolicy,
    YearLine,
    case_changes,
    parse_settlement_policy,
    settle_month,
    settle_year,
    settlement_totals,
    surplus_overspend,
)

D = Decimal


def policy_doc() -> dict[str, Any]:
    return {
        "kind": "settlement",
        "city": "440100",
        "clearing_year": 2026,
        "version": "t1",
        "prepay_ratio": "0.9",
        "deposit_ratio": "0.05",
        "special_review_quota_permille": "5",
        "funds": {
            "310": {
                "budget": "20000",
                "payment_ratio": "0.8",
                "point_value": {"initial": "10", "floor": "0.8", "ceiling": "1.1"},
            },
            "390": {
                "budget": "6000",
                "payment_ratio": "0.6",
                "point_value": {"initial": "8", "floor": "0.9", "ceiling": "1.05"},
            },
        },
        "assessment": [
            {"min_score": "0", "max_score": "60", "coefficient": "0.9", "deposit_return": "0"},
            {"min_score": "60", "max_score": "90", "coefficient": "0.95", "deposit_return": "0.5"},
            {"min_score": "90", "max_score": "100", "coefficient": "1", "deposit_return": "1"},
        ],
        "surplus": [
            {"from": "0", "to": "0.1", "kept": "1"},
            {"from": "0.1", "to": "0.2", "kept": "0.5"},
            {"from": "0.2", "kept": "0"},
        ],
        "overspend": [
            {"from": "0", "to": "0.1", "fund_share": "0.7"},
            {"from": "0.1", "fund_share": "0"},
        ],
    }


POLICY: SettlementPolicy = parse_settlement_policy(policy_doc())


def case(h: str, sid: str, fund: str, points: str, cost: str, fund_pay: str | None) -> SettleCase:
    return SettleCase(
        fixmedins_code=h,
        setl_id=sid,
        revision=1,
        fund=fund,
        points=D(points),
        total_cost=D(cost),
        fund_pay=None if fund_pay is None else D(fund_pay),
    )


JANUARY = [
    case("H1", "c1", "310", "1000", "9000", "7200"),
    case("H2", "c3", "310", "800", "10000", "8000"),  # the cross-city patient
    case("H3", "c4", "310", "200", "1500", None),  # fund payment not stated
    case("H1", "c5", "390", "600", "4000", "2400"),
    case("H2", "c6", "390", "900", "7000", "4200"),
]
FEBRUARY = [case("H1", "c2", "310", "500", "5000", "4000")]


def by_key(lines: list[MonthLine] | list[YearLine]) -> dict[tuple[str, str], Any]:
    return {(x.fixmedins_code, x.fund): x for x in lines}


def test_month_prepay_with_deposit() -> None:
    pvs, lines = settle_month(POLICY, JANUARY, {"H1": HospitalInput(deductions={"310": D("100")})})
    assert (pvs["310"].estimate, pvs["390"].estimate) == (D("10.0000"), D("8.0000"))
    got = {
        k: (x.dip_amount, x.other_payments, x.settled, x.deposit, x.payable)
        for k, x in by_key(lines).items()
    }
    # H1/310: 1000 × 10 = 10000; other 9000 − 7200 = 1800; (10000 − 1800) × 0.9 = 7380;
    #         deposit 7380 × 5 % = 369; payable 7380 − 369 − 100 (deduction) = 6911
    # H2/310: 8000; other 2000; 6000 × 0.9 = 5400; deposit 270; 5130
    # H3/310: 2000; other 1500 × (1 − 0.8) = 300 (no fund_pay); 1700 × 0.9 = 1530;
    #         deposit 76.50; 1453.50
    # H1/390: 600 × 8 = 4800; other 1600; 3200 × 0.9 = 2880; deposit 144; 2736
    # H2/390: 7200; other 2800; 4400 × 0.9 = 3960; deposit 198; 3762
    assert got == {
        ("H1", "310"): (D("10000.00"), D("1800.00"), D("7380.00"), D("369.00"), D("6911.00")),
        ("H2", "310"): (D("8000.00"), D("2000.00"), D("5400.00"), D("270.00"), D("5130.00")),
        ("H3", "310"): (D("2000.00"), D("300.00"), D("1530.00"), D("76.50"), D("1453.50")),
        ("H1", "390"): (D("4800.00"), D("1600.00"), D("2880.00"), D("144.00"), D("2736.00")),
        ("H2", "390"): (D("7200.00"), D("2800.00"), D("3960.00"), D("198.00"), D("3762.00")),
    }
    # city: 21150 settled − 1057.50 deposit − 100 deductions = 19992.50
    assert sum(x.payable for x in lines) == D("19992.50")


def prior() -> dict[tuple[str, str], PriorMonths]:
    """The January and February runs above, summed per line."""
    return {
        ("H1", "310"): PriorMonths(  # Jan 7380 + Feb 3600 (500 × 10 − 1000) × 0.9
            prepaid=D("10980.00"), deposit=D("549.00"), deductions=D("100.00")
        ),
        ("H2", "310"): PriorMonths(prepaid=D("5400.00"), deposit=D("270.00")),
        ("H3", "310"): PriorMonths(prepaid=D("1530.00"), deposit=D("76.50")),
        ("H1", "390"): PriorMonths(prepaid=D("2880.00"), deposit=D("144.00")),
        ("H2", "390"): PriorMonths(prepaid=D("3960.00"), deposit=D("198.00")),
    }


ASSESSMENT = {
    "H1": HospitalInput(score=D("95"), deductions={"310": D("50")}),
    "H2": HospitalInput(score=D("75")),
    "H3": HospitalInput(score=D("50")),
}


def test_february_run() -> None:
    _, lines = settle_month(POLICY, FEBRUARY)
    assert (lines[0].settled, lines[0].deposit, lines[0].payable) == (
        D("3600.00"),
        D("180.00"),
        D("3420.00"),
    )


def test_year_point_values_below_estimate_and_at_floor() -> None:
    pvs, _ = settle_year(POLICY, JANUARY + FEBRUARY, ASSESSMENT, {("H2", "310"): D("200")}, prior())
    # 310: points 1000 + 500 + 800 + 200 + special 200 = 2700;
    #      20000 ÷ 0.8 ÷ 2700 = 9.259259… → 9.2593 < 预算点值 10, above floor 8
    assert (pvs["310"].total_score, pvs["310"].raw, pvs["310"].value, pvs["310"].bound) == (
        D("2700"),
        D("9.2593"),
        D("9.2593"),
        None,
    )
    # 390: points 1500; 6000 ÷ 0.6 ÷ 1500 = 6.6667 < floor 0.9 × 8 = 7.2
    assert (pvs["390"].raw, pvs["390"].value, pvs["390"].bound) == (
        D("6.6667"),
        D("7.2000"),
        "floor",
    )


def test_year_clearing_with_bands_deposit_and_special_review() -> None:
    _, lines = settle_year(
        POLICY, JANUARY + FEBRUARY, ASSESSMENT, {("H2", "310"): D("200")}, prior()
    )
    got = by_key(lines)
    h1 = got[("H1", "310")]
    # 1500 × 9.2593 = 13888.95; other 1800 + 1000 = 2800; × 1.00 = 11088.95;
    # deductions 50 (year) + 100 (January) = 150 → due 10938.95; billed 14000 − 2800 = 11200;
    # overspend 261.05 (2.3 %) borne 70 % = 182.735 → 182.74; final 11121.69;
    # balance 11121.69 − 10980 prepaid + 549 deposit back + 100 (January's deduction,
    # already counted in the year's) = 790.69
    assert (h1.dip_amount, h1.assessed, h1.deductions, h1.due, h1.billed) == (
        D("13888.95"),
        D("11088.95"),
        D("150.00"),
        D("10938.95"),
        D("11200.00"),
    )
    assert (h1.band, h1.band_amount, h1.settled, h1.deposit_returned, h1.payable) == (
        "overspend",
        D("182.74"),
        D("11121.69"),
        D("549.00"),
        D("790.69"),
    )
    h2 = got[("H2", "310")]
    # 800 × 9.2593 = 7407.44; special 200 × 9.2593 = 1851.86; (7407.44 − 2000) × 0.95 =
    # 5137.068 → 5137.07; due 6988.93; billed 8000; overspend 1011.07 (12.6 %): the first
    # 800 (10 %) borne 70 % = 560, the rest none; final 7548.93; deposit back 270 × 0.5 = 135;
    # balance 7548.93 − 5400 + 135 = 2283.93
    assert (h2.special_amount, h2.assessed, h2.due, h2.band_amount, h2.settled) == (
        D("1851.86"),
        D("5137.07"),
        D("6988.93"),
        D("560.00"),
        D("7548.93"),
    )
    assert (h2.deposit_returned, h2.payable) == (D("135.00"), D("2283.93"))
    h3 = got[("H3", "310")]
    # 200 × 9.2593 = 1851.86; other 300; 1551.86 × 0.9 = 1396.674 → 1396.67 = due;
    # billed 1500 − 300 = 1200; surplus 196.67 (16.4 %): 120 kept whole + 76.67 × 0.5 =
    # 158.335 → 158.34 (the 10–20 % band); final 1200 + 158.34 = 1358.34; no deposit back
    # (score 50); balance 1358.34 − 1530 = −171.66 (the hospital was prepaid too much)
    assert (h3.band, h3.band_amount, h3.settled, h3.deposit_returned, h3.payable) == (
        "surplus",
        D("158.34"),
        D("1358.34"),
        D("0.00"),
        D("-171.66"),
    )
    h1r = got[("H1", "390")]
    # 600 × 7.2 = 4320; − 1600 = 2720 × 1 = due; billed 2400; surplus 320 (13.3 %): 240 +
    # 80 × 0.5 = 280; final 2680; balance 2680 − 2880 + 144 = −56
    assert (h1r.due, h1r.band_amount, h1r.settled, h1r.payable) == (
        D("2720.00"),
        D("280.00"),
        D("2680.00"),
        D("-56.00"),
    )
    h2r = got[("H2", "390")]
    # 900 × 7.2 = 6480; − 2800 = 3680 × 0.95 = 3496; billed 4200; overspend 704 (16.8 %):
    # 420 × 0.7 = 294; final 3790; balance 3790 − 3960 + 99 = −71
    assert (h2r.due, h2r.band_amount, h2r.settled, h2r.payable) == (
        D("3496.00"),
        D("294.00"),
        D("3790.00"),
        D("-71.00"),
    )
    assert sum(x.payable for x in lines) == D("2775.96")


def test_surplus_band_edges() -> None:
    # exactly 10 % surplus: all kept; nothing billed: nothing to share
    assert surplus_overspend(POLICY, D("110"), D("100")) == ("surplus", D("10.00"))
    assert surplus_overspend(POLICY, D("150"), D("100")) == ("surplus", D("15.00"))
    assert surplus_overspend(POLICY, D("5"), D("0")) == ("even", D("0.00"))


def test_case_changes_between_runs() -> None:
    before = {("H1", "c1"): (1, D("1000")), ("H1", "c2"): (1, D("500"))}
    after = {("H1", "c1"): (2, D("1100")), ("H2", "c9"): (1, D("10"))}
    kinds = [(c.setl_id, c.change) for c in case_changes(before, after)]
    assert kinds == [("c1", "changed"), ("c2", "gone"), ("c9", "new")]


_points = st.decimals(min_value=D("0.0001"), max_value=D("5000"), places=4)
_money = st.decimals(min_value=D("0"), max_value=D("200000"), places=2)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["H1", "H2", "H3", "H4"]),
            st.sampled_from(["310", "390"]),
            _points,
            _money,
            st.one_of(st.none(), st.floats(min_value=0, max_value=1)),
        ),
        min_size=1,
        max_size=40,
    ),
    st.decimals(min_value=D("1000"), max_value=D("9999999"), places=2),
)
def test_lines_reconcile_with_the_city_total_to_the_fen(
    raw: list[tuple[str, str, Decimal, Decimal, float | None]], budget: Decimal
) -> None:
    doc = policy_doc()
    doc["funds"]["310"]["budget"] = str(budget)
    doc["funds"]["310"]["point_value"] = {"initial": "10"}  # unbounded: Σ = budget ÷ ratio
    policy = parse_settlement_policy(doc)
    cases = [
        SettleCase(
            fixmedins_code=h,
            setl_id=f"s{i}",
            revision=1,
            fund=f,
            points=p,
            total_cost=c,
            fund_pay=None if share is None else (c * D(str(share))).quantize(D("0.01")),
        )
        for i, (h, f, p, c, share) in enumerate(raw)
    ]
    scores = {h: HospitalInput(score=D("80")) for h in ("H1", "H2", "H3", "H4")}
    pvs, year = settle_year(policy, cases, scores)
    _, month = settle_month(policy, cases)
    for lines in (year, month):
        totals = settlement_totals([msgspec.to_builtins(x) for x in lines])
        for field in ("dip_amount", "other_payments", "deductions", "settled", "payable"):
            values = [getattr(x, field) for x in lines]
            assert all(v == v.quantize(D("0.01")) for v in values)  # every figure to the fen
            city = D(totals["city"][field])
            assert city == sum(values, D(0))  # Σ hospital lines = city total, to the fen
            assert city == sum((D(f[field]) for f in totals["funds"].values()), D(0))
        assert totals["city"]["cases"] == len(cases)
    # and the 310 lines' DIP amounts add up to budget ÷ ratio within the rounding (point value
    # to 0.0001 over the total score, plus half a fen per line)
    total = sum((x.dip_amount for x in year if x.fund == "310"), D(0))
    pv = pvs["310"]
    if pv.value is not None:
        slack = D("0.00005") * pv.total_score + D("0.005") * len(year)
        assert abs(total - budget / D("0.8")) <= slack
