"""The messages of the DIP stages: `dip.case.grouped.v1` and `dip.case.scored.<admdvs>.v1`.

Both carry the provenance envelope of the accepted upload (receipt, case key, revision,
regions) plus what their stage added, with the rule-set version that produced it. A case that
cannot be grouped or scored is never dropped: it travels on marked `unscored`, with the reason
in the one error shape, so `dipgw rescore` can pick it up when the city's rules arrive.
No personal data: the case key identifies the case; names and ID numbers are never decoded.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

from contracts import Problem
from contracts.messages import CaseProvenance
from workers.dip import CaseFacts, GroupResult, ScoreResult

__all__ = ["Problem"]  # re-exported: the shape of `unscored` (reasons: workers.dip.reasons)


class GroupedCase(CaseProvenance, kw_only=True, forbid_unknown_fields=False):
    treating_admdvs: str
    insured_admdvs: str
    contract_version: str
    clearing_year: int | None
    grouped_at: datetime
    facts: CaseFacts | None = None
    grouping: GroupResult | None = None
    ruleset_id: int | None = None
    ruleset_version: str | None = None
    catalog_version: str | None = None
    unscored: Problem | None = None


Role = Literal["treating", "insured", "out_of_province"]
Scope = Literal["same_city", "cross_city", "out_of_province"]


class ScoredCase(CaseProvenance, kw_only=True, forbid_unknown_fields=False):
    """One scored case for one recipient: the treating city, the insured city or the
    out-of-province channel (`role`). Money is Decimal, as text on the wire."""

    scored_at: datetime
    role: Role
    scope: Scope
    treating_admdvs: str
    insured_admdvs: str
    treating_city: str
    insured_city: str
    clearing_year: int | None
    status: Literal["scored", "unscored"]
    hospital_level: str | None = None
    insutype: str | None = None
    total_cost: Decimal | None = None
    main_diag_code: str | None = None
    operations: list[str] = msgspec.field(default_factory=list)
    group_status: str | None = None
    group_code: str | None = None
    treatment: str | None = None
    deviation: str | None = None
    ratio: float | None = None
    group_score: float | None = None
    level_coefficient: float | None = None
    adjustment: float | None = None
    case_score: float | None = None
    point_value: Decimal | None = None
    estimated_payment: Decimal | None = None
    special_review: bool = False
    ruleset_id: int | None = None
    ruleset_version: str | None = None
    catalog_version: str | None = None
    unscored: Problem | None = None
    facts: CaseFacts | None = None
    """Only on the internal `scored_all` copy: what `dipgw rescore` re-scores from."""


ENCODER = msgspec.json.Encoder(decimal_format="string")
GROUPED_DECODER = msgspec.json.Decoder(GroupedCase)
SCORED_DECODER = msgspec.json.Decoder(ScoredCase)


def scored_fields(score: ScoreResult) -> dict[str, object]:
    """The ScoreResult's fields a ScoredCase carries."""
    return {
        "group_status": score.status,
        "group_code": score.group_code,
        "deviation": score.deviation,
        "ratio": score.ratio,
        "group_score": score.group_score,
        "level_coefficient": score.level_coefficient,
        "adjustment": score.adjustment,
        "case_score": score.case_score,
        "point_value": score.point_value,
        "estimated_payment": score.estimated_payment,
        "special_review": score.special_review,
        "ruleset_version": score.ruleset_version,
        "catalog_version": score.catalog_version,
    }
