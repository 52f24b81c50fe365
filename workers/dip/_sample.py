"""Sample rules (two cities of Guangdong, clearing year 2026) and a random case generator for
tests, the demo and the bench. The numbers are made up; see data/*.toml."""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from pathlib import Path

import msgspec

from contracts.dip import CaseFacts

from ._loader import load_rules
from ._model import Group, RuleSet

DATA_DIR = Path(__file__).parent / "data"
SAMPLE_RULES: dict[str, Path] = {
    "440100": DATA_DIR / "440100-2026.toml",  # Guangzhou, five level tiers
    "440300": DATA_DIR / "440300-2026.toml",  # Shenzhen, three level tiers
}
_COUNTIES = {"440100": ("440103", "440104", "440106"), "440300": ("440303", "440304", "440305")}
_OTHER_PROVINCE = ("110105", "310115", "430102")
_CLASS_OF = {
    "surgery": "surgery",
    "therapeutic": "therapeutic",
    "diagnostic": "diagnostic",
}
_SIGMA = 0.45


@cache
def sample_rules(city: str = "440100") -> RuleSet:
    """The bundled sample rule set of a city (cached)."""
    return load_rules(SAMPLE_RULES[city])


def rules_for_year(rules: RuleSet, year: int) -> RuleSet:
    """The rules of a city, in force for `year` instead of the one they were written for
    (demos, benchmarks and drills discharge their cases in the last days, whatever the year)."""
    policy = msgspec.structs.replace(rules.policy, clearing_year=year)
    return RuleSet(policy=policy, groups=rules.groups, exclusions=rules.exclusions)


def _diag_for(g: Group, rng: random.Random) -> str:
    if g.kind == "comprehensive":
        return f"{g.diag}.{rng.choice('0189')}00" if len(g.diag) == 3 else g.diag
    if len(g.diag) == 3:
        return g.diag + ".X00"
    return g.diag + rng.choice(("00", "00x001", "01"))


def _ops_for(g: Group, rng: random.Random) -> tuple[tuple[str, str], ...]:
    if g.kind == "comprehensive":
        if g.treatment in (None, "conservative"):
            return ()
        cls = _CLASS_OF[g.treatment]
        code = {"surgery": "54.1100", "therapeutic": "99.1000", "diagnostic": "88.7200"}[cls]
        return ((code, cls),)
    out: list[tuple[str, str]] = []
    for i, slot in enumerate(g.operations):
        out.append((rng.choice(slot.split("|")), "surgery" if i == 0 else "therapeutic"))
    if out and rng.random() < 0.2:
        out.append(("89.5200", "diagnostic"))  # 心电图: excluded from grouping in 440100
    return tuple(out)


def make_case_facts(rng: random.Random, rules: Sequence[RuleSet] | None = None) -> CaseFacts:
    """A plausible random case treated in one of ``rules`` (default: both sample cities):
    mostly core groups, some comprehensive, primary, ungrouped; costs log-normal around the
    group's reference cost so that high and low deviation cases occur."""
    rs = rng.choice(rules) if rules else sample_rules(rng.choice(tuple(SAMPLE_RULES)))
    city = rs.policy.city
    level = rng.choice(rs.policy.levels).code
    roll = rng.random()
    ops: tuple[tuple[str, str], ...] = ()
    if roll < 0.03:
        diag, base = "R69.X00", 5000.0
    else:
        g = rng.choice([g for g in rs.groups if g.kind != "bed_day"])
        diag, ops = _diag_for(g, rng), _ops_for(g, rng)
        ref = g.ref_costs.get(level, g.ref_cost_all)
        base = float(ref) if ref else 3000.0
    cost = Decimal(round(base * rng.lognormvariate(-_SIGMA * _SIGMA / 2, _SIGMA), 2)).quantize(
        Decimal("0.01")
    )
    treating = rng.choice(_COUNTIES.get(city, (city,)))
    r2 = rng.random()
    if r2 < 0.85:
        insured = treating
    elif r2 < 0.95:
        other = [c for c in _COUNTIES if c != city] or [city]
        insured = rng.choice(_COUNTIES.get(rng.choice(other), (city,)))
    else:
        insured = rng.choice(_OTHER_PROVINCE)
    age = rng.randint(0, 95)
    seq = rng.randrange(10**9)
    hosp = f"H{city}{rng.randrange(100):05d}"
    return CaseFacts(
        case_key=f"{hosp}:{seq:09d}",
        fixmedins_code=hosp,
        hospital_level=level,
        treating_admdvs=treating,
        insured_admdvs=insured,
        insutype=rng.choice(("310", "390")),
        main_diag_code=diag,
        other_diag_codes=("I10.X00",) if rng.random() < 0.3 else (),
        operations=ops,
        total_cost=cost,
        age_years=age,
        age_days=rng.randint(0, 364) if age == 0 else None,
        icu_minutes=rng.choice((0, 0, 0, 0, 2880, 12000)),
        act_ipt_days=rng.randint(1, 20),
        discharge_date=f"{rs.policy.clearing_year}-{rng.randint(1, 12):02d}-15",
        dscg_way=rng.choice(("1", "1", "1", "2", "5")),
    )
