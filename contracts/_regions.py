"""Administrative-division codes (医保区划, 6 digits: province 2, city 2, county 2)."""

from __future__ import annotations


def city_of(admdvs: str | None) -> str | None:
    """The city (地市, `xxxx00`) a 6-digit region code belongs to; None for anything else.

    The one definition: a city's rules, topics and reports are all keyed by it."""
    if admdvs is None or len(admdvs) != 6 or not admdvs.isdigit():
        return None
    return admdvs[:4] + "00"
