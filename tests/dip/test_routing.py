"""Routing of scored cases between the treating and the insured city."""

from __future__ import annotations

import pytest

from contracts import city_of
from workers.dip import route


def test_same_city_goes_to_the_treating_city_only() -> None:
    # two districts of Guangzhou (440104 越秀, 440106 天河) are one city 440100
    r = route("440106", "440104", "44")
    assert r.scope == "same_city"
    assert [(t.role, t.admdvs, t.topic) for t in r.targets] == [
        ("treating", "440100", "dip.case.scored.440100.v1")
    ]


def test_other_city_same_province_goes_to_both_with_roles() -> None:
    # insured in Shenzhen (440304), treated in Guangzhou (440104)
    r = route("440304", "440104", "440000")
    assert r.scope == "cross_city"
    assert [(t.role, t.admdvs) for t in r.targets] == [
        ("treating", "440100"),
        ("insured", "440300"),
    ]
    assert r.targets[1].topic == "dip.case.scored.440300.v1"


def test_other_province_is_out_of_province() -> None:
    r = route("110105", "440104", "44")
    assert r.scope == "out_of_province"
    assert r.targets[0].role == "treating"
    assert (r.targets[1].role, r.targets[1].admdvs, r.targets[1].topic) == (
        "out_of_province",
        "110000",  # 北京 is one pool (contracts.city_of)
        "dip.case.scored.out_of_province.v1",
    )


def test_city_level_and_province_level_codes() -> None:
    # a city-level code (440100) and a county of it are the same city
    assert route("440100", "440113", "44").scope == "same_city"
    # same first 2 digits, different first 4: another city of the province
    assert route("441900", "440100", "44").scope == "cross_city"
    assert city_of("440305") == "440300"


def test_topic_template_is_configurable() -> None:
    r = route("440304", "440104", "44", topic_template="scored-{admdvs}")
    assert [t.topic for t in r.targets] == ["scored-440100", "scored-440300"]


@pytest.mark.parametrize(
    ("insured", "treating", "prov"),
    [("44010", "440104", "44"), ("440104", "44O104", "44"), ("440104", "440104", "4")],
)
def test_malformed_codes_raise(insured: str, treating: str, prov: str) -> None:
    with pytest.raises(ValueError):
        route(insured, treating, prov)


def test_treating_outside_the_province_is_not_ours() -> None:
    with pytest.raises(ValueError):
        route("440104", "110105", "44")
