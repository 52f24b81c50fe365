"""One definition of a region code's city."""

import pytest

from contracts import city_of


@pytest.mark.parametrize(
    ("admdvs", "city"),
    [("440305", "440300"), ("440300", "440300"), ("110000", "110000"), ("440100", "440100")],
)
def test_a_region_belongs_to_its_city(admdvs: str, city: str) -> None:
    assert city_of(admdvs) == city


@pytest.mark.parametrize("bad", [None, "", "4403", "44030", "4403050", "44x305"])
def test_anything_but_six_digits_has_no_city(bad: str | None) -> None:
    assert city_of(bad) is None
