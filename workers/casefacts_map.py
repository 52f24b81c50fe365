"""From an accepted upload document (national 4101/4101A envelope JSON) to `CaseFacts`.

The document is the gateway's normalised `contracts.Envelope` JSON
(`contracts.messages.AcceptedSettlement.document`), read through
`contracts.messages.DocumentView`: just the fields DIP needs, with loose types (a number as
JSON text, a national `YYYY-MM-DD HH:MM:SS` time), so that documents written before
normalisation still map and the grouping worker does not decode the whole list.
The mapping, field by field:

- hospital level: the hospital registry (`hospitals.level`), looked up by the caller;
- treating / insured region: envelope `mdtrtarea_admvs` / `insuplc_admdvs` (else
  `setlinfo.insuplc`, else the treating region);
- insutype: `setlinfo.insutype`; total cost: `setlinfo.medfee_sumamt`; fund pay:
  `setlinfo.hifp_pay`, else `fund_pay_sumamt`;
- main diagnosis: the `diseinfo` entry with `maindiag_flag = 1` (else the first); a
  dagger/asterisk pair keeps its dagger half; the others are other diagnoses;
- operations: `oprninfo` with `oprn_oprt_type = 1` (主要手术及操作) first, then the others in
  upload order; each one's `oprn_class` is NHSA's class from the bundled code tables
  (`contracts.CodeTables`), and for a code not in them or whose class they do not publish
  (the bundled 2.0 table knows it for 212 codes; an imported NHSA release with its 类别
  column for all), `surgery` for
  the main operation and `diagnostic` for the others — a conservative guess the city's
  exclusion list and catalog correct;
- age: `setlinfo.age` (years), `nwb_age` (days, babies under one year); ICU minutes: the sum
  of `icuinfo.scs_cutd_sum_dura` (`天/小时/分钟`); stay: `act_ipt_days`, or for 4101A (which
  leaves it out) the days between `adm_time` and `dscg_time` (at least 1);
- birth weight: `setlinfo.nwb_bir_wt` (新生儿出生体重, grams), for the DIP 3.0 低出生体重儿
  pre-groups (先期分组 XQ16–19); absent, unreadable or outside 0–9999.99 g → None (the case
  then misses those pre-groups). `mul_nwb_bir_wt` (多胞胎, several weights in one field) is
  not read: a newborn's own list carries its weight in `nwb_bir_wt`, and the pre-groups
  also need P07 among the diagnoses and 天龄 under 29 days, which a mother's list has not;
- discharge date: `dscg_time` (else `setl_end_date`), which also picks the clearing year;
- fee breakdown: `iteminfo` (the national 医疗收费项目 list, `med_chrgitm` coded by
  `med_chrgitm_type`: 05 治疗费, 06 手术费, 09 西药费, …) summed by category from `amt`, for
  the cost-share severity tiers; a list without it has no breakdown (an item without a code
  or a readable amount is left out);
- status: `setlinfo.stas_type` 0 (withdrawn by 4102) is not a fact of the case but whether it
  counts at all: read by `withdrawn`, the case is then marked `DIP_WITHDRAWN`, not scored;
- incomplete stay: 4101A has no 未完整治疗 field, so `incomplete_stay` stays false and a city's
  `[incomplete]` rule works from 离院方式 (`dscg_way`) and the stay.

Personal identity fields are not decoded at all.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from typing import Any

import msgspec

from adapters.runtime.errors import DipgwError
from contracts.messages import (
    DOCUMENT_VIEW_DECODER,
    DocumentView,
    InputView,
    Loose,
    SettlementView,
)
from workers.dip import CaseFacts

# 10 billion yuan: beyond any stay; keeps every derived amount inside numeric(16,2).
_MAX_COST = Decimal(10) ** 10
# nwb_bir_wt is decimal(6,2) grams: anything else is not a weight (the validator says so).
_MAX_WEIGHT = Decimal("9999.99")


class MappingError(DipgwError, ValueError):
    """The document lacks what grouping needs; `field` names it (error-shape path)."""

    def __init__(self, field: str, message: str, message_en: str) -> None:
        super().__init__(message_en)
        self.field, self.message, self.message_en = field, message, message_en


class _ItemView(msgspec.Struct, kw_only=True):
    med_chrgitm: Loose = None
    amt: Loose = None


class _SettlementWithWeight(SettlementView, kw_only=True):
    nwb_bir_wt: Loose = None


class _InputWithItems(InputView, kw_only=True):
    setlinfo: _SettlementWithWeight = msgspec.field(default_factory=_SettlementWithWeight)
    iteminfo: list[_ItemView] | None = None


class _DocumentWithItems(DocumentView, kw_only=True):
    """`DocumentView` plus the fee items (cost-share tiers) and the newborn's birth weight
    (先期分组): one decode for everything."""

    input: _InputWithItems = msgspec.field(default_factory=_InputWithItems)


ParsedDocument = _DocumentWithItems
"""A document decoded once (`parse`) for both `withdrawn` and `case_facts`."""
_DECODER = msgspec.json.Decoder(_DocumentWithItems)


def parse(document: bytes) -> ParsedDocument:
    """Decode a carried document for mapping; MappingError when it is no document."""
    try:
        return _DECODER.decode(document)
    except msgspec.DecodeError as exc:
        raise MappingError(
            "$", f"结算清单无法解析：{exc}", f"document not decodable: {exc}"
        ) from None


def _text(value: Loose) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _decimal(value: Loose) -> Decimal | None:
    text = _text(value)
    if not text:
        return None
    try:
        found = Decimal(text)
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


def _int(value: Loose) -> int | None:
    found = _decimal(value)
    # Bounded first: int() of a huge exponent would build an enormous number.
    return None if found is None or abs(found) > 1_000_000 else int(found)


def _minutes(text: str) -> int:
    """`天/小时/分钟` → minutes; anything malformed counts 0 (the validator has warned)."""
    parts = text.split("/")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        return 0
    days, hours, minutes = (int(p) for p in parts)
    return (days * 24 + hours) * 60 + minutes


# Per-code answers are remembered, bounded: codes come from hospitals' lists (and dates from
# their discharges), so an unbounded memo would grow with whatever a feed sends.
_CODE_MEMO = 65_536


@cache
def _code_tables() -> Any:
    try:
        from contracts import CodeTables
    except ImportError:  # pragma: no cover - contracts is part of the repository
        return None
    return CodeTables.load_bundled()


@lru_cache(maxsize=_CODE_MEMO)
def oprn_class(code: str, main: bool) -> str:
    """NHSA's class of an operation code; the documented guess when the tables lack it."""
    tables = _code_tables()
    found = tables.operation(code) if tables is not None else None
    if found is not None and found.oprn_class is not None:  # None: not published
        return str(found.oprn_class)
    return "surgery" if main else "diagnostic"


