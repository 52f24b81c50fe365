"""Where a scored case goes: the treating city always; the insured city too when it differs.

A cross-city case is settled under the treating city's rules (seed 002 第三十一条); the insured
city receives a copy marked with its role so it can reconcile. A case insured in another
province leaves the province through the national 异地就医 channel, so it is routed to one
``out_of_province`` destination instead of a city.
"""

from __future__ import annotations

import msgspec

from contracts import city_of
from contracts.dip import Role, Scope

DEFAULT_TOPIC = "dip.case.scored.{admdvs}.v1"
OUT_OF_PROVINCE = "out_of_province"


class RouteTarget(msgspec.Struct, frozen=True):
    role: Role
    admdvs: str
    topic: str


class Route(msgspec.Struct, frozen=True):
    scope: Scope
    targets: tuple[RouteTarget, ...]


def _city(admdvs: str, what: str) -> str:
    city = city_of(admdvs)
    if city is None:
        raise ValueError(f"{what} {admdvs!r} is not a 6-digit region code")
    return city


def route(
    insured_admdvs: str,
    treating_admdvs: str,
    province_prefix: str,
    topic_template: str = DEFAULT_TOPIC,
) -> Route:
    """Roles and topics of a scored case. ``province_prefix`` is the gateway's province: its
    first 2 digits (``"44"``) or its code (``"440000"``). Raises ValueError for malformed codes
    or a treating region outside the province (it is not this gateway's to settle)."""
    prov = province_prefix[:2]
    if len(prov) != 2 or not prov.isdigit():
        raise ValueError(f"province prefix {province_prefix!r} is not 2 digits")
    treating = _city(treating_admdvs, "treating_admdvs")
    if treating[:2] != prov:
        raise ValueError(f"treating region {treating_admdvs} is outside province {prov}")
    first = RouteTarget("treating", treating, topic_template.format(admdvs=treating))
    insured = _city(insured_admdvs, "insured_admdvs")
    if insured == treating:
        return Route("same_city", (first,))
    if insured[:2] == prov:
        return Route(
            "cross_city",
            (first, RouteTarget("insured", insured, topic_template.format(admdvs=insured))),
        )
    out = RouteTarget("out_of_province", insured, topic_template.format(admdvs=OUT_OF_PROVINCE))
    return Route("out_of_province", (first, out))
