"""The rule set of one city for one clearing year: catalog + policy, as one msgspec document.

Everything a city decides (thresholds, formulas, coefficients, point values, adjustments) is a
field here, so that a new city or year is a data change, never a code change. The document has a
stable JSON encoding (`encode_ruleset`) so the service can store it whole, and a content hash
(`RuleSet.content_hash`) that changes whenever anything that affects a result changes.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Annotated, Literal

import msgspec

GroupKind = Literal["core", "comprehensive", "primary", "bed_day", "pre_group"]
Positive = Annotated[float, msgspec.Meta(gt=0)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Treatment = Literal["surgery", "therapeutic", "diagnostic", "conservative"]


class PreGroupRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a 先期分组 (DIP 3.0 pre-group, kind ``pre_group``) matches, besides its group's
    ``diag`` and ``operations``.

    ``national``: the national pre-group the row prices (``XQ1``…``XQ19``), '' for a city's
    own. ``operations_anywhere``: every operation slot may be anywhere in the case's list
    (不限定为主要手术操作); otherwise the first slot must hold the main operation and the
    others be among the rest. ``diag_anywhere``: the diagnosis prefix may be the main or any
    other diagnosis (不限定为主要诊断). ``age_days_below``: 天龄 known and below it.
    ``min_birth_weight`` (≥) / ``birth_weight_below`` (<): 新生儿出生体重 in grams.
    """

    national: str = ""
    operations_anywhere: bool = False
    diag_anywhere: bool = False
    age_days_below: NonNegative | None = None
    min_birth_weight: Decimal | None = None
    birth_weight_below: Decimal | None = None


class Group(msgspec.Struct, frozen=True, kw_only=True):
    """One catalog row (病种): a payment unit with its score and reference costs.

    ``diag`` is the subcategory (``K35.8``) for core/primary groups and the category (``K35``)
    for comprehensive groups; bed-day groups match any main diagnosis starting with it.
    ``operations`` lists the main operation first, then related operations; a slot may hold
    alternatives (并项) joined by ``|``. ``ref_costs`` maps hospital level code → 次均费用 at
    that level; ``ref_cost_all`` is the all-level (全市) average. ``fund_ref_costs`` /
    ``fund_ref_cost_all`` are the same per insurance fund (insutype → level → cost), for cities
    that publish 职工 and 居民 averages apart. ``level_coefficients`` overrides the policy's
    level coefficient for this group (DIP 3.0 以病种设置系数); ``primary_factor`` is a 基层病种's
    own factor (used when ``primary.coefficient = "group"``). ``pre_group``: how a 先期分组
    (kind ``pre_group``, ``diag`` '' = 所有诊断) matches, set on pre-groups only.
    """

    code: str
    kind: GroupKind
    diag: str
    score: float
    name: str = ""
    operations: tuple[str, ...] = ()
    oprn_name: str = ""
    treatment: Treatment | None = None
    ref_cost_all: Decimal | None = None
    ref_costs: dict[str, Decimal] = {}
    level_coefficients: dict[str, float] = {}
    case_count: int | None = None
    cv: float | None = None
    fund_ref_cost_all: dict[str, Decimal] = {}
    fund_ref_costs: dict[str, dict[str, Decimal]] = {}
    primary_factor: Positive | None = None
    pre_group: PreGroupRule | None = None


class Exclusion(msgspec.Struct, frozen=True, kw_only=True):
    """排除表 row: a main diagnosis that cannot be grouped, or an operation ignored in grouping."""

    code: str
    target: Literal["diagnosis", "operation"]
    name: str = ""


