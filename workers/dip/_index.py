"""Lookup tables precomputed from a RuleSet, cached on it, so grouping is a few dict hits."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal

from ._codes import TREATMENT_RANK, norm_diag, norm_oprn
from ._errors import DipError
from ._model import Group, RuleSet


class RuleSetError(DipError, ValueError):
    """The rules are inconsistent (duplicate keys, unknown levels…); raised at load time."""


@dataclass(slots=True)
class GroupRef:
    """A group plus its reference costs as floats (ratios only; money stays Decimal)."""

    group: Group
    ref_by_level: dict[str, float]
    ref_all: float | None


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


def index_of(ruleset: RuleSet) -> Index:
    """The cached index of a rule set (built on first use)."""
    cached = ruleset.__dict__.get("_index")
    if cached is None:
        cached = build_index(ruleset)
        ruleset.__dict__["_index"] = cached
    assert isinstance(cached, Index)
    return cached


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

    def put(table: dict[tuple[str, str], Group], key: tuple[str, str], g: Group) -> None:
        other = table.get(key)
        if other is not None and other.code != g.code:
            raise RuleSetError(f"groups {other.code} and {g.code} have the same key {key}")
        table[key] = g

    for g in ruleset.groups:
        if g.code in groups:
            raise RuleSetError(f"duplicate group code {g.code}")
        unknown = (set(g.ref_costs) | set(g.level_coefficients)) - levels
        if unknown:
            raise RuleSetError(f"group {g.code}: unknown level {sorted(unknown)}")
        groups[g.code] = GroupRef(
            g,
            {k: float(v) for k, v in g.ref_costs.items()},
            None if g.ref_cost_all is None else float(g.ref_cost_all),
        )
        diag = norm_diag(g.diag)
        if g.kind in ("core", "primary"):
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
    )