def _diag(code: str, day: str) -> str:
    # `A01.001+K77.0*`: the dagger (aetiology) half is the one that groups.
    return _current("diagnosis", code.split("+", 1)[0].rstrip("*†").strip(), day)


@lru_cache(maxsize=_CODE_MEMO)
def _current(kind: str, code: str, day: str) -> str:
    """The 2.0 code a legacy code maps to (accepted with DIAG_LEGACY / OPRN_LEGACY), since a
    city's catalog is written in 2.0 codes; any other code as it is."""
    tables = _code_tables()
    if tables is None:
        return code
    try:
        on = date.fromisoformat(day) if day else None
    except ValueError:
        on = None
    if kind == "diagnosis":
        found = tables.legacy_diagnosis(code, on)
    else:
        found = tables.legacy_operation(code, on)
    return code if found is None else str(found.code)


WITHDRAWN_STATUS = "0"
"""`setlinfo.stas_type` of a withdrawn list (未提交: national 4102, dictionary stas_type)."""


def withdrawn(document: bytes | ParsedDocument) -> bool:
    """Whether the list's status (`setlinfo.stas_type`) is 0, withdrawn: its grouping and score
    no longer count (`workers.dip.assess`'s ``withdrawn``). Absent counts as submitted; an
    undecodable document is not withdrawn (the mapping says what is wrong with it)."""
    if isinstance(document, bytes):
        try:
            document = parse(document)
        except MappingError:
            return False
    return _text(document.input.setlinfo.stas_type) == WITHDRAWN_STATUS


