"""Sample rules (three cities of Guangdong, clearing year 2026) and random cases for tests,
the demo and the bench. The numbers are made up; see data/*.toml.

Costs are log-normal around the reference cost the city's deviation check uses
(`contracts.samples.COST_SIGMA`, mean = that cost), so scored cases come out mostly normal with
a few low and high ones, as in real data, instead of mostly extremes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from pathlib import Path

import msgspec

from contracts import CodeTables
from contracts.dip import CaseFacts
from contracts.samples import MixCase, lognormal_cost, main_codes

from ._grouping import group
from ._loader import load_rules
from ._model import Group, Policy, RuleSet

DATA_DIR = Path(__file__).parent / "data"
SAMPLE_RULES: dict[str, Path] = {
    "440100": DATA_DIR / "440100-2026.toml",  # Guangzhou, five level tiers
    "440300": DATA_DIR / "440300-2026.toml",  # Shenzhen, three level tiers
    "440600": DATA_DIR / "440600-2026.toml",  # Foshan, three level tiers, Chinese headers
}
_COUNTIES = {
    "440100": ("440103", "440104", "440106"),
    "440300": ("440303", "440304", "440305"),
    "440600": ("440604", "440605", "440606"),
}
_OTHER_PROVINCE = ("110105", "310115", "430102")
_CLASS_OF = {
    "surgery": "surgery",
    "therapeutic": "therapeutic",
    "diagnostic": "diagnostic",
}
#: a comprehensive group's operation when none of the category's core operations gives its
#: treatment (classes as the bundled 2.0 table states them), by the diagnosis' first letters
_GENERIC_OPS: dict[str, tuple[tuple[str, str], ...]] = {
    "surgery": (("", "54.1100"),),  # 开腹探查术
    "therapeutic": (("C", "99.2500"), ("", "99.1000")),  # 化疗药物输注; 溶栓
    "diagnostic": (("I2", "88.5600"), ("", "88.3800")),  # 冠状动脉造影; 计算机断层
}


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


def reference_cost(g: Group, policy: Policy, level: str, insutype: str = "310") -> float | None:
    """The group's reference cost (支付标准) the deviation check uses for a case of `level`
    and fund `insutype`, as the scoring does: the fund's table when the group has one, the
    level's cost (`same_level`, else all levels), or score × yuan per point. None: no check."""
    dev = policy.deviation
    if dev.reference == "score":
        ypp = dev.yuan_per_point.get(insutype, dev.yuan_per_point.get("default"))
        if ypp is None:
            return None
        return g.score * float(ypp) or None
    by_level = g.fund_ref_costs.get(insutype, g.ref_costs)
    ref_all = g.fund_ref_cost_all.get(insutype, g.ref_cost_all)
    base = by_level.get(level) if dev.reference == "same_level" else None
    if base is None:
        base = ref_all
    return float(base) if base else None


def _treatment(code: str, policy: Policy) -> str:
    """What the grouping makes of `code` as a case's main operation: the table's class (an
    unclassed main operation counts as surgery, the mapping's documented guess), 介入 as the
    city says."""
    found = CodeTables.load_bundled().operation(code)
    cls = found.oprn_class if found is not None and found.oprn_class is not None else "surgery"
    return policy.grouping.intervention_as if cls == "intervention" else cls


def _catching(rules: RuleSet, category: str, op: str | None) -> tuple[str, ...]:
    """Diagnoses of the core and primary groups of `category` that would take a case with main
    operation `op` (None: no operation) away from the comprehensive group."""
    out: list[str] = []
    for c in rules.groups:
        if c.kind not in ("core", "primary") or c.diag[:3] != category or c.diag in out:
            continue
        if (op is None and not c.operations) or (
            op is not None and c.operations and op in c.operations[0].split("|")
        ):
            out.append(c.diag)
    return tuple(out)