class Level(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One hospital level tier (医疗机构等级系数); a city may have any number of them.
    ``fund_coefficients`` (insutype → coefficient) replaces ``coefficient`` for that fund."""

    code: str
    coefficient: Positive
    name: str = ""
    fund_coefficients: dict[str, Positive] = {}


class Hospital(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A coefficient the city fixes for one hospital (not derived from its level), for every
    fund (``coefficient``) and/or per fund (``fund_coefficients``, insutype → coefficient)."""

    code: str
    coefficient: Positive | None = None
    fund_coefficients: dict[str, Positive] = {}
    name: str = ""


class GroupingPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How cases are matched to the catalog.

    ``core_operation_match``: ``main_related`` (DIP 3.0: the main operation must equal the
    group's main operation; among those, the group with the most related operations all present
    in the case wins; a group without related operations is the fallback), ``main`` (main
    operation only) or ``set`` (the sorted set of all the case's operation codes must equal the
    group's set). ``intervention_as`` says which comprehensive treatment an ``intervention``
    operation counts as (DIP 3.0 puts 介入 with 手术). ``comprehensive_by``: ``highest``
    (the highest-ranked operation of the case) or ``main`` (the main operation's class).
    """

    core_operation_match: Literal["main_related", "main", "set"] = "main_related"
    intervention_as: Treatment = "therapeutic"
    comprehensive_by: Literal["highest", "main"] = "highest"
    fallback_to_conservative: bool = True
    subcategory_length: int = 5
    category_length: int = 3


class DeviationPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """偏差病例: ratio = case total cost / (the group's reference cost × the factors named in
    ``ratio_divides_by``: ``coefficient`` K and/or ``adjustment`` A — DIP 3.0 divides by
    支付标准 × 分值调节系数).

    ``reference``: the catalog's cost at the hospital's level (``same_level``), its all-level
    cost (``all_levels``) or ``score`` × ``yuan_per_point[insutype]`` (no cost columns).
    ``high_formula``: ``times_coefficient`` → (ratio − offset + 1) × score × K;
    ``plus_coefficient`` → score × (ratio − offset + K). ``high_offset`` defaults to the high
    threshold. Above ``extreme_threshold`` (``≥`` if ``extreme_inclusive``) the case is either
    scored as a normal case (``extreme_action = "normal"``) or scored by the high formula
    provisionally and flagged for special review (``"special_review"``). ``apply_adjustment``
    multiplies deviation scores by A; ``low_apply_adjustment`` overrides it for the low band.
    """

    reference: Literal["same_level", "all_levels", "score"] = "same_level"
    low_threshold: Positive | None = 0.5
    low_inclusive: bool = False
    low_apply_coefficient: bool = False
    high_threshold: Positive | None = 2.0
    high_inclusive: bool = False
    high_formula: Literal["times_coefficient", "plus_coefficient"] = "times_coefficient"
    high_offset: float | None = None
    extreme_threshold: Positive | None = None
    extreme_action: Literal["normal", "special_review"] = "special_review"
    apply_adjustment: bool = True
    extreme_inclusive: bool = False
    low_apply_adjustment: bool | None = None
    ratio_divides_by: tuple[Literal["coefficient", "adjustment"], ...] = ()
    yuan_per_point: dict[str, Decimal] = {}


class PrimaryPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """基层病种: no level coefficient (``none``), one city-wide factor (``factor``), or the
    group's own (``group``: its per-level coefficient column, else its 基层系数 column, else
    ``factor``). ``national_list``: groups the catalog does not type explicitly become 基层病种
    when they are on the national DIP 3.0 list (``data/dip3-national-primary-care.csv``)."""

    coefficient: Literal["none", "factor", "group"] = "none"
    factor: float = 1.0
    national_list: bool = False


class PreGroupPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """先期分组. ``national``: a catalog row of kind 先期分组 that names a national pre-group
    (``XQ3``) and gives no operations of its own takes the national DIP 3.0 membership
    (``data/dip3-national-pre-groups.csv``), and a case matching a national pre-group the
    catalog does not price says so in its grouping reason. ``false``: no membership comes
    from the national list; every 先期分组 row states its own operations."""

    national: bool = True


class BedDayPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """床日病种: score per day × 实际住院天数, for stays of at least ``min_days``."""

    min_days: int = 60
    apply_coefficient: bool = False


class UnmatchedPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Cases paid at a fraction of actual cost instead of by score; None = cannot be scored.

    ``blank_group`` (空白病种): an ungrouped case scores that group's score × (cost ÷ that
    group's reference cost) × ``blank_factor``, no other factor — instead of a cost fraction.
    """

    zero_score_cost_fraction: Decimal | None = None
    ungrouped_cost_fraction: Decimal | None = None
    blank_group: str = ""
    blank_factor: Positive = 1.0


class SpecialReviewPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """特例单议 candidates: flagged, never re-scored here (an expert panel decides). DIP 3.0:
    cases above 2× the standard may apply (``min_ratio``)."""

    min_ratio: float | None = 2.0
    min_inpatient_days: int | None = None
    flag_deaths: bool = False


class AgeBand(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Lower bound inclusive, upper exclusive; days and years may be mixed (1 year = 365 days)."""

    factor: float
    name: str = ""
    min_days: int | None = None
    max_days: int | None = None
    min_years: float | None = None
    max_years: float | None = None
    groups: tuple[str, ...] = ()


class SeverityTier(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A case is in the tier if every condition given holds: any other diagnosis starts with a
    prefix or it is a discharge way listed (when either is given); it stayed at least
    ``min_days`` and at most ``max_days``; cost ≥ ``min_cost_ratio`` × the group's reference
    cost; the fees of ``fee_types`` (医疗收费项目类别 codes) are ≥ ``min_fee_share`` of the
    total; its CCI (``adjustments.cci``) lies in ``min_cci``..``max_cci``."""

    factor: float
    name: str = ""
    diag_prefixes: tuple[str, ...] = ()
    dscg_ways: tuple[str, ...] = ()
    min_days: int = 0
    groups: tuple[str, ...] = ()
    max_days: int | None = None
    min_cost_ratio: Positive | None = None
    fee_types: tuple[str, ...] = ()
    min_fee_share: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None
    min_cci: NonNegative | None = None
    max_cci: NonNegative | None = None


class CciCondition(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One Charlson comorbidity: its weight counts once if any other diagnosis starts with one
    of ``diag_prefixes``."""

    diag_prefixes: tuple[str, ...]
    weight: NonNegative
    name: str = ""


class IcuBand(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """ICU days = ceil(icu_minutes / 1440); lower bound inclusive, upper exclusive."""

    factor: float
    min_days: int
    max_days: int | None = None
    name: str = ""
    groups: tuple[str, ...] = ()


class Adjustments(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """辅助目录. ``combine = "max"`` keeps the highest matching factor (DIP 3.0); ``product``
    multiplies them. ``apply_to`` lists the group kinds adjusted. A baby of ``age_years = 0``
    without 天龄 is taken as ``age_days_if_unknown`` days old (DIP 3.0: the 29 天–1 周岁 band)."""

    combine: Literal["max", "product"] = "max"
    apply_to: tuple[GroupKind, ...] = ("core",)
    age: tuple[AgeBand, ...] = ()
    severity: tuple[SeverityTier, ...] = ()
    icu: tuple[IcuBand, ...] = ()
    cci: tuple[CciCondition, ...] = ()
    age_days_if_unknown: NonNegative = 29


class IncompletePolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """未完整治疗 stays (转院, 非医嘱离院, death within a few days, or flagged by the source):
    scored by their own rule, whatever the cost band. A stay is incomplete when its 离院方式
    is in ``dscg_ways``, or it died (``5``) after at most ``death_within_days``, or
    ``case_flag`` and the case says ``incomplete_stay``. ``action``: ``ratio`` → score × K ×
    min(ratio, ``ratio_cap``); ``cost_fraction`` → paid ``cost_fraction`` × cost."""

    dscg_ways: tuple[str, ...] = ()
    death_within_days: NonNegative | None = None
    case_flag: bool = False
    action: Literal["ratio", "cost_fraction"] = "ratio"
    ratio_cap: Positive = 1.0
    cost_fraction: Decimal | None = None


class Policy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The TOML policy file, minus the catalog."""

    city: str
    clearing_year: int
    version: str
    levels: tuple[Level, ...]
    point_values: dict[str, Decimal]
    hospitals: tuple[Hospital, ...] = ()
    city_name: str = ""
    catalog_version: str = ""
    score_decimals: Annotated[int, msgspec.Meta(ge=0, le=8)] = 4
    grouping: GroupingPolicy = GroupingPolicy()
    deviation: DeviationPolicy = DeviationPolicy()
    primary: PrimaryPolicy = PrimaryPolicy()
    bed_day: BedDayPolicy = BedDayPolicy()
    unmatched: UnmatchedPolicy = UnmatchedPolicy()
    special_review: SpecialReviewPolicy = SpecialReviewPolicy()
    adjustments: Adjustments = Adjustments()
    incomplete: IncompletePolicy = IncompletePolicy()
    pre_groups: PreGroupPolicy = PreGroupPolicy()


class RuleSet(msgspec.Struct, dict=True, kw_only=True):
    """One city + one clearing year + one version: the policy and the catalog.

    Not frozen only so that the lookup index can be cached on the instance (`_index.index_of`);
    treat it as immutable.
    """

    policy: Policy
    groups: tuple[Group, ...]
    exclusions: tuple[Exclusion, ...] = ()

    @property
    def city(self) -> str:
        return self.policy.city

    @property
    def clearing_year(self) -> int:
        return self.policy.clearing_year

    @property
    def version(self) -> str:
        return self.policy.version

    @property
    def catalog_version(self) -> str:
        return self.policy.catalog_version

    @property
    def content_hash(self) -> str:
        """SHA-256 of the canonical encoding: any change of rules changes it."""
        cached: str | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hashlib.sha256(encode_ruleset(self)).hexdigest()
            self.__dict__["_hash"] = cached
        return cached

    @property
    def version_id(self) -> str:
        """What results record: ``city/year/version@hash12``."""
        return f"{self.city}/{self.clearing_year}/{self.version}@{self.content_hash[:12]}"


_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(RuleSet)

# Fields added after the first stored rule sets: left out of the canonical encoding while at
# their default, so a rules file that does not use them keeps its bytes and its content hash.
_ADDED: dict[type, frozenset[str]] = {
    Group: frozenset({"fund_ref_cost_all", "fund_ref_costs", "primary_factor", "pre_group"}),
    Level: frozenset({"fund_coefficients"}),
    DeviationPolicy: frozenset(
        {"extreme_inclusive", "low_apply_adjustment", "ratio_divides_by", "yuan_per_point"}
    ),
    PrimaryPolicy: frozenset({"national_list"}),
    UnmatchedPolicy: frozenset({"blank_group", "blank_factor"}),
    SeverityTier: frozenset(
        {"max_days", "min_cost_ratio", "fee_types", "min_fee_share", "min_cci", "max_cci"}
    ),
    Adjustments: frozenset({"cci", "age_days_if_unknown"}),
    Policy: frozenset({"hospitals", "incomplete", "pre_groups"}),
}


def _canonical(obj: object) -> object:
    """Builtins in the encoding's order: struct fields as declared, dict keys sorted."""
    if isinstance(obj, msgspec.Struct):
        added = _ADDED.get(type(obj), frozenset())
        out: dict[str, object] = {}
        for f in msgspec.structs.fields(obj):
            value = getattr(obj, f.name)
            if f.name in added:
                default = f.default if f.default is not msgspec.NODEFAULT else f.default_factory()
                if value == default:
                    continue
            out[f.encode_name] = _canonical(value)
        return out
    if isinstance(obj, dict):
        return {k: _canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, (tuple, list)):
        return [_canonical(v) for v in obj]
    return obj


def encode_ruleset(ruleset: RuleSet) -> bytes:
    """Canonical JSON (sorted keys, decimals as strings): equal rules give equal bytes."""
    return _encoder.encode(_canonical(ruleset))


def decode_ruleset(data: bytes) -> RuleSet:
    return _decoder.decode(data)
