"""Lookup tables precomputed from a RuleSet, cached on it, so grouping is a few dict hits."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal

from ._codes import TREATMENT_RANK, norm_diag, norm_oprn
from ._errors import DipError
from ._model import AgeBand, Group, Hospital, IcuBand, Level, Policy, RuleSet, SeverityTier
from ._pregroups import PreMatcher, compile_pre_groups, national_pre_group_rules


class RuleSetError(DipError, ValueError):
    """The rules are inconsistent (duplicate keys, unknown levels…); raised at load time."""


@dataclass(slots=True)
class GroupRef:
    """A group plus its reference costs as floats (ratios only; money stays Decimal)."""

    group: Group
    ref_by_level: dict[str, float]
    ref_all: float | None
    # insutype -> (level -> cost, all-level cost), for catalogs with per-fund costs
    by_fund: dict[str, tuple[dict[str, float], float | None]] = field(default_factory=dict)


@dataclass(slots=True)
class Index:
    coefficients: dict[str, float]
    point_values: dict[str, Decimal]
    groups: dict[str, GroupRef]
    excluded_diag: frozenset[str]
    excluded_oprn: frozenset[str]
    # main_related: (subcategory, main op) -> [(related slots, group)], most related first
    core_related: dict[tuple[str, str], list[tuple[tuple[frozenset[str], ...], Group]]]
    # main / set modes: (subcategory, key) -> group
    core_exact: dict[tuple[str, str], Group]
    comprehensive: dict[tuple[str, str], Group]
    bed_day: dict[str, Group]
    bed_day_lengths: tuple[int, ...]
    oprn_rank: dict[str, int] = field(default_factory=dict)
    ruleset_version: str = ""
    catalog_version: str = ""
    levels: dict[str, Level] = field(default_factory=dict)
    hospitals: dict[str, Hospital] = field(default_factory=dict)
    yuan_per_point: dict[str, float] = field(default_factory=dict)
    # 先期分组 the catalog prices, in the order they are tried; national ones it does not
    # price (with pre_groups.national), for the grouping reason only
    pre_groups: tuple[PreMatcher, ...] = ()
    pre_unpriced: tuple[PreMatcher, ...] = ()
    # a cheap gate before trying them: any of these operation codes; a pre-group without
    # operations and conditions (always try); one without operations needing 天龄/出生体重
    pre_codes: frozenset[str] = frozenset()
    pre_always: bool = False
    pre_newborn: bool = False


def index_of(ruleset: RuleSet) -> Index:
    """The cached index of a rule set (built on first use)."""
    cached = ruleset.__dict__.get("_index")
    if cached is None:
        cached = build_index(ruleset)
        ruleset.__dict__["_index"] = cached
    assert isinstance(cached, Index)
    return cached


def group_name(ruleset: RuleSet, code: str) -> str | None:
    """A group's 病种名称 as the city's catalog states it: the diagnosis name, then the main
    operation's name after ` / ` when the group has one; None for a code the catalog does not
    name (a national pre-group it does not price, an ungrouped case)."""
    ref = index_of(ruleset).groups.get(code)
    if ref is None:
        return None
    names = [n for n in (ref.group.name, ref.group.oprn_name) if n]
    return " / ".join(names) or None


def _slots(group: Group) -> list[list[str]]:
    return [[norm_oprn(alt) for alt in slot.split("|") if alt.strip()] for slot in group.operations]


def build_index(ruleset: RuleSet) -> Index:
    policy = ruleset.policy
    gp = policy.grouping
    sub_len = gp.subcategory_length
    cat_len = gp.category_length
    levels = {lv.code for lv in policy.levels}
    if len(levels) != len(policy.levels):
        raise RuleSetError("duplicate hospital level code")
    for ins, pv in policy.point_values.items():
        if not pv > 0:
            raise RuleSetError(f"point value for insutype {ins} must be positive, not {pv}")
    um = policy.unmatched
    for frac in (um.zero_score_cost_fraction, um.ungrouped_cost_fraction):
        if frac is not None and frac < 0:
            raise RuleSetError(f"cost fraction must not be negative, not {frac}")
    groups: dict[str, GroupRef] = {}
    core_related: dict[tuple[str, str], list[tuple[tuple[frozenset[str], ...], Group]]] = {}
    core_exact: dict[tuple[str, str], Group] = {}
    comprehensive: dict[tuple[str, str], Group] = {}
    bed_day: dict[str, Group] = {}
    pre: list[Group] = []

    def put(table: dict[tuple[str, str], Group], key: tuple[str, str], g: Group) -> None:
        other = table.get(key)
        if other is not None and other.code != g.code:
            raise RuleSetError(f"groups {other.code} and {g.code} have the same key {key}")
        table[key] = g

    for g in ruleset.groups:
        if g.code in groups:
            raise RuleSetError(f"duplicate group code {g.code}")
        unknown = (set(g.ref_costs) | set(g.level_coefficients)) - levels
        for by_level in g.fund_ref_costs.values():
            unknown |= set(by_level) - levels
        if unknown:
            raise RuleSetError(f"group {g.code}: unknown level {sorted(unknown)}")
        by_fund: dict[str, tuple[dict[str, float], float | None]] = {}
        for fund in sorted(set(g.fund_ref_costs) | set(g.fund_ref_cost_all)):
            fund_all = g.fund_ref_cost_all.get(fund)
            by_fund[fund] = (
                {k: float(v) for k, v in g.fund_ref_costs.get(fund, {}).items()},
                None if fund_all is None else float(fund_all),
            )
        groups[g.code] = GroupRef(
            g,
            {k: float(v) for k, v in g.ref_costs.items()},
            None if g.ref_cost_all is None else float(g.ref_cost_all),
            by_fund,
        )
        diag = norm_diag(g.diag)
        if g.kind == "pre_group":
            pre.append(g)
        elif g.kind in ("core", "primary"):
            sub = diag[:sub_len]
            slots = _slots(g)
            if not slots:
                put(core_exact, (sub, ""), g)
                continue
            if gp.core_operation_match == "set":
                for combo in itertools.product(*slots):
                    put(core_exact, (sub, "+".join(sorted(combo))), g)
            else:
                related = tuple(frozenset(s) for s in slots[1:])
                for main in slots[0]:
                    if gp.core_operation_match == "main":
                        put(core_exact, (sub, main), g)
                    else:
                        core_related.setdefault((sub, main), []).append((related, g))
        elif g.kind == "comprehensive":
            if g.treatment is None:
                raise RuleSetError(f"comprehensive group {g.code} has no treatment kind")
            put(comprehensive, (diag[:cat_len], g.treatment), g)
        else:  # bed_day
            if diag in bed_day:
                raise RuleSetError(f"bed-day groups {bed_day[diag].code} and {g.code} share {diag}")
            bed_day[diag] = g

    for key, cands in core_related.items():
        cands.sort(key=lambda c: (-len(c[0]), c[1].code))
        for a, b in itertools.pairwise(cands):
            if a[0] == b[0]:
                raise RuleSetError(f"groups {a[1].code} and {b[1].code} have the same key {key}")

    hospitals: dict[str, Hospital] = {}
    for h in policy.hospitals:
        if h.code in hospitals:
            raise RuleSetError(f"hospitals: duplicate hospital {h.code}")
        hospitals[h.code] = h
    pre_matchers = compile_pre_groups(pre)
    seen: dict[tuple[object, ...], str] = {}
    for m in pre_matchers:
        same: tuple[object, ...] = (m.slots, m.anywhere, m.diag, m.diag_anywhere)
        same += (m.age_days_below, m.min_weight, m.weight_below)
        if same in seen:
            raise RuleSetError(f"pre-groups {seen[same]} and {m.group.code} match the same cases")
        seen[same] = m.group.code
    pre_unpriced: tuple[PreMatcher, ...] = ()
    if policy.pre_groups.national:
        named = {g.pre_group.national for g in pre if g.pre_group is not None}
        pre_unpriced = compile_pre_groups(
            g for code, g in national_pre_group_rules().items() if code not in named
        )
    oprn_rank = dict(TREATMENT_RANK)
    oprn_rank["intervention"] = TREATMENT_RANK[gp.intervention_as]
    oprn_rank.pop("conservative")
    return Index(
        coefficients={lv.code: lv.coefficient for lv in policy.levels},
        point_values=dict(policy.point_values),
        groups=groups,
        excluded_diag=frozenset(
            norm_diag(e.code) for e in ruleset.exclusions if e.target == "diagnosis"
        ),
        excluded_oprn=frozenset(
            norm_oprn(e.code) for e in ruleset.exclusions if e.target == "operation"
        ),
        core_related=core_related,
        core_exact=core_exact,
        comprehensive=comprehensive,
        bed_day=bed_day,
        bed_day_lengths=tuple(sorted({len(k) for k in bed_day}, reverse=True)),
        oprn_rank=oprn_rank,
        ruleset_version=ruleset.version_id,
        catalog_version=policy.catalog_version,
        levels={lv.code: lv for lv in policy.levels},
        hospitals=hospitals,
        yuan_per_point={k: float(v) for k, v in policy.deviation.yuan_per_point.items()},
        pre_groups=pre_matchers,
        pre_unpriced=pre_unpriced,
        pre_codes=frozenset().union(*(m.codes for m in (*pre_matchers, *pre_unpriced))),
        pre_always=any(m.unconditional for m in (*pre_matchers, *pre_unpriced)),
        pre_newborn=any(
            not m.slots and not m.unconditional for m in (*pre_matchers, *pre_unpriced)
        ),
    )


def _has_costs(g: Group) -> bool:
    return bool(
        g.ref_cost_all is not None or g.ref_costs or g.fund_ref_costs or g.fund_ref_cost_all
    )


def check_used(policy: Policy, groups: tuple[Group, ...]) -> None:
    """Refuse a rule set that states something the engine would ignore: a city that writes an
    option or a column expects it to count, so an ignored one is an error naming the field."""
    codes = {g.code: g for g in groups}

    def fail(message: str) -> None:
        raise RuleSetError(message)

    pr = policy.primary
    for g in groups:
        if g.primary_factor is not None and g.kind != "primary":
            fail(f"group {g.code}: 基层系数 (primary_factor) on a {g.kind} group is never used")
        own = g.level_coefficients or g.primary_factor is not None
        if g.kind == "primary" and pr.coefficient != "group" and own:
            fail(
                f"group {g.code}: its own coefficient is ignored with "
                f"primary.coefficient = {pr.coefficient!r} (set it to 'group')"
            )
    if pr.coefficient == "none" and pr.factor != 1.0:
        fail("primary.factor is ignored with primary.coefficient = 'none'")

    dev = policy.deviation
    if dev.reference == "score":
        if not dev.yuan_per_point:
            fail("deviation.reference = 'score' needs deviation.yuan_per_point")
        for g in groups:
            if _has_costs(g):
                fail(
                    f"group {g.code}: catalog reference costs are ignored with "
                    "deviation.reference = 'score'"
                )
    elif dev.yuan_per_point:
        fail("deviation.yuan_per_point is used only with deviation.reference = 'score'")
    for fund, ypp in dev.yuan_per_point.items():
        if not ypp > 0:
            fail(f"deviation.yuan_per_point for {fund} must be positive, not {ypp}")
    if dev.extreme_threshold is None:
        if dev.extreme_inclusive:
            fail("deviation.extreme_inclusive is set but there is no extreme_threshold")
        if dev.extreme_action != "special_review":
            fail("deviation.extreme_action is set but there is no extreme_threshold")
    if dev.low_threshold is None:
        for name in ("low_inclusive", "low_apply_coefficient"):
            if getattr(dev, name):
                fail(f"deviation.{name} is set but the low band is off (low_threshold)")
        if dev.low_apply_adjustment is not None:
            fail("deviation.low_apply_adjustment is set but the low band is off (low_threshold)")
    if dev.high_threshold is None:
        if dev.high_inclusive:
            fail("deviation.high_inclusive is set but the high band is off (high_threshold)")
        if dev.high_offset is not None and dev.extreme_threshold is None:
            fail("deviation.high_offset is set but no band uses the high formula")
    if len(set(dev.ratio_divides_by)) != len(dev.ratio_divides_by):
        fail("deviation.ratio_divides_by lists a factor twice")

    um = policy.unmatched
    if um.blank_group:
        if um.ungrouped_cost_fraction is not None:
            fail("unmatched: blank_group and ungrouped_cost_fraction both price ungrouped cases")
        blank = codes.get(um.blank_group)
        if blank is None:
            fail(f"unmatched.blank_group {um.blank_group!r} is not in the catalog")
        elif dev.reference != "score" and not _has_costs(blank):
            fail(f"unmatched.blank_group {um.blank_group!r} has no reference cost")
        elif not blank.score > 0:
            fail(f"unmatched.blank_group {um.blank_group!r} has no score")
    elif um.blank_factor != 1.0:
        fail("unmatched.blank_factor is set but there is no blank_group")

    adj = policy.adjustments
    bands: tuple[AgeBand | SeverityTier | IcuBand, ...] = (*adj.age, *adj.severity, *adj.icu)
    if bands and not adj.apply_to:
        fail("adjustments: bands are given but apply_to is empty")
    for band in bands:
        missing = [c for c in band.groups if c not in codes]
        if missing:
            fail(f"adjustments {band.name or type(band).__name__}: groups {missing} not in catalog")
    uses_cci = False
    for tier in adj.severity:
        what = f"adjustments.severity {tier.name!r}"
        if (tier.min_fee_share is None) != (not tier.fee_types):
            fail(f"{what}: fee_types and min_fee_share go together")
        if tier.min_cci is not None or tier.max_cci is not None:
            uses_cci = True
        if not (
            tier.dscg_ways
            or tier.diag_prefixes
            or tier.min_days
            or tier.max_days is not None
            or tier.min_cost_ratio is not None
            or tier.fee_types
            or tier.min_cci is not None
            or tier.max_cci is not None
        ):
            fail(f"{what}: no condition (it would match every case)")
    if uses_cci and not adj.cci:
        fail("adjustments.severity uses min_cci/max_cci but adjustments.cci is empty")
    if adj.cci and not uses_cci:
        fail("adjustments.cci is given but no severity tier uses min_cci/max_cci")

    inc = policy.incomplete
    on = bool(inc.dscg_ways or inc.death_within_days is not None or inc.case_flag)
    if not on and (inc.action != "ratio" or inc.ratio_cap != 1.0 or inc.cost_fraction is not None):
        fail("incomplete: an action is set but no stay is incomplete (dscg_ways, …)")
    if inc.action == "cost_fraction" and inc.cost_fraction is None:
        fail("incomplete.action = 'cost_fraction' needs incomplete.cost_fraction")
    if inc.action == "ratio" and inc.cost_fraction is not None:
        fail("incomplete.cost_fraction is used only with incomplete.action = 'cost_fraction'")
    if inc.action == "cost_fraction" and inc.ratio_cap != 1.0:
        fail("incomplete.ratio_cap is used only with incomplete.action = 'ratio'")
    if inc.cost_fraction is not None and inc.cost_fraction < 0:
        fail(f"incomplete.cost_fraction must not be negative, not {inc.cost_fraction}")

    for h in policy.hospitals:
        if h.coefficient is None and not h.fund_coefficients:
            fail(f"hospitals: {h.code} has no coefficient")