def _comprehensive_case(g: Group, rules: RuleSet) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(operations, diagnoses to avoid) that land a case in comprehensive group `g`: no
    operation for 保守治疗, else one giving its treatment — a core operation of the same
    category (an appendectomy for K35.2) when one fits, else a generic one. None: none does."""
    if g.treatment in (None, "conservative"):
        avoid = _catching(rules, g.diag, None)
        return ((), avoid) if main_codes(g.diag, avoid) else None
    own = [
        alt
        for c in rules.groups
        if c.kind in ("core", "primary") and c.diag[:3] == g.diag and c.operations
        for alt in c.operations[0].split("|")
    ]
    generic = [op for start, op in _GENERIC_OPS[str(g.treatment)] if g.diag.startswith(start)]
    for code in dict.fromkeys([*own, *generic]):
        if _treatment(code, rules.policy) != g.treatment:
            continue
        avoid = _catching(rules, g.diag, code)
        if main_codes(g.diag, avoid):
            return (code,), avoid
    return None


def sample_case_mix(rules: RuleSet, level: str) -> tuple[MixCase, ...]:
    """The case mix of a hospital of `level` under `rules`, for `contracts.samples`: one
    `MixCase` per core, primary and comprehensive group a generated adult's list can land in,
    with the group's own diagnosis and operations and its reference cost at that level
    (职工 fund tables, when a group has them) as the average. A comprehensive group's cases
    avoid the diagnoses of the category's core groups that would take them. Groups
    without a reference cost (score 0), newborn-only groups, bed-day groups and comprehensive
    groups no single operation leads to are left out.
    """
    out: list[MixCase] = []
    for g in rules.groups:
        if g.kind not in ("core", "primary", "comprehensive"):
            continue
        ref = reference_cost(g, rules.policy, level)
        if not ref:
            continue
        found = (g.operations, ()) if g.kind != "comprehensive" else _comprehensive_case(g, rules)
        if found is None:
            continue
        ops, avoid = found
        if main_codes(g.diag, avoid):
            out.append(MixCase(g.diag, ref, ops, avoid, label=g.code))
    return tuple(out)


def make_case_facts(rng: random.Random, rules: Sequence[RuleSet] | None = None) -> CaseFacts:
    """A plausible random case treated in one of ``rules`` (default: every sample city):
    mostly core groups, some comprehensive, primary, ungrouped; the cost log-normal around
    the reference cost of the group the case lands in (`reference_cost`; 3,000 when it has
    none), so that about 87 % are normal under 0.5/2 bounds (see contracts.samples)."""
    rs = rng.choice(rules) if rules else sample_rules(rng.choice(tuple(SAMPLE_RULES)))
    city = rs.policy.city
    level = rng.choice(rs.policy.levels).code
    insutype = rng.choice(("310", "390"))
    roll = rng.random()
    ops: tuple[tuple[str, str], ...] = ()
    if roll < 0.03:
        diag = "R69.X00"
    else:
        g = rng.choice([g for g in rs.groups if g.kind != "bed_day"])
        diag, ops = _diag_for(g, rng), _ops_for(g, rng)
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
    case = CaseFacts(
        case_key=f"{hosp}:{seq:09d}",
        fixmedins_code=hosp,
        hospital_level=level,
        treating_admdvs=treating,
        insured_admdvs=insured,
        insutype=insutype,
        main_diag_code=diag,
        other_diag_codes=("I10.X00",) if rng.random() < 0.3 else (),
        operations=ops,
        total_cost=Decimal(0),
        age_years=age,
        age_days=rng.randint(0, 364) if age == 0 else None,
        icu_minutes=rng.choice((0, 0, 0, 0, 2880, 12000)),
        act_ipt_days=rng.randint(1, 20),
        discharge_date=f"{rs.policy.clearing_year}-{rng.randint(1, 12):02d}-15",
        dscg_way=rng.choice(("1", "1", "1", "2", "5")),
    )
    # Centre the cost on the group the case actually lands in (a comprehensive row's code can
    # fall into a core group of its category): the deviation shares are then the law's.
    landed = group(case, rs).group_code
    found = next((x for x in rs.groups if x.code == landed), None) if landed else None
    base = (reference_cost(found, rs.policy, level, insutype) if found else None) or 3000.0
    cost = Decimal(round(lognormal_cost(rng, base), 2)).quantize(Decimal("0.01"))
    return msgspec.structs.replace(case, total_cost=cost)
