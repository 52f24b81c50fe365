"""The DIP facts and results as they travel and are stored: pure msgspec Structs.

The DIP core (`workers.dip`) computes them and re-exports them; the stage messages
(`contracts.messages.GroupedCase`, `ScoredCase`) carry them on the topics and the scored sink
stores them. Declared here, once, so the wire shape is part of the contract; no DIP logic.

`CaseFacts` is deliberately small and independent of the canonical settlement record: the
service maps the record into it, so the DIP core keeps no coupling to the national field tables.

Fields of `CaseFacts`:

- ``case_key``: ``fixmedins_code`` + ``setl_id``, carried through to every result.
- ``fixmedins_code``: the hospital (定点医疗机构) code.
- ``hospital_level``: the hospital's coefficient tier code in the treating city's rules
  (e.g. ``"3A"``); a code the rules do not know cannot be scored.
- ``treating_admdvs`` / ``insured_admdvs``: 6-digit GB/T 2260 region codes (就医地 / 参保地).
- ``insutype``: national 险种类型 code: ``"310"`` 职工基本医疗保险, ``"390"`` 城乡居民基本医疗保险.
- ``main_diag_code``: 主要诊断 (ICD-10 医保版 2.0, e.g. ``K35.800x002``).
- ``other_diag_codes``: 其他诊断, used by the severity adjustment.
- ``operations``: ``(oprn_oprt_code, oprn_class)`` pairs, the main operation first;
  ``oprn_class`` is one of ``surgery``, ``intervention``, ``therapeutic``, ``diagnostic``.
- ``total_cost``: 医疗总费用 (Decimal yuan); ``fund_pay``: 统筹基金支付, if known.
- ``age_years``; ``age_days``: 天龄 for babies under one year (None otherwise).
- ``birth_weight``: 新生儿出生体重 in grams (4101A ``setlinfo.nwb_bir_wt``), None when not
  given; what the DIP 3.0 低出生体重儿 pre-groups (先期分组 XQ16–19) read.
- ``icu_minutes``: total ICU time; ``act_ipt_days``: 实际住院天数.
- ``discharge_date``: ISO date ``YYYY-MM-DD``; ``dscg_way``: 离院方式 (``"5"`` = 死亡).
- ``fees``: the fee breakdown by national 医疗收费项目类别 (``med_chrgitm_type``: ``"05"``
  治疗费, ``"06"`` 手术费, ``"09"`` 西药费, …) → yuan; what cost-share severity tiers read.
- ``incomplete_stay``: the source says the stay was 未完整治疗 (a city's ``[incomplete]``
  rule may honour it besides 离院方式 and the stay).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

__all__ = [
    "CaseFacts",
    "Deviation",
    "GroupResult",
    "GroupStatus",
    "Role",
    "Scope",
    "ScoreResult",
]

GroupStatus = Literal[
    "pre_group", "core", "primary", "comprehensive", "bed_day", "excluded", "ungrouped"
]
Deviation = Literal[
    "normal", "high", "low", "extreme", "cost_fraction", "excluded", "blank", "incomplete"
]
Scope = Literal["same_city", "cross_city", "out_of_province"]
"""Where the case was treated relative to where the patient is insured."""
Role = Literal["treating", "insured", "out_of_province"]
"""Which recipient a scored copy is for: the treating city, the insured city, or the
out-of-province (异地就医) channel."""


class CaseFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What grouping and scoring need from one discharged inpatient case."""

    case_key: str
    fixmedins_code: str
    hospital_level: str
    treating_admdvs: str
    insured_admdvs: str
    insutype: str
    main_diag_code: str
    total_cost: Decimal
    other_diag_codes: tuple[str, ...] = ()
    operations: tuple[tuple[str, str], ...] = ()
    fund_pay: Decimal | None = None
    age_years: int | None = None
    age_days: int | None = None
    icu_minutes: int = 0
    act_ipt_days: int = 0
    discharge_date: str = ""
    dscg_way: str = ""
    fees: dict[str, Decimal] = {}
    incomplete_stay: bool = False
    birth_weight: Decimal | None = None


class GroupResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Which group a case fell into, under which catalog and rules (provenance travels along)."""

    case_key: str
    status: GroupStatus
    group_code: str
    group_score: float
    treatment: str
    catalog_version: str
    ruleset_version: str
    reason: str = ""


class ScoreResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The score of one case and the payment it implies, with the rules that produced it."""

    case_key: str
    status: GroupStatus
    group_code: str
    deviation: Deviation
    ratio: float | None
    group_score: float
    level_coefficient: float
    adjustment: float
    case_score: float
    point_value: Decimal | None
    estimated_payment: Decimal | None
    special_review: bool
    insutype: str
    ruleset_version: str
    catalog_version: str
