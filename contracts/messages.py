"""The messages dipgw writes to Kafka: msgspec Structs, JSON on the wire, one type per topic.

Every case message carries its provenance envelope (receipt, case key, revision, regions,
contract version), so a consumer never needs to look anything up to know where a record came
from. `TOPIC_TYPES` maps each topic (by its `TopicSettings` field name) to its message type;
each topic's consumer decodes with that type's decoder, and every producer encodes with the one
`ENCODER` (Decimal as text).

The DIP stages (`dip.case.grouped.v1`, `dip.case.scored.<admdvs>.v1`) add what their stage
computed, with the rule-set version that produced it. A case that cannot be grouped or scored
is never dropped: it travels on marked `unscored`, with the reason in the one error shape, so
`dipgw rescore` can pick it up when the city's rules arrive. No personal data: the case key
identifies the case; names and ID numbers are never decoded.

One clock, one way of writing numbers, in the Structs themselves (`__post_init__`, which runs
on construction and on decoding, so a producer or a stored message that forgets cannot leak):

- every moment is aware and in the display zone (China Standard Time, +08:00, unless the
  operator set `display.utc_offset`; written with its offset), whatever clock or database
  (timestamptz reads come back in UTC) it came from; a moment without an offset is refused;
- money (`total_cost`, `estimated_payment`) is Decimal with exactly two decimals, as text on the
  wire (`"12000.00"`); a point value (yuan per point, a rate) has at least two and keeps the
  city's own precision (`"12.35"`, `"13.4567"`);
- ratios and coefficients (`ratio`, `level_coefficient`, `adjustment`) are rounded half-even to
  `RATIO_DIGITS` (4) decimals; `group_score` is the catalog's and `case_score` is already
  rounded to the city's `score_decimals` by the DIP core, so both travel as computed.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

import msgspec

from contracts._errors import Problem
from contracts._timefmt import in_display_zone
from contracts.dip import CaseFacts, GroupResult, Role, Scope

CONTRACT_VERSION = "4101A-2023.08+dipgw.1"


def case_key(fixmedins_code: str, setl_id: str) -> str:
    """The Kafka key of every message about one case: all revisions land in one partition."""
    return f"{fixmedins_code}:{setl_id}"


def status_revision_sha256(base_receipt_id: str, stas_type: str) -> bytes:
    """The content identity (`receipts.content_sha256`) of a status revision (national 4102):
    the revision it changes and the new status, not the document (re-submitting gives the
    first revision's content back, which would be a duplicate). The quality worker tells a
    status change from a list received by it; the gateway's 4102 writes it."""
    return hashlib.sha256(f"dipgw-4102\n{base_receipt_id}\n{stas_type}".encode()).digest()


RATIO_DIGITS = 4
"""Decimals of ratios and coefficients on the wire (`ratio`, `level_coefficient`, `adjustment`)."""
_CENT = Decimal("0.01")


def money(amount: Decimal | None) -> Decimal | None:
    """An amount of yuan with exactly two decimals (half up), e.g. `Decimal("12000.00")`; one
    that cannot be written so (not finite, beyond Decimal's 28 digits) is refused."""
    if amount is None:
        return None
    try:
        if amount.is_finite():
            return amount.quantize(_CENT, ROUND_HALF_UP)
    except InvalidOperation:
        pass
    raise ValueError("an amount that cannot be written with two decimals")


def rate(value: Decimal | None) -> Decimal | None:
    """Yuan per point: at least two decimals, more kept when the city states more."""
    if value is None or value.as_tuple().exponent <= -2:  # type: ignore[operator]
        return value
    return value.quantize(_CENT)


def ratio(value: float | None) -> float | None:
    """A ratio or coefficient rounded to `RATIO_DIGITS` decimals."""
    return None if value is None else round(value, RATIO_DIGITS)


class CaseProvenance(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Where every stage's message about a case comes from: its receipt and revision."""

    receipt_id: str
    case_key: str
    fixmedins_code: str
    setl_id: str
    revision: int
    received_at: datetime

    def __post_init__(self) -> None:
        self.received_at = in_display_zone(self.received_at)


class AcceptedSettlement(CaseProvenance, kw_only=True, forbid_unknown_fields=False):
    mdtrtarea_admvs: str
    insuplc_admdvs: str | None = None
    contract_version: str = CONTRACT_VERSION
    warnings: list[dict[str, str]] = msgspec.field(default_factory=list)
    document: msgspec.Raw = msgspec.Raw(b"{}")
    """The list as the contract decoded and normalised it: `contracts.Envelope` encoded as
    JSON (national field names; times, amounts and codes in their normalised form), not the
    hospital's bytes. Resending the same content gives the same document."""


class RejectedSettlement(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """`dip.settlement.rejected.v1`: a list refused at the door, for quality and ops.

    `errors` are every rejecting finding (the one error shape); `document` is the list as
    `contracts.redact_document` shows it: only the contract's fields, personal ones masked,
    unknown keys dropped and named under `_dropped`; `null` when the upload was not JSON (or
    not a JSON object or array)."""

    fixmedins_code: str
    case_key: str | None = None
    position: str = "$"
    received_at: datetime
    errors: list[Problem] = msgspec.field(default_factory=list)
    document: msgspec.Raw = msgspec.Raw(b"null")

    def __post_init__(self) -> None:
        self.received_at = in_display_zone(self.received_at)


class GroupedCase(CaseProvenance, kw_only=True, forbid_unknown_fields=False):
    """`dip.case.grouped.v1`: an accepted case mapped to its DIP facts and grouped under the
    treating city's rules (or marked `unscored` with why)."""

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

    def __post_init__(self) -> None:
        super().__post_init__()
        self.grouped_at = in_display_zone(self.grouped_at)


class ScoredCase(CaseProvenance, kw_only=True, forbid_unknown_fields=False):
    """`dip.case.scored.<admdvs>.v1` and `dip.case.scored.out_of_province.v1`: one scored case
    for one recipient: the treating city, the insured city or the out-of-province channel
    (`role`). Money is Decimal, as text on the wire (two decimals). `group_name` is the
    group's 病种名称 in the treating city's catalog (diagnosis name, then the operation's after
    ` / ` when the group has one); `treatment` is null when the group has none. No internal
    field: the case facts travel only on the internal copy (`InternalScoredCase`).

    `status` `unscored` says why in `unscored` (`rule`, `message`). `DIP_WITHDRAWN`: the
    hospital withdrew the list (national 4102, `stas_type` 0); a case received before under the
    same `case_key` no longer counts (no group, score or payment) until a later `revision`
    re-submits it and is scored again. The latest `revision` of a `case_key` is the case."""

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
    group_name: str | None = None
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

    def __post_init__(self) -> None:
        super().__post_init__()
        self.scored_at = in_display_zone(self.scored_at)
        self.total_cost = money(self.total_cost)
        self.estimated_payment = money(self.estimated_payment)
        self.point_value = rate(self.point_value)
        self.ratio = ratio(self.ratio)
        self.level_coefficient = ratio(self.level_coefficient)
        self.adjustment = ratio(self.adjustment)


class InternalScoredCase(ScoredCase, kw_only=True, forbid_unknown_fields=False):
    """`dip.case.scored.all.v1`, internal (the scored sink stores it): the treating-role
    scored case with the case facts `dipgw rescore` re-scores from."""

    facts: CaseFacts | None = None

    def public(self) -> ScoredCase:
        """The same case as the cities receive it: without the facts."""
        return ScoredCase(**{name: getattr(self, name) for name in ScoredCase.__struct_fields__})


# --- reading a carried document --------------------------------------------------------------
# The workers read a few fields of `AcceptedSettlement.document` / `RejectedSettlement.document`
# through these views rather than the whole `contracts.Envelope`: a view decodes only what it
# names (the grouping worker's hot path), takes loose types (a number sent as text, documents
# written before normalisation), and never decodes a personal field. Declared once, here.

Loose = str | int | float | None


class SettlementView(msgspec.Struct, kw_only=True):
    """`input.setlinfo`: what DIP grouping and scoring read."""

    setl_id: Loose = None
    insuplc: Loose = None
    insutype: Loose = None
    medfee_sumamt: Loose = None
    hifp_pay: Loose = None
    fund_pay_sumamt: Loose = None
    age: Loose = None
    nwb_age: Loose = None
    act_ipt_days: Loose = None
    adm_time: Loose = None
    dscg_time: Loose = None
    setl_end_date: Loose = None
    dscg_way: Loose = None
    stas_type: Loose = None
    """0 withdrawn (national 4102), 1 submitted; absent counts as submitted."""


class DiagnosisView(msgspec.Struct, kw_only=True):
    diag_code: Loose = None
    maindiag_flag: Loose = None


class OperationView(msgspec.Struct, kw_only=True):
    oprn_oprt_code: Loose = None
    oprn_oprt_type: Loose = None


class IcuView(msgspec.Struct, kw_only=True):
    scs_cutd_sum_dura: Loose = None


class InputView(msgspec.Struct, kw_only=True):
    setlinfo: SettlementView = msgspec.field(default_factory=SettlementView)
    diseinfo: list[DiagnosisView] | None = None
    oprninfo: list[OperationView] | None = None
    icuinfo: list[IcuView] | None = None


class DocumentView(msgspec.Struct, kw_only=True):
    """An accepted document as DIP reads it (`workers.casefacts_map`)."""

    fixmedins_code: Loose = None
    mdtrtarea_admvs: Loose = None
    insuplc_admdvs: Loose = None
    input: InputView = msgspec.field(default_factory=InputView)


class _HeadSettlement(msgspec.Struct):
    dscg_time: str | None = None


class _HeadInput(msgspec.Struct):
    setlinfo: _HeadSettlement | None = None


class DocumentHead(msgspec.Struct):
    """Where and when, read from any carried document, a rejected one included (the quality
    worker): so few fields that a list refused for its types elsewhere still shows them."""

    mdtrtarea_admvs: str | None = None
    input: _HeadInput | None = None

    @property
    def dscg_time(self) -> str | None:
        setl = self.input.setlinfo if self.input is not None else None
        return setl.dscg_time if setl is not None else None


AlertKind = Literal["reject_rate", "timeliness", "silent", "consumer_lag"]


class QualityAlert(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """`dip.quality.alerts.v1`: one ingestion-quality threshold crossed (the quality worker's
    evaluator), as stored in `quality_alerts`. `city` / `fixmedins_code` are null for an alert
    about the pipeline (consumer lag)."""

    alert_key: str
    kind: AlertKind
    city: str | None
    fixmedins_code: str | None
    value: float
    threshold: float
    message: str
    message_en: str
    raised_at: datetime

    def __post_init__(self) -> None:
        self.raised_at = in_display_zone(self.raised_at)


ENCODER = msgspec.json.Encoder(decimal_format="string")
"""The one JSON encoder of every topic (and of the gateway's JSON answers): Decimal as text."""
ACCEPTED_DECODER = msgspec.json.Decoder(AcceptedSettlement)
REJECTED_DECODER = msgspec.json.Decoder(RejectedSettlement)
GROUPED_DECODER = msgspec.json.Decoder(GroupedCase)
SCORED_DECODER = msgspec.json.Decoder(ScoredCase)
SCORED_ALL_DECODER = msgspec.json.Decoder(InternalScoredCase)
QUALITY_ALERT_DECODER = msgspec.json.Decoder(QualityAlert)
DOCUMENT_VIEW_DECODER = msgspec.json.Decoder(DocumentView)
DOCUMENT_HEAD_DECODER = msgspec.json.Decoder(DocumentHead)

TOPIC_TYPES: dict[str, type[msgspec.Struct]] = {
    "accepted": AcceptedSettlement,
    "rejected": RejectedSettlement,
    "grouped": GroupedCase,
    "scored": ScoredCase,
    "scored_all": InternalScoredCase,
    "out_of_province": ScoredCase,
    "quality_alerts": QualityAlert,
}
"""Each topic's message type, keyed by its `adapters.runtime.settings.TopicSettings` field."""
