"""Cross-field rules: what no single field can tell (dates, codes, ages, amounts, regions)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from contracts._certno import certno_matches, valid_certno_birth
from contracts._codes import (
    CodeTable,
    CodeTables,
    DiagnosisCode,
    OperationCode,
    is_diagnosis_format,
    is_operation_format,
    normalise_code,
)
from contracts._crossrules import CrossRules, always, compile_dispatcher, compile_facts
from contracts._diagrules import Constraint, constraints_by_category
from contracts._errors import ValidationError
from contracts._model import Setlinfo, Settlement
from contracts._regions import bundled_regions, region_inside
from contracts._rulebook import ConfiguredRules
from contracts._timefmt import CST

__all__ = ["CROSS_RULES", "RecordChecks", "is_admvs", "region_inside"]

# ASCII digits only (`\d` takes any script's), and the whole text (`$` takes a final newline)
_INST_RE = re.compile(r"H[0-9]{11}\Z")
_ADMDVS_RE = re.compile(r"[1-9][0-9]{5}\Z")
# GB/T 2260 province codes
_PROVINCES = frozenset(
    {
        *("11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35"),
        *("36", "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54"),
        *("61", "62", "63", "64", "65", "71", "81", "82"),
    }
)
_RESIDENT_ID_TYPES = frozenset({"01", "02"})  # 居民身份证, 居民户口簿 (same number)
_WESTERN_EXCLUDED = frozenset({"2", "3"})  # 中医主病 / 中医主证 use TCM codes, not ICD-10
_SEXES = frozenset({"1", "2"})
_ODD = frozenset("13579")  # of a valid number's 17th digit (ASCII): male
_TRANSFER = frozenset({"2", "3"})  # dscg_way: 医嘱转院 / 医嘱转社区 name the receiving institution
_MONEY_PARTS = ("fund_pay_sumamt", "acct_pay", "psn_cash_pay", "psn_selfpay", "psn_ownpay")
_ITEM_PARTS = ("claa_sumfee", "clab_amt", "fulamt_ownpay_amt", "oth_amt")
_HALF_FEN = Decimal("0.005")
_MIDNIGHT = time()


_ADMVS_SEEN: dict[str, bool] = {}


def _admvs_format(code: str) -> bool:
    """Six ASCII digits with a real province prefix (GB/T 2260's shape, known or not)."""
    return _ADMDVS_RE.match(code) is not None and code[:2] in _PROVINCES


def is_admvs(code: str) -> bool:
    """A known region code (`contracts._regions`; memoised: a province sees a few hundred)."""
    hit = _ADMVS_SEEN.get(code)
    if hit is None:
        hit = _admvs_format(code) and bundled_regions().region(code) is not None
        if len(_ADMVS_SEEN) < 100_000:
            _ADMVS_SEEN[code] = hit
    return hit


def _le(a: datetime, b: datetime) -> bool:
    """a <= b, at day precision when either side is a bare date (midnight)."""
    if a <= b:
        return True
    if a.time() == _MIDNIGHT or b.time() == _MIDNIGHT:
        return a.date() <= b.date()
    return False


def _inside(
    adm: datetime | None, begin: datetime | None, end: datetime | None, dscg: datetime | None
) -> bool:
    """The common case of `_span` in one chained comparison (all four known, in order)."""
    return (
        adm is not None
        and begin is not None
        and end is not None
        and dscg is not None
        and adm <= begin <= end <= dscg
    )


def _years_between(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


# -- the pre-checks: True when their rule may find something (conservative: False only when
# it would find nothing). One `return <expr>` each is inlined into the dispatcher.


def _may_regions(
    sl: Setlinfo, legacy: bool, area: str | None, inst: str | None, insured: str | None
) -> bool:
    # all but the common case, which `_regions` would find clean: a hospital of the treating
    # region ("H" + region + 5 digits), both region codes known (`is_admvs`), one insured
    # region
    return not (
        not legacy
        and area
        and insured
        and inst
        and inst[1:7] == area
        and sl.insuplc == insured
        and (not sl.fixmedins_code or sl.fixmedins_code == inst)
        and _ADMVS_SEEN.get(area)
        and _ADMVS_SEEN.get(insured)
        and len(inst) == 12
        and inst[0] == "H"
        and inst.isascii()
        and inst[1:].isdigit()
    )


# The identifiers a case is known and listed by. Any printable text may be one (a case-record
# number can hold Chinese), but not what rearranges or hides text on a screen: controls,
# bidi overrides and isolates, zero-width and line or paragraph separators.
_IDENTIFIERS = ("setl_id", "mdtrt_id", "psn_no", "medcasno")
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def _may_identifiers(sl: Setlinfo) -> bool:
    # printable ASCII, the common case, holds none of them (str methods: no regex call)
    return not all(
        v is None or (v.isascii() and v.isprintable())
        for v in (sl.setl_id, sl.mdtrt_id, sl.psn_no, sl.medcasno)
    )


def _may_conditional(sl: Setlinfo) -> bool:
    return bool(
        (sl.coner_name and not (sl.patn_rlts and sl.coner_addr and sl.coner_tel))
        or sl.dscg_way in _TRANSFER
        or (sl.poscode and not (len(sl.poscode) == 6 and sl.poscode.isdigit()))
    )


def _may_ages(sl: Setlinfo, adm: datetime | None, birth: date | None, age_days: int | None) -> bool:
    # not an adult whose age is within a year of the full years lived: `years` lies in
    # [days // 366, days // 365] (n years take 365n to 366n days). Without both dates, or
    # born after admission (DATE_BIRTH), `_ages` finds nothing.
    return (
        birth is not None
        and adm is not None
        and age_days is not None
        and not (
            age_days >= 366
            and sl.age is not None
            and sl.age.is_finite()
            and age_days // 365 - 1 <= sl.age <= age_days // 366 + 1
        )
    )


def _may_identity(sl: Setlinfo, birth: date | None) -> bool:
    # a resident ID number that is invalid, of another birth date or of the other sex
    return bool(
        sl.certno
        and sl.patn_cert_type in _RESIDENT_ID_TYPES
        and (
            not (
                certno_matches(sl.certno, birth)
                if birth is not None
                else valid_certno_birth(sl.certno) is not None
            )
            or (sl.gend in _SEXES and (sl.certno[16] in _ODD) != (sl.gend == "1"))
        )
    )


def _may_dates(
    self: RecordChecks,
    sl: Setlinfo,
    adm: datetime | None,
    dscg: datetime | None,
    birth: date | None,
    day: date | None,
    received_at: datetime | None,
) -> bool:
    # one of `_dates`'s comparisons could fail (at full precision: day precision only
    # ever forgives)
    return bool(
        (adm is not None and dscg is not None and not adm <= dscg)
        or (birth is not None and adm is not None and birth > adm.date())
        or (
            dscg is not None
            and received_at is not None
            and (dscg > received_at or received_at - dscg > self._lag)
        )
        or (
            sl.setl_begn_date is not None
            and (
                (sl.setl_end_date is not None and sl.setl_begn_date > sl.setl_end_date)
                or (adm is not None and sl.setl_begn_date < adm.date())
            )
        )
        or (sl.setl_end_date is not None and day is not None and sl.setl_end_date > day)
        or (
            sl.setl_time is not None
            and dscg is not None
            and sl.setl_time < dscg
            and sl.setl_time.date() < dscg.date()
        )
        or (
            sl.act_ipt_days is not None
            and adm is not None
            and day is not None
            and sl.act_ipt_days != (day - adm.date()).days
        )
    )


def _may_operations(
    s: Settlement, adm: datetime | None, dscg: datetime | None, trusted: bool
) -> bool:
    """`_operations` can find nothing if: no operation at all, or (codes trusted, no
    special-disease list) one main operation, every interval given and inside the stay
    (the anaesthesia usually encloses the operation: one chain of comparisons), no bare
    date; a missing time raises TypeError."""
    if s.opspdiseinfo:
        return True
    ops = s.oprninfo
    if not ops:
        return False
    if not trusted:
        return True
    mains = 0
    try:
        for o in ops:
            if o.oprn_oprt_type == "1":
                mains += 1
            begin, end = o.oprn_oprt_begntime, o.oprn_oprt_endtime
            anst_begin, anst_end = o.anst_begntime, o.anst_endtime
            if o.oprn_oprt_date is not None or not (
                adm <= anst_begin <= begin <= end <= anst_end <= dscg  # type: ignore[operator]
                or (
                    adm <= begin <= end <= dscg  # type: ignore[operator]
                    and adm <= anst_begin <= anst_end <= dscg  # type: ignore[operator]
                )
            ):
                return True
    except TypeError:
        return True
    return mains != 1


def _may_icu(s: Settlement) -> bool:
    return bool(s.icuinfo)


def _may_weights(sl: Setlinfo) -> bool:
    return bool(
        sl.nwb_bir_wt is not None
        or sl.nwb_adm_wt is not None
        or sl.mul_nwb_bir_wt
        or sl.mul_nwb_adm_wt
    )


def _may_amounts(s: Settlement, sl: Setlinfo) -> bool:
    """Items (always checked), or a part that could exceed its total. Plain comparisons: a
    NaN makes them raise (or be false), a conservative answer either way; an infinite part
    only ever fails the test, and `_amounts` then ignores it."""
    if s.iteminfo:
        return True
    total = sl.medfee_sumamt
    fund = sl.fund_pay_sumamt
    try:
        clean = (
            total is None
            or not total >= 0
            or (
                (fund is None or fund <= total)  # the parts of _MONEY_PARTS, unrolled
                and ((part := sl.acct_pay) is None or part <= total)
                and ((part := sl.psn_cash_pay) is None or part <= total)
                and ((part := sl.psn_selfpay) is None or part <= total)
                and ((part := sl.psn_ownpay) is None or part <= total)
            )
        ) and (fund is None or (hifp := sl.hifp_pay) is None or hifp <= fund)
    except ArithmeticError:
        return True
    return not clean


def _age_unknown_birth(sl: Setlinfo) -> int | None:
    """The age in days when birth or admission is unknown: from the age fields, if any."""
    if isinstance(sl.nwb_age, int):
        return sl.nwb_age
    if isinstance(sl.age, Decimal) and sl.age.is_finite():
        return int(sl.age * 365)
    return None


#: every cross-field rule, in the order they run; registered below with their methods
CROSS_RULES = CrossRules()
_rule = CROSS_RULES.rule


class RecordChecks:
    """All cross-field rules of a registry (`CROSS_RULES`), bound to the configured rules and
    one set of code tables.

    `check` (and `run`) is generated from the registry (`contracts._crossrules`): each rule
    behind its own pre-check, in registry order; `check_all` runs every rule unconditionally
    (the full engine: same findings, only slower).
    """

    __slots__ = (
        "_by_code",
        "_codes",
        "_constraints",
        "_lag",
        "_latest",
        "_plain_codes",
        "_policy",
        "_regions_seen",
        "_scope",
        "_wt_high",
        "_wt_low",
        "check",
        "check_all",
        "rules",
    )

    def __init__(
        self, policy: ConfiguredRules, codes: CodeTables, rules: CrossRules | None = None
    ) -> None:
        self._policy = policy
        self._codes = codes
        self._constraints = constraints_by_category()
        # the latest table's codes -> their category's constraints (the trusted path's
        # lookup, without slicing each code); codes not in it fall back to the category
        latest = codes.diagnosis_table()
        by_category = self._constraints
        self._by_code: dict[str, tuple[Constraint, ...]] = (
            {code: by_category.get(code[:3], ()) for code in latest.entries}
            if latest is not None
            else {}
        )
        self._plain_codes: frozenset[str | None] = frozenset(
            [None, "", *(code for code, rules in self._by_code.items() if not rules)]
        )
        self._lag = timedelta(days=policy.param("LAG_UPLOAD", "days"))
        self._wt_low = Decimal(policy.param("NWB_WEIGHT", "min_g"))
        self._wt_high = Decimal(policy.param("NWB_WEIGHT", "max_g"))
        # a province has a few thousand (hospital, region) pairs: memoise their findings
        self._regions_seen: dict[tuple[object, ...], list[ValidationError]] = {}
        self._latest: dict[date | None, bool] = {}
        self.rules = CROSS_RULES if rules is None else rules
        self._scope = scope = {
            "CST": CST,
            "LATEST": self._latest,
            "IS_LATEST": codes.is_latest,
            "AGE_UNKNOWN_BIRTH": _age_unknown_birth,
        }
        #: `check(s, out, legacy, received_at, mdtrtarea_admvs, fixmedins_code,
        #: insuplc_admdvs, trusted_codes)`: `run` with positional arguments (the hot path)
        self.check: Callable[..., None] = compile_dispatcher(
            self.rules, self, scope, module_globals=globals()
        )
        self.check_all: Callable[..., None] = compile_dispatcher(
            self.rules, self, scope, guarded=False, module_globals=globals()
        )

    def _emit(self, out: list[ValidationError], rule: str, path: str) -> None:
        err = self._policy.error(rule, path)
        if err is not None:
            out.append(err)

    def facts(
        self,
        s: Settlement,
        legacy: bool,
        received_at: datetime | None,
        area: str | None,
        inst: str | None,
        insured: str | None,
        trusted: bool,
    ) -> dict[str, Any]:
        """The facts the dispatcher computes for a record (tests, debugging: not hot)."""
        compute = compile_facts(self, self._scope)
        return compute(s, [], legacy, received_at, area, inst, insured, trusted)

    # -- entry point ------------------------------------------------------------------------

    def run(
        self,
        s: Settlement,
        out: list[ValidationError],
        *,
        legacy: bool,
        received_at: datetime | None,
        mdtrtarea_admvs: str | None,
        fixmedins_code: str | None,
        insuplc_admdvs: str | None,
        trusted_codes: bool = False,
    ) -> None:
        """Append the findings on `s` to `out`.

        `trusted_codes`: the fast-path decoder already proved every diagnosis/operation code
        is in the latest tables; lookups are redone only if another version is in force.
        """
        self.check(
            s, out, legacy, received_at, mdtrtarea_admvs, fixmedins_code, insuplc_admdvs,
            trusted_codes,
        )  # fmt: skip

    # -- institution and region ------------------------------------------------------------

    @_rule("regions", may_fire=_may_regions)
    def _regions_memo(
        self,
        s: Settlement,
        out: list[ValidationError],
        legacy: bool,
        area: str | None,
        inst: str | None,
        insured: str | None,
    ) -> None:
        """`_regions`, memoised by what it reads (a province has few such combinations)."""
        sl = s.setlinfo
        key = (area, inst, insured, sl.insuplc, sl.fixmedins_code)
        found = self._regions_seen.get(key)
        if found is None:
            found = []
            self._regions(s, found, legacy, area, inst, insured)
            if len(self._regions_seen) < 100_000:
                self._regions_seen[key] = found
        if found:
            out.extend(found)

    def _regions(
        self,
        s: Settlement,
        out: list[ValidationError],
        legacy: bool,
        mdtrtarea: str | None,
        fixmedins: str | None,
        insuplc_admdvs: str | None,
    ) -> None:
        sl = s.setlinfo
        area_ok = False
        if mdtrtarea:
            area_ok = is_admvs(mdtrtarea)
            if not area_ok:
                self._bad_region(out, mdtrtarea, "mdtrtarea_admvs")
        if insuplc_admdvs and not is_admvs(insuplc_admdvs):
            self._bad_region(out, insuplc_admdvs, "insuplc_admdvs")
        if sl.insuplc and not is_admvs(sl.insuplc):
            self._bad_region(out, sl.insuplc, "setlinfo.insuplc")
        elif (
            insuplc_admdvs
            and sl.insuplc
            and insuplc_admdvs != sl.insuplc
            and is_admvs(insuplc_admdvs)
        ):
            self._emit(out, "INSUPLC_MATCH", "insuplc_admdvs")
        if fixmedins:
            if _INST_RE.match(fixmedins) is None:
                self._emit(out, "INST_FORMAT", "fixmedins_code")
            elif area_ok and mdtrtarea:
                own = fixmedins[1:7]
                if not (region_inside(own, mdtrtarea) or region_inside(mdtrtarea, own)):
                    self._emit(out, "INST_REGION", "fixmedins_code")
        if sl.fixmedins_code:  # 4101's field; a 4101A list that sends it is held to it too
            if _INST_RE.match(sl.fixmedins_code) is None:
                self._emit(out, "INST_FORMAT", "setlinfo.fixmedins_code")
            elif fixmedins and sl.fixmedins_code != fixmedins:
                self._emit(out, "INST_MATCH", "setlinfo.fixmedins_code")

    def _bad_region(self, out: list[ValidationError], code: str, path: str) -> None:
        """A region code that is not known: malformed (ADMDVS_FORMAT) or unknown."""
        self._emit(out, "ADMDVS_FORMAT" if not _admvs_format(code) else "ADMDVS_UNKNOWN", path)

    # -- conditional completeness ----------------------------------------------------------

    @_rule("conditional", may_fire=_may_conditional)
    def _conditional(self, s: Settlement, out: list[ValidationError]) -> None:
        sl = s.setlinfo
        if sl.coner_name:
            if not sl.patn_rlts:
                self._emit(out, "REQ_CONER", "setlinfo.patn_rlts")
            if not sl.coner_addr:
                self._emit(out, "REQ_CONER", "setlinfo.coner_addr")
            if not sl.coner_tel:
                self._emit(out, "REQ_CONER", "setlinfo.coner_tel")
        if sl.dscg_way in ("2", "3"):
            if not sl.acp_medins_name:
                self._emit(out, "REQ_ACP_MEDINS", "setlinfo.acp_medins_name")
            if not sl.acp_optins_code:
                self._emit(out, "REQ_ACP_MEDINS", "setlinfo.acp_optins_code")
        if sl.poscode and not (len(sl.poscode) == 6 and sl.poscode.isdigit()):
            self._emit(out, "FMT_POSCODE", "setlinfo.poscode")

    @_rule("ages", may_fire=_may_ages)
    def _ages(
        self, s: Settlement, out: list[ValidationError], adm: datetime | None, birth: date | None
    ) -> int | None:
        """Age rules; returns the age in days at admission when it can be known."""
        sl = s.setlinfo
        if birth is None or adm is None:
            if isinstance(sl.nwb_age, int):
                return sl.nwb_age
            if isinstance(sl.age, Decimal) and sl.age.is_finite():
                return int(sl.age * 365)
            return None
        day = adm.date()
        days = (day - birth).days
        if days < 0:
            return None  # DATE_BIRTH reports it
        years = _years_between(birth, day)
        if years >= 1:
            if sl.age is None:
                self._emit(out, "REQ_AGE", "setlinfo.age")
            elif sl.age.is_finite() and abs(sl.age - years) > 1:
                self._emit(out, "AGE_CONSISTENT", "setlinfo.age")
        else:
            if sl.nwb_age is None:
                self._emit(out, "REQ_NWB_AGE", "setlinfo.nwb_age")
            elif abs(sl.nwb_age - days) > 1:
                self._emit(out, "AGE_CONSISTENT", "setlinfo.nwb_age")
            if days <= 28:
                if sl.nwb_bir_wt is None:
                    self._emit(out, "REQ_NWB_WT", "setlinfo.nwb_bir_wt")
                if sl.nwb_adm_wt is None:
                    self._emit(out, "REQ_NWB_WT", "setlinfo.nwb_adm_wt")
        return days

    @_rule("identifiers", may_fire=_may_identifiers)
    def _identifiers(self, s: Settlement, out: list[ValidationError]) -> None:
        sl = s.setlinfo
        for name in _IDENTIFIERS:
            value = getattr(sl, name)
            if value and _HIDDEN.search(value):
                self._emit(out, "FMT_IDENT", f"setlinfo.{name}")

    @_rule("identity", may_fire=_may_identity)
    def _identity(self, s: Settlement, out: list[ValidationError], birth: date | None) -> None:
        sl = s.setlinfo
        certno = sl.certno
        if not certno or sl.patn_cert_type not in _RESIDENT_ID_TYPES:
            return
        encoded = valid_certno_birth(certno)
        if encoded is None:
            self._emit(out, "CERTNO_CHECK", "setlinfo.certno")
            return
        if birth is not None and encoded != birth:
            self._emit(out, "CERTNO_BRDY", "setlinfo.brdy")
        if sl.gend in ("1", "2") and (int(certno[16]) % 2 == 1) != (sl.gend == "1"):
            self._emit(out, "CERTNO_GEND", "setlinfo.gend")

    # -- dates -----------------------------------------------------------------------------

    @_rule("dates", may_fire=_may_dates)
    def _dates(
        self,
        s: Settlement,
        out: list[ValidationError],
        adm: datetime | None,
        dscg: datetime | None,
        birth: date | None,
        received_at: datetime | None,
    ) -> None:
        sl = s.setlinfo
        if adm is not None and dscg is not None and not _le(adm, dscg):
            self._emit(out, "DATE_ADM_DSCG", "setlinfo.dscg_time")
        if birth is not None and adm is not None and birth > adm.date():
            self._emit(out, "DATE_BIRTH", "setlinfo.brdy")
        if dscg is not None and received_at is not None:
            if dscg > received_at:
                self._emit(out, "DATE_FUTURE", "setlinfo.dscg_time")
            elif received_at - dscg > self._lag:
                self._emit(out, "LAG_UPLOAD", "setlinfo.dscg_time")
        begin = sl.setl_begn_date
        end = sl.setl_end_date
        if begin is not None and end is not None and begin > end:
            self._emit(out, "DATE_SETL_PERIOD", "setlinfo.setl_end_date")
        else:
            if begin is not None and adm is not None and begin < adm.date():
                self._emit(out, "DATE_SETL_PERIOD", "setlinfo.setl_begn_date")
            if end is not None and dscg is not None and end > dscg.date():
                self._emit(out, "DATE_SETL_PERIOD", "setlinfo.setl_end_date")
        setl = sl.setl_time
        if setl is not None and dscg is not None and setl.date() < dscg.date():
            self._emit(out, "DATE_DSCG_SETL", "setlinfo.setl_time")
        if sl.act_ipt_days is not None and adm is not None and dscg is not None:
            expected = (dscg.date() - adm.date()).days
            same_day = expected == 0 and sl.act_ipt_days == 1
            if expected >= 0 and sl.act_ipt_days != expected and not same_day:
                self._emit(out, "IPT_DAYS", "setlinfo.act_ipt_days")

    # -- code tables -----------------------------------------------------------------------

    @_rule("diagnoses", may_fire=always)  # DIAG_MAIN: any record may lack its main diagnosis
    def _diagnoses_any(
        self,
        s: Settlement,
        out: list[ValidationError],
        day: date | None,
        age_days: int | None,
        trusted: bool,
        latest: bool,
    ) -> None:
        """`_diagnoses`; with codes trusted (in the latest table), without the category
        slicing: a code of the latest table is looked up in `_plain_codes` (no constraint)
        first."""
        if not trusted:
            self._diagnoses(s, out, day, age_days, latest)
            return
        plain = self._plain_codes
        excluded = _WESTERN_EXCLUDED
        mains = 0
        diseinfo = s.diseinfo
        for d in diseinfo:
            if d.diag_type in excluded:
                continue
            if d.maindiag_flag == "1":
                mains += 1
            code = d.diag_code
            if code not in plain and code:
                rules = self._by_code.get(code) or self._constraints.get(code[:3])
                if rules:
                    i = next(j for j, entry in enumerate(diseinfo) if entry is d)
                    self._constrain(
                        out, rules, s.setlinfo.gend, age_days, f"diseinfo[{i}].diag_code"
                    )
        if mains != 1:
            self._emit(out, "DIAG_MAIN", "diseinfo")
        if s.opspdiseinfo:
            self._opsp_diagnoses(s, out, day)

    def _diagnosis(
        self, table: CodeTable[DiagnosisCode] | None, code: str
    ) -> list[DiagnosisCode] | None:
        """The table entries behind a code (two for a dagger/asterisk pair), None if unknown."""
        if table is None:
            return None
        hit = table.entries.get(code)
        if hit is not None:
            return [hit]
        found: list[DiagnosisCode] = []
        for part in normalise_code(code).split("+"):
            part = part.rstrip("*†")
            entry = table.entries.get(part)
            if entry is None and len(part) == 5:
                entry = table.entries.get(part + "00")  # K77.0 -> K77.000
            if entry is None:
                return None
            found.append(entry)
        return found

    def _diag_code(
        self,
        out: list[ValidationError],
        table: CodeTable[DiagnosisCode] | None,
        code: str,
        path: str,
    ) -> list[DiagnosisCode] | None:
        entries = self._diagnosis(table, code)
        if entries is None:
            if not is_diagnosis_format(normalise_code(code)):
                self._emit(out, "DIAG_FORMAT", path)
            else:
                self._emit(out, "DIAG_UNKNOWN", path)
        return entries

    def _diagnoses(
        self,
        s: Settlement,
        out: list[ValidationError],
        day: date | None,
        age_days: int | None,
        latest: bool,
    ) -> None:
        """Every diagnosis looked up in the table in force on `day`. When that is the latest
        table (`latest`), a code of it takes its constraints from `_by_code` as on the
        trusted path: one unknown code among nine costs one lookup, not nine."""
        table = self._codes.diagnosis_table(day)
        gend = s.setlinfo.gend
        constraints = self._constraints
        by_code = self._by_code if latest else {}
        mains = 0
        for i, d in enumerate(s.diseinfo):
            western = d.diag_type not in _WESTERN_EXCLUDED
            if western and d.maindiag_flag == "1":
                mains += 1
            code = d.diag_code
            if not code or not western:
                continue
            known = by_code.get(code)
            if known is not None:
                if known:
                    self._constrain(out, known, gend, age_days, f"diseinfo[{i}].diag_code")
                continue
            path = f"diseinfo[{i}].diag_code"
            entries = self._diag_code(out, table, code, path)
            if entries is None:
                continue
            for entry in entries:
                rules = constraints.get(entry.category)
                if rules is not None:
                    self._constrain(out, rules, gend, age_days, path)
        if mains != 1:
            self._emit(out, "DIAG_MAIN", "diseinfo")
        wm_dise_code = s.setlinfo.wm_dise_code
        if wm_dise_code and not (latest and wm_dise_code in self._by_code):
            self._diag_code(out, table, wm_dise_code, "setlinfo.wm_dise_code")
        self._opsp_diagnoses(s, out, day, table)

    def _opsp_diagnoses(
        self,
        s: Settlement,
        out: list[ValidationError],
        day: date | None,
        table: CodeTable[DiagnosisCode] | None = None,
    ) -> None:
        """The outpatient special-disease diagnoses (never covered by the fast path's types)."""
        if not s.opspdiseinfo:
            return
        if table is None:
            table = self._codes.diagnosis_table(day)
        for i, o in enumerate(s.opspdiseinfo):
            if o.diag_code:
                self._diag_code(out, table, o.diag_code, f"opspdiseinfo[{i}].diag_code")

    def _constrain(
        self,
        out: list[ValidationError],
        rules: tuple[Constraint, ...],
        gend: str | None,
        age_days: int | None,
        path: str,
    ) -> None:
        for c in rules:
            if c.gend is not None:
                if gend in ("1", "2") and gend != c.gend:
                    self._emit(out, "SEX_DIAG", path)
            elif age_days is not None and (
                (c.min_age_days is not None and age_days < c.min_age_days)
                or (c.max_age_days is not None and age_days > c.max_age_days)
            ):
                self._emit(out, "AGE_DIAG", path)

    def _oprn_code(
        self,
        out: list[ValidationError],
        table: CodeTable[OperationCode] | None,
        code: str,
        path: str,
    ) -> None:
        if table is not None and (code in table.entries or table.get(code) is not None):
            return
        if is_operation_format(normalise_code(code)):
            self._emit(out, "OPRN_UNKNOWN", path)
        else:
            self._emit(out, "OPRN_FORMAT", path)

    @_rule("operations", may_fire=_may_operations)
    def _operations(
        self,
        s: Settlement,
        out: list[ValidationError],
        day: date | None,
        adm: datetime | None,
        dscg: datetime | None,
        trusted: bool,
    ) -> None:
        table = None if trusted else self._codes.operation_table(day)
        mains = 0
        for i, o in enumerate(s.oprninfo):
            if o.oprn_oprt_type == "1":
                mains += 1
            if o.oprn_oprt_code and not trusted:
                self._oprn_code(out, table, o.oprn_oprt_code, f"oprninfo[{i}].oprn_oprt_code")
            b, e = o.oprn_oprt_begntime, o.oprn_oprt_endtime
            if (b is not None or e is not None) and not _inside(adm, b, e, dscg):
                self._span(out, i, "oprninfo", "oprn_oprt_begntime", b, "oprn_oprt_endtime", e,
                           adm, dscg, "DATE_OPRN_STAY")  # fmt: skip
            b, e = o.anst_begntime, o.anst_endtime
            if (b is not None or e is not None) and not _inside(adm, b, e, dscg):
                self._span(out, i, "oprninfo", "anst_begntime", b, "anst_endtime", e,
                           adm, dscg, "DATE_OPRN_STAY")  # fmt: skip
            if o.oprn_oprt_date is not None:
                when = datetime.combine(o.oprn_oprt_date, _MIDNIGHT)
                self._span(out, i, "oprninfo", "oprn_oprt_date", when, "", None,
                           adm, dscg, "DATE_OPRN_STAY")  # fmt: skip
        if s.oprninfo and mains != 1:
            self._emit(out, "OPRN_MAIN", "oprninfo")
        if s.opspdiseinfo:
            table = self._codes.operation_table(day)
            for i, p in enumerate(s.opspdiseinfo):
                if p.oprn_oprt_code:
                    path = f"opspdiseinfo[{i}].oprn_oprt_code"
                    self._oprn_code(out, table, p.oprn_oprt_code, path)

    def _span(
        self,
        out: list[ValidationError],
        index: int,
        node: str,
        begin_name: str,
        begin: datetime | None,
        end_name: str,
        end: datetime | None,
        adm: datetime | None,
        dscg: datetime | None,
        rule: str,
    ) -> None:
        """An interval [begin, end] inside the stay [adm, dscg], begin <= end."""
        if begin is not None and (
            (adm is not None and not _le(adm, begin)) or (dscg is not None and not _le(begin, dscg))
        ):
            self._emit(out, rule, f"{node}[{index}].{begin_name}")
        if end is not None and (
            (adm is not None and not _le(adm, end))
            or (dscg is not None and not _le(end, dscg))
            or (begin is not None and not _le(begin, end))
        ):
            self._emit(out, rule, f"{node}[{index}].{end_name}")

    @_rule("icu", may_fire=_may_icu)
    def _icu(
        self,
        s: Settlement,
        out: list[ValidationError],
        adm: datetime | None,
        dscg: datetime | None,
    ) -> None:
        for i, c in enumerate(s.icuinfo):
            if _inside(adm, c.scs_cutd_inpool_time, c.scs_cutd_exit_time, dscg):
                continue  # `_span` would find nothing
            self._span(
                out, i, "icuinfo", "scs_cutd_inpool_time", c.scs_cutd_inpool_time,
                "scs_cutd_exit_time", c.scs_cutd_exit_time, adm, dscg, "DATE_ICU_STAY",
            )  # fmt: skip

    # -- newborn weights and amounts -------------------------------------------------------

    @_rule("weights", may_fire=_may_weights)
    def _weights(self, s: Settlement, out: list[ValidationError]) -> None:
        sl = s.setlinfo
        low, high = self._wt_low, self._wt_high
        for name in ("nwb_bir_wt", "nwb_adm_wt"):
            weight = getattr(sl, name)
            if weight is not None and weight.is_finite() and not low <= weight <= high:
                self._emit(out, "NWB_WEIGHT", f"setlinfo.{name}")
        for name in ("mul_nwb_bir_wt", "mul_nwb_adm_wt"):
            text = getattr(sl, name)
            if not text:
                continue
            try:
                weights = [Decimal(part) for part in text.split(",")]
            except ArithmeticError:
                self._emit(out, "FMT_WEIGHTS", f"setlinfo.{name}")
                continue
            if not all(w.is_finite() and low <= w <= high for w in weights):
                self._emit(out, "NWB_WEIGHT", f"setlinfo.{name}")

    @_rule("amounts", may_fire=_may_amounts)
    def _amounts(self, s: Settlement, out: list[ValidationError]) -> None:
        sl = s.setlinfo
        total = sl.medfee_sumamt
        if total is not None and total.is_finite() and total >= 0:
            for name in _MONEY_PARTS:
                part = getattr(sl, name)
                if part is not None and part.is_finite() and part > total:
                    self._emit(out, "AMT_PARTS", f"setlinfo.{name}")
            if s.iteminfo:
                amounts = [i.amt for i in s.iteminfo if i.amt is not None and i.amt.is_finite()]
                if abs(sum(amounts, Decimal(0)) - total) >= _HALF_FEN:
                    self._emit(out, "AMT_ITEMS_TOTAL", "setlinfo.medfee_sumamt")
        fund, hifp = sl.fund_pay_sumamt, sl.hifp_pay
        if (
            fund is not None
            and hifp is not None
            and fund.is_finite()
            and hifp.is_finite()
            and hifp > fund
        ):
            self._emit(out, "AMT_PARTS", "setlinfo.hifp_pay")
        for i, item in enumerate(s.iteminfo):
            amt = item.amt
            if amt is None or not amt.is_finite():
                continue
            for name in _ITEM_PARTS:
                part = getattr(item, name)
                if part is not None and part.is_finite() and part > amt:
                    self._emit(out, "AMT_PARTS", f"iteminfo[{i}].{name}")
