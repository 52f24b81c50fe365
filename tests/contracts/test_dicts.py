"""The 1901 dictionaries as versioned data."""

from __future__ import annotations

import pytest

from contracts import Dictionaries, field_specs


def test_bundled_version_and_values() -> None:
    d = Dictionaries.load_bundled()
    assert d.version.startswith("1901-")
    assert d.values("gend") == {"0", "1", "2", "9"}
    assert d.label("dscg_way", "5") == "死亡"
    assert "2.1" in d.values("trt_type")
    assert len(d.values("dept")) > 200 and len(d.values("nat_regn_code")) > 200


def test_every_coded_field_has_a_dictionary() -> None:
    d = Dictionaries.load_bundled()
    missing = {s.dict for s in field_specs() if s.dict and not d.has(s.dict)}
    assert missing == set()


def test_icu_type_is_the_local_provisional_set() -> None:
    d = Dictionaries.load_bundled()
    assert d.values("icu_type") == {"1", "2", "3", "4", "5", "6", "7", "9"}
    assert "provisional" in (d.name("icu_type") or "")


def test_unknown_version() -> None:
    with pytest.raises(KeyError):
        Dictionaries.load_bundled("1901-nope")