def clearing_date(document: bytes) -> str:
    """The discharge date (`YYYY-MM-DD`) of a document, '' when absent."""
    return _discharge(DOCUMENT_VIEW_DECODER.decode(document).input.setlinfo)


def _stay_days(setl: SettlementView) -> int:
    """`act_ipt_days`, or — 4101A leaves it out — discharge date − admission date (≥ 1)."""
    given = _int(setl.act_ipt_days)
    if given is not None:
        return max(0, given)
    adm, dscg = _text(setl.adm_time)[:10], _discharge(setl)
    try:
        days = (date.fromisoformat(dscg) - date.fromisoformat(adm)).days
    except ValueError:
        return 0
    return max(1, days)


def _discharge(setl: SettlementView) -> str:
    text = _text(setl.dscg_time) or _text(setl.setl_end_date)
    return text[:10] if len(text) >= 10 and text[:4].isdigit() else ""


def case_facts(
    document: bytes | ParsedDocument,
    *,
    case_key: str,
    fixmedins_code: str,
    treating_admdvs: str,
    insured_admdvs: str | None,
    hospital_level: str,
) -> CaseFacts:
    """The DIP input of one accepted upload (its bytes, or `parse`d once); raises MappingError
    when it cannot be grouped."""
    doc = parse(document) if isinstance(document, bytes) else document
    setl = doc.input.setlinfo
    total = _decimal(setl.medfee_sumamt)
    if total is None:
        raise MappingError(
            "setlinfo.medfee_sumamt", "缺少医疗费总额", "total cost (medfee_sumamt) missing"
        )
    if not 0 <= total < _MAX_COST:
        raise MappingError(
            "setlinfo.medfee_sumamt",
            f"医疗费总额 {total} 超出范围",
            f"total cost {total} out of range (0 to {_MAX_COST})",
        )
    diagnoses = [d for d in doc.input.diseinfo or [] if _text(d.diag_code)]
    if not diagnoses:
        raise MappingError("diseinfo", "缺少诊断", "no diagnosis")
    main = next((d for d in diagnoses if _text(d.maindiag_flag) == "1"), diagnoses[0])
    day = _discharge(setl)
    others = tuple(_diag(_text(d.diag_code), day) for d in diagnoses if d is not main)
    operations = [o for o in doc.input.oprninfo or [] if _text(o.oprn_oprt_code)]
    operations.sort(key=lambda o: _text(o.oprn_oprt_type) != "1")  # stable: main first
    ops = []
    for i, o in enumerate(operations):
        code = _current("operation", _text(o.oprn_oprt_code).lower(), day)
        ops.append((code, oprn_class(code, i == 0 and _text(o.oprn_oprt_type) == "1")))
    insured = (
        _text(insured_admdvs) or _text(doc.insuplc_admdvs) or _text(setl.insuplc) or treating_admdvs
    )
    fund = _decimal(setl.hifp_pay)
    if fund is None:
        fund = _decimal(setl.fund_pay_sumamt)
    age_days = _int(setl.nwb_age)
    weight = _decimal(setl.nwb_bir_wt)
    fees: dict[str, Decimal] = {}
    for item in doc.input.iteminfo or []:
        kind, amount = _text(item.med_chrgitm), _decimal(item.amt)
        if kind and amount is not None and abs(amount) < _MAX_COST:
            fees[kind] = fees.get(kind, Decimal(0)) + amount
    return CaseFacts(
        case_key=case_key,
        fixmedins_code=fixmedins_code,
        hospital_level=hospital_level,
        treating_admdvs=treating_admdvs,
        insured_admdvs=insured,
        insutype=_text(setl.insutype),
        main_diag_code=_diag(_text(main.diag_code), day),
        other_diag_codes=others,
        operations=tuple(ops),
        total_cost=total,
        fund_pay=fund,
        age_years=_int(setl.age),
        age_days=age_days if age_days is not None and age_days < 366 else None,
        icu_minutes=sum(_minutes(_text(i.scs_cutd_sum_dura)) for i in doc.input.icuinfo or []),
        act_ipt_days=_stay_days(setl),
        discharge_date=day,
        dscg_way=_text(setl.dscg_way),
        fees=fees,
        birth_weight=weight if weight is not None and 0 < weight <= _MAX_WEIGHT else None,
    )
