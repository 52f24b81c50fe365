"""The case input of grouping and scoring.

`CaseFacts` is deliberately small and independent of the canonical settlement record (owned by
the contracts engineer): the service maps the record into it, so the DIP core keeps no coupling
to the national field tables.

Fields:

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
- ``icu_minutes``: total ICU time; ``act_ipt_days``: 实际住院天数.
- ``discharge_date``: ISO date ``YYYY-MM-DD``; ``dscg_way``: 离院方式 (``"5"`` = 死亡).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import msgspec

OPRN_CLASSES: Final = frozenset({"surgery", "intervention", "therapeutic", "diagnostic"})


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


def decode_cases_json(data: bytes) -> list[CaseFacts]:
    """Decode one JSON case or a JSON list of cases."""
    doc = msgspec.json.decode(data, type=CaseFacts | list[CaseFacts])
    return doc if isinstance(doc, list) else [doc]


_ndjson_decoder: Final = msgspec.json.Decoder(CaseFacts)


def decode_cases_ndjson(data: bytes) -> list[CaseFacts]:
    """Decode newline-delimited JSON cases; blank lines are skipped."""
    return [_ndjson_decoder.decode(line) for line in data.splitlines() if line.strip()]
