"""Region codes as data: which codes exist, and the DIP pool (city) each belongs to.

Codes are hand-picked real ones (GB/T 2260 via NBS 2023, and the medical-insurance pools
the civil list lacks); the expected cities are stated here, not computed.
"""

from __future__ import annotations

import pytest

from contracts import ValidationError, city_of
from contracts._regions import Regions, bundled_regions, region_inside
from tests.builders import check, golden, mutate, rules


@pytest.mark.parametrize(
    ("admdvs", "city"),
    [
        ("440305", "440300"),  # 南山区 → 深圳市
        ("440106", "440100"),  # 天河区 → 广州市
        ("440300", "440300"),
        ("440100", "440100"),
        ("130171", "130100"),  # 石家庄高新区 (NBS statistical unit, 5th digit 7)
        ("441900", "441900"),  # 东莞市: no counties
        ("441901", "441900"),  # … so a code under it is the city
        ("442000", "442000"),  # 中山市
        ("460400", "460400"),  # 儋州市
        ("460403", "460400"),
        ("620201", "620200"),  # 嘉峪关市's placeholder county
        ("620299", "620200"),
        ("430199", "430100"),  # 长沙市市本级
        ("433199", "433100"),  # 湘西州州本级
        ("439900", "439900"),  # 湖南省省本级: a pool of its own
        ("449900", "449900"),
        ("159901", "159900"),  # 内蒙古区本级（区直）: a part of the 区本级 pool
        ("110000", "110000"),  # a municipality is one pool, named by its own code
        ("110100", "110000"),
        ("110105", "110000"),  # 朝阳区
        ("500101", "500000"),  # 重庆 万州区 (市辖区) …
        ("500229", "500000"),  # … and 城口县 (县): one Chongqing
        ("310151", "310000"),
        ("429004", "429004"),  # 仙桃市: county-level, under the province directly
        ("419001", "419001"),  # 济源市
        ("469002", "469002"),  # 琼海市
        ("440000", "440000"),  # a province is named by itself
    ],
)
def test_a_region_belongs_to_its_city(admdvs: str, city: str) -> None:
    assert city_of(admdvs) == city


@pytest.mark.parametrize(
    "unknown",
    [
        "440188",  # no such county in Guangzhou
        "440199" + "0",  # seven digits
        "449800",  # not a pattern of any pool
        "990100",  # no province 99
        "429000",  # 省直辖县级行政区划: a heading of the list, not a region
        "469000",
        "659000",
        "441100",  # no city 4411 in Guangdong
        "441099",  # 市本级 of a city that does not exist
    ],
)
def test_an_unknown_code_has_no_city(unknown: str) -> None:
    assert city_of(unknown) is None
    assert bundled_regions().region(unknown) is None


@pytest.mark.parametrize("bad", [None, "", "4403", "44030", "4403050", "44x305", "４４０３０５"])
def test_anything_but_six_digits_has_no_city(bad: str | None) -> None:
    assert city_of(bad) is None


def test_pools_the_civil_list_lacks_are_named() -> None:
    regions = bundled_regions()
    assert (r := regions.region("439900")) is not None and r.name == "湖南省省本级"
    assert (r := regions.region("459900")) is not None and r.name == "广西壮族自治区区本级"
    assert (r := regions.region("430199")) is not None and r.name == "长沙市市本级"
    assert (r := regions.region("440106")) is not None
    assert (r.name, r.parent, r.level) == ("天河区", "440100", "county")


def test_a_local_pool_can_be_added_as_data() -> None:
    extra = {"360340": {"name": "萍乡经济开发区", "parent": "360300"}}
    regions = Regions.from_data(bundled_regions().rows(), {"extra": extra})
    assert regions.city_of("360340") == "360300"
    assert bundled_regions().city_of("360340") is None


def test_a_local_pool_under_an_unknown_parent_is_refused() -> None:
    with pytest.raises(ValueError, match="360340"):
        Regions.from_data(
            bundled_regions().rows(), {"extra": {"360340": {"name": "x", "parent": "369800"}}}
        )


