"""Pure DIP core: rules, grouping, scoring, routing, catalog building (no I/O beyond files).

Typical use::

    rules = load_rules("workers/dip/data/440100-2026.toml")   # the TREATING city's rules
    g = group(case, rules)
    s = score(g, rules, case)
    r = route(case.insured_admdvs, case.treating_admdvs, "44")

    # or all at once, as every caller does: the treating city's rules for the clearing year
    a = assess(case, RulesBook([rules]), province="44", received_at=now)

See README.md in this package for the file formats and every policy knob.
"""

from contracts.dip import CaseFacts, GroupResult, ScoreResult

from . import _reasons as reasons
from ._assess import (
    Assessment,
    RulesBook,
    RulesFor,
    assess,
    clearing_year,
    route_case,
    rules_key,
)
from ._bench import bench_group_score
from ._catalog import BuildOptions, CatalogBuild, build_catalog, read_history, write_catalog_csv
from ._errors import DipError
from ._facts import decode_cases_json, decode_cases_ndjson
from ._grouping import group
from ._index import RuleSetError, group_name
from ._loader import load_rules, make_ruleset, parse_catalog, read_table
from ._model import (
    Adjustments,
    AgeBand,
    BedDayPolicy,
    CciCondition,
    DeviationPolicy,
    Exclusion,
    Group,
    GroupingPolicy,
    Hospital,
    IcuBand,
    IncompletePolicy,
    Level,
    Policy,
    PreGroupPolicy,
    PreGroupRule,
    PrimaryPolicy,
    RuleSet,
    SeverityTier,
    SpecialReviewPolicy,
    UnmatchedPolicy,
    decode_ruleset,
    encode_ruleset,
)
from ._national import NationalEntry, national_pre_groups, national_primary_care
from ._point_value import (
    PointValue,
    fund_point_values,
    initial_point_value,
    settlement_point_value,
)
from ._pregroups import national_pre_group_rules
from ._routing import Route, RouteTarget, route
from ._sample import (
    SAMPLE_RULES,
    make_case_facts,
    reference_cost,
    rules_for_year,
    sample_case_mix,
    sample_rules,
)
from ._scoring import ScoreError, adjustment_factor, group_and_score, score
from ._settle import (
    CaseChange,
    HospitalInput,
    MonthLine,
    PriorMonths,
    SettleCase,
    YearLine,
    assessment_band,
    case_changes,
    case_points,
    money,
    settle_month,
    settle_year,
    settlement_totals,
    surplus_overspend,
)
from ._settle_policy import (
    AssessmentBand,
    FundPolicy,
    HistoryHospital,
    HistoryYear,
    OverspendBand,
    PointValueMethod,
    SettlementPolicy,
    SettlementPolicyError,
    SurplusBand,
    decode_settlement_policy,
    encode_settlement_policy,
    parse_settlement_policy,
    settlement_policy_hash,
)
from ._simulate import (
    HospitalLine,
    HospitalTally,
    Simulation,
    SimulationTally,
    side_point_values,
    simulate_lines,
    tally_cases,
)

__all__ = [
    "SAMPLE_RULES",
    "Adjustments",
    "AgeBand",
    "Assessment",
    "AssessmentBand",
    "BedDayPolicy",
    "BuildOptions",
    "CaseChange",
    "CaseFacts",
    "CatalogBuild",
    "CciCondition",
    "DeviationPolicy",
    "DipError",
    "Exclusion",
    "FundPolicy",
    "Group",
    "GroupResult",
    "GroupingPolicy",
    "HistoryHospital",
    "HistoryYear",
    "Hospital",
    "HospitalInput",
    "HospitalLine",
    "HospitalTally",
    "IcuBand",
    "IncompletePolicy",
    "Level",
    "MonthLine",
    "NationalEntry",
    "OverspendBand",
    "PointValue",
    "PointValueMethod",
    "Policy",
    "PreGroupPolicy",
    "PreGroupRule",
    "PrimaryPolicy",
    "PriorMonths",
    "Route",
    "RouteTarget",
    "RuleSet",
    "RuleSetError",
    "RulesBook",
    "RulesFor",
    "ScoreError",
    "ScoreResult",
    "SettleCase",
    "SettlementPolicy",
    "SettlementPolicyError",
    "SeverityTier",
    "Simulation",
    "SimulationTally",
    "SpecialReviewPolicy",
    "SurplusBand",
    "UnmatchedPolicy",
    "YearLine",
    "adjustment_factor",
    "assess",
    "assessment_band",
    "bench_group_score",
    "build_catalog",
    "case_changes",
    "case_points",
    "clearing_year",
    "decode_cases_json",
    "decode_cases_ndjson",
    "decode_ruleset",
    "decode_settlement_policy",
    "encode_ruleset",
    "encode_settlement_policy",
    "fund_point_values",
    "group",
    "group_and_score",
    "group_name",
    "initial_point_value",
    "load_rules",
    "make_case_facts",
    "make_ruleset",
    "money",
    "national_pre_group_rules",
    "national_pre_groups",
    "national_primary_care",
    "parse_catalog",
    "parse_settlement_policy",
    "read_history",
    "read_table",
    "reasons",
    "reference_cost",
    "route",
    "route_case",
    "rules_for_year",
    "rules_key",
    "sample_case_mix",
    "sample_rules",
    "score",
    "settle_month",
    "settle_year",
    "settlement_point_value",
    "settlement_policy_hash",
    "settlement_totals",
    "side_point_values",
    "simulate_lines",
    "surplus_overspend",
    "tally_cases",
    "write_catalog_csv",
]
