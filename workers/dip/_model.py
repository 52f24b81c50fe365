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

GroupKind = Literal["core", "comprehensive", "primary", "bed_day"]
Positive = Annotated[float, msgspec.Meta(gt=0)]
Treatment = Literal["surgery", "therapeutic", "diagnostic", "conservative"]


class Group(msgspec.Struct, frozen=True, kw_only=True):
    """One catalog row (病种): a payment unit with its score and reference costs.

    ``diag`` is the subcategory (``K35.8``) for core/primary groups and the category (``K35``)
    for comprehensive groups; bed-day groups match any main diagnosis starting with it.
    ``operations`` lists the main operation first, then related operations; a slot may hold
    alternatives (并项) joined by ``|``. ``ref_costs`` maps hospital level code → 次均费用 at
    that level; ``ref_cost_all`` is the all-level (全市) average. ``level_coefficients``
    overrides the policy's level coefficient for this group (DIP 3.0 以病种设置系数).
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


class Exclusion(msgspec.Struct, frozen=True, kw_only=True):
    """排除表 row: a main diagnosis that cannot be grouped, or an operation ignored in grouping."""

    code: str
    target: Literal["diagnosis", "operation"]
    name: str = ""


class Level(msgspec.Struct, frozen=True, kw_only=True):
    """One hospital level tier (医疗机构等级系数); a city may have any number of them."""

    code: str
    coefficient: Positive
    name: str = ""


class GroupingPolicy(msgspec.Struct, frozen=True, kw_only=True):
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


class DeviationPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """偏差病例: ratio = case total cost / the group's reference cost.

    ``high_formula``: ``times_coefficient`` → (ratio − offset + 1) × score × K;
    ``plus_coefficient`` → score × (ratio − offset + K). ``high_offset`` defaults to the high
    threshold. Above ``extreme_threshold`` the case is either scored as a normal case
    (``extreme_action = "normal"``) or scored by the high formula provisionally and flagged for
    special review (``"special_review"``).
    """

    reference: Literal["same_level", "all_levels"] = "same_level"
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


class PrimaryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """基层病种: no level coefficient (``none``) or one city-wide factor (``factor``)."""

    coefficient: Literal["none", "factor"] = "none"
    factor: float = 1.0


class BedDayPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """床日病种: score per day × 实际住院天数, for stays of at least ``min_days``."""

    min_days: int = 60
    apply_coefficient: bool = False


class UnmatchedPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Cases paid at a fraction of actual cost instead of by score; None = cannot be scored."""

    zero_score_cost_fraction: Decimal | None = None
    ungrouped_cost_fraction: Decimal | None = None


class SpecialReviewPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """特例单议 candidates: flagged, never re-scored here (an expert panel decides)."""

    min_ratio: float | None = 3.0
    min_inpatient_days: int | None = None
    flag_deaths: bool = False


class AgeBand(msgspec.Struct, frozen=True, kw_only=True):
    """Lower bound inclusive, upper exclusive; days and years may be mixed (1 year = 365 days)."""

    factor: float
    name: str = ""
    min_days: int | None = None
    max_days: int | None = None
    min_years: float | None = None
    max_years: float | None = None
    groups: tuple[str, ...] = ()


class SeverityTier(msgspec.Struct, frozen=True, kw_only=True):
    """A case is in the tier if any other diagnosis starts with a prefix (or it is a discharge
    way listed) and it stayed at least ``min_days``."""

    factor: float
    name: str = ""
    diag_prefixes: tuple[str, ...] = ()
    dscg_ways: tuple[str, ...] = ()
    min_days: int = 0
    groups: tuple[str, ...] = ()


class IcuBand(msgspec.Struct, frozen=True, kw_only=True):
    """ICU days = ceil(icu_minutes / 1440); lower bound inclusive, upper exclusive."""

    factor: float
    min_days: int
    max_days: int | None = None
    name: str = ""
    groups: tuple[str, ...] = ()


class Adjustments(msgspec.Struct, frozen=True, kw_only=True):
    """辅助目录. ``combine = "max"`` keeps the highest matching factor (DIP 3.0); ``product``
    multiplies them. ``apply_to`` lists the group kinds adjusted."""

    combine: Literal["max", "product"] = "max"
    apply_to: tuple[GroupKind, ...] = ("core",)
    age: tuple[AgeBand, ...] = ()
    severity: tuple[SeverityTier, ...] = ()
    icu: tuple[IcuBand, ...] = ()


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """The TOML policy file, minus the catalog."""

    city: str
    clearing_year: int
    version: str
    levels: tuple[Level, ...]
    point_values: dict[str, Decimal]
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


_encoder = msgspec.json.Encoder(order="deterministic", decimal_format="string")
_decoder = msgspec.json.Decoder(RuleSet)


def encode_ruleset(ruleset: RuleSet) -> bytes:
    """Canonical JSON (sorted keys, decimals as strings): equal rules give equal bytes."""
    return _encoder.encode(ruleset)


def decode_ruleset(data: bytes) -> RuleSet:
    return _decoder.decode(data)
