"""The settlement policy (TOML → `SettlementPolicy`) and the point values, figures by hand."""

from __future__ import annotations

import copy
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from workers.dip import (
    SettlementPolicyError,
    decode_settlement_policy,
    encode_settlement_policy,
    fund_point_values,
    initial_point_value,
    parse_settlement_policy,
)

EXAMPLE = Path("workers/dip/data/440100-2026-settlement.toml")
D = Decimal


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def test_example_parses_and_round_trips() -> None:
    policy = parse_settlement_policy(example())
    assert decode_settlement_policy(encode_settlement_policy(policy)) == policy
    assert policy.special_review_quota_permille == D(5)


def test_initial_point_value_weighted_1_2_7() -> None:
    # (1×11.8e9 + 2×12.4e9 + 7×12.9e9) / (1×1.05e9 + 2×1.09e9 + 7×1.12e9)
    # = 126.9e9 / 11.07e9 = 11.46341463… → 11.4634
    policy = parse_settlement_policy(example())
    assert initial_point_value(policy.funds["310"].point_value) == D("11.4634")


def test_initial_point_value_trimmed_drops_outlying_hospitals() -> None:
    doc = example()
    pv = doc["funds"]["310"]["point_value"]
    # one year, four hospitals: 每指数点值 10, 11, 12, 30. Quantile 0 of the sorted list is
    # 10; quantile 0.7 sits at rank 0.7 × 3 = 2.1 → 12 + (30 − 12) × 0.1 = 13.8: H4 (30) out
    pv.update(
        weights=["1"],
        history=[
            {
                "year": 2025,
                "hospitals": [
                    {"code": "H1", "total_cost": "1000", "total_score": "100"},
                    {"code": "H2", "total_cost": "2200", "total_score": "200"},
                    {"code": "H3", "total_cost": "3600", "total_score": "300"},
                    {"code": "H4", "total_cost": "3000", "total_score": "100"},
                ],
            }
        ],
        trim=["0", "0.7"],
    )
    policy = parse_settlement_policy(doc)
    # kept H1..H3: (1000 + 2200 + 3600) / (100 + 200 + 300) = 6800 / 600 = 11.3333
    assert initial_point_value(policy.funds["310"].point_value) == D("11.3333")


def test_settlement_point_value_bounds() -> None:
    policy = parse_settlement_policy(example())
    # 390: 4.2e9 / 0.65 / 4e8 = 16.1538 raw; ceiling 1.05 × 10.85 = 11.3925
    # 310: 9.5e9 / 0.78 / 1.2e9 = 10.1496 raw; within 0.85×11.4634 = 9.7439 … 12.0366
    pvs = fund_point_values(policy, {"310": D(1_200_000_000), "390": D(400_000_000)})
    assert (pvs["390"].raw, pvs["390"].value, pvs["390"].bound) == (
        D("16.1538"),
        D("11.3925"),
        "ceiling",
    )
    assert (pvs["310"].raw, pvs["310"].value, pvs["310"].bound) == (
        D("10.1496"),
        D("10.1496"),
        None,
    )
    # a big year: 310 raw 9.5e9 / 0.78 / 1.5e9 = 8.1197 < floor 9.7439
    low = fund_point_values(policy, {"310": D(1_500_000_000)})["310"]
    assert (low.raw, low.value, low.bound) == (D("8.1197"), D("9.7439"), "floor")
    assert fund_point_values(policy, {})["390"].value is None  # no cases, no point value


def _broken(path: list[str | int], value: object) -> dict[str, Any]:
    doc = copy.deepcopy(example())
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "names"),
    [
        (["funds", "390"], _DELETE, "funds.390"),
        (["funds", "310", "budget"], _DELETE, "budget"),
        (["funds", "310", "payment_ratio"], "1.2", "funds.310.payment_ratio"),
        (["prepay_ratio"], "-0.1", "prepay_ratio"),
        (["deposit_ratio"], "1.5", "deposit_ratio"),
        (["assessment", 1, "min_score"], "55", "assessment[1].min_score"),
        (["assessment", 1, "min_score"], "65", "assessment[1].min_score"),
        (["assessment", 2, "max_score"], "90", "assessment[2].max_score"),
        (["surplus", 1, "from"], "0.08", "surplus[1].from"),
        (["surplus", 1, "kept"], "2", "surplus[1].kept"),
        (["overspend", 0, "from"], "0.01", "overspend[0].from"),
        (["funds", "390", "point_value", "floor"], "1.2", "funds.390.point_value"),
        (["funds", "310", "point_value", "weights"], ["1", "2"], "funds.310.point_value.weights"),
        (["special_review_quota_permille"], "-1", "special_review_quota_permille"),
    ],
)
def test_contradictory_or_incomplete_policy_rejected_naming_the_field(
    path: list[str | int], value: object, names: str
) -> None:
    with pytest.raises(SettlementPolicyError, match=names.replace("[", r"\[").replace(".", r"\.")):
        parse_settlement_policy(_broken(path, value))