@pytest.mark.parametrize(
    ("inner", "outer", "inside"),
    [
        ("440106", "440100", True),
        ("440106", "440000", True),
        ("440100", "440000", True),
        ("441901", "441900", True),
        ("110105", "110000", True),
        ("500229", "500000", True),
        ("430199", "430100", True),
        ("439900", "430000", True),
        ("440106", "440106", True),
        ("440106", "440104", False),  # sibling districts
        ("440305", "440100", False),  # 深圳 is not in 广州
        ("440100", "440106", False),
        ("429004", "429000", False),  # the heading is no region
        # an institution keeps the region it was registered under: 440184 从化市 became
        # 440117 从化区 in 2014, and a hospital coded H440184… is still in 广州
        ("440184", "440100", True),
        ("440184", "440300", False),
    ],
)
def test_region_inside_follows_the_hierarchy(inner: str, outer: str, inside: bool) -> None:
    assert region_inside(inner, outer) is inside


def _errors(**changes: object) -> list[ValidationError]:
    return check(mutate(golden(), **changes))


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"mdtrtarea_admvs": "440188"}, "mdtrtarea_admvs"),
        ({"insuplc_admdvs": "440188"}, "insuplc_admdvs"),
        ({"input__setlinfo__insuplc": "429000"}, "setlinfo.insuplc"),
    ],
)
def test_an_unknown_region_is_refused_with_its_path(changes: dict[str, str], path: str) -> None:
    errors = [e for e in _errors(**changes) if e.rule == "ADMDVS_UNKNOWN"]
    assert [(e.field, e.severity) for e in errors] == [(path, "reject")]
    assert path in errors[0].message_en and "region" in errors[0].message_en


def test_both_region_fields_unknown_give_one_error_each() -> None:
    errors = _errors(insuplc_admdvs="440188", input__setlinfo__insuplc="440188")
    assert sorted(e.field for e in errors if e.rule == "ADMDVS_UNKNOWN") == [
        "insuplc_admdvs",
        "setlinfo.insuplc",
    ]


def test_a_malformed_region_is_a_format_error_not_an_unknown_one() -> None:
    assert rules(_errors(mdtrtarea_admvs="44010x")) & {"ADMDVS_FORMAT", "ADMDVS_UNKNOWN"} == {
        "ADMDVS_FORMAT"
    }


@pytest.mark.parametrize(
    "changes",
    [
        # 东莞: a hospital of the city, a patient insured in a town code under it
        {
            "mdtrtarea_admvs": "441900",
            "fixmedins_code": "H44190000001",
            "msgid": "H44190000001202611240930000001",
            "insuplc_admdvs": "441901",
            "input__setlinfo__insuplc": "441901",
        },
        # 儋州, insured at 湖南省省本级
        {
            "mdtrtarea_admvs": "460400",
            "fixmedins_code": "H46040000001",
            "msgid": "H46040000001202611240930000001",
            "insuplc_admdvs": "439900",
            "input__setlinfo__insuplc": "439900",
        },
        # 北京: a district hospital treating under the municipality's code
        {
            "mdtrtarea_admvs": "110000",
            "fixmedins_code": "H11010500001",
            "msgid": "H11010500001202611240930000001",
            "insuplc_admdvs": "110105",
            "input__setlinfo__insuplc": "110105",
        },
        # a provincial hospital treating in 广州, a patient of 长沙市市本级
        {
            "fixmedins_code": "H44000000001",
            "msgid": "H44000000001202611240930000001",
            "insuplc_admdvs": "430199",
            "input__setlinfo__insuplc": "430199",
        },
    ],
)
def test_real_pools_validate_clean(changes: dict[str, str]) -> None:
    assert _errors(**changes) == []


def test_a_hospital_outside_the_treating_city_is_still_refused() -> None:
    errors = _errors(mdtrtarea_admvs="441900")  # a 广州 hospital (H440100…) treating in 东莞
    assert rules(errors) == {"INST_REGION"}
