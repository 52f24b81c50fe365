"""Catalog building (目录库): three years of cases → core and comprehensive groups with scores.

Why these choices (all are options, `BuildOptions`):

- Years are weighted 1:2:7 (seed 003; DIP 3.0 第五章第一节). ``year_means`` (default) weights
  each year's mean cost of the group, renormalised over the years in which the group has cases;
  ``case_weights`` weights every case by its year instead.
- A combination becomes a core group when its raw case count over the years reaches
  ``threshold`` (DIP 3.0 临界值, e.g. 15 in a city). Cases whose full combination (main operation
  + related operations) misses the threshold fall to the core combination the grouper would give
  them (the one with the most related operations contained in theirs, else main operation only)
  — the same rule as `group`, so a built catalog groups its own history consistently.
- The rest is comprehensive: 3-character category + treatment kind.
- Scores (``method``, DIP 3.0 第五章第一节 gives three): ``average`` (平均费用法) RW_i = m_i / M ×
  scale, M the weighted mean cost of all cases used; ``benchmark`` (基准病种费用法) m_i divided by
  the benchmark group's m instead, so the benchmark scores ``scale`` itself; ``standard_quota``
  (标准定额法) m_i divided by a fixed quota in yuan worth one point (scale 1, as the text; a city
  whose quota is worth 1000 points sets scale 1000).
- ``trim`` (分位数法, 第五章第四节: 2.5 % and 97.5 %) drops, per group, the cases whose cost lies
  outside the two percentiles of the group's costs (pooled over the selected years) before any
  mean, M included. ``nearest_rank`` (default) takes the ⌈p·n/100⌉-th smallest cost: always an
  observed cost, small groups (n < 40 at 97.5 %) keep their maximum and no group is emptied;
  ``linear`` is Excel's PERCENTILE.INC (numpy's default), which always cuts a group's extremes.
- ``primary`` selects 基层病种 among core groups (第三章第四节 遴选原则): on a list (the national
  one, or the city's), a share and a count of cases at primary hospital levels, CV not above a
  limit (the text: 0.7).
- ``aux`` is the auxiliary-catalog gate (第五章第二节二 触发条件): per core group and factor
  (severity, age, ICU … given per case in the history), a split is kept only when the group's
  CV is above a limit (名词解释 13: CV > 0.7), there are enough cases, and the case-weighted
  mean CV of the subtypes is lower than the group's by at least ``min_reduction`` (例如 20%);
  the subtype coefficient is m_j / M of 上年度 (the last selected year).
- CV is the plain (unweighted) coefficient of variation of the group's case costs.

Costs are floats here: this is statistics over history; the published reference costs are
rounded to the fen.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, TextIO

import msgspec

from ._codes import RANK_TREATMENT, TREATMENT_RANK, norm_diag, norm_oprn
from ._columns import TREATMENT_VALUES, norm_header
from ._errors import DipError
from ._model import Group

# (year, main diagnosis, operation codes main first, treatment, hospital level, total cost)
HistRow = tuple[int, str, tuple[str, ...], str, str, float]
# the same + the case's auxiliary subtypes, ((factor, value), …): ("severity", "重度")
AuxPairs = tuple[tuple[str, str], ...]
AuxHistRow = tuple[int, str, tuple[str, ...], str, str, float, AuxPairs]
AnyHistRow = HistRow | AuxHistRow

Method = Literal["average", "benchmark", "standard_quota"]
METHODS: tuple[Method, ...] = ("average", "benchmark", "standard_quota")
PercentileDef = Literal["nearest_rank", "linear"]


class PrimarySelection(msgspec.Struct, frozen=True, kw_only=True):
    """基层病种 selection among core groups. ``candidates``: (diagnosis prefix, operations) rows,
    operations ``a;b`` alternatives for the main one, ``+`` more required, empty = no operation;
    None = every core group. ``levels``: the hospital levels that count as primary."""

    candidates: tuple[tuple[str, str], ...] | None = None
    levels: tuple[str, ...] = ()
    min_share: float = 0.0  # cases at ``levels`` ÷ the group's cases, at least
    min_cases: int = 0  # cases at ``levels``, at least
    max_cv: float | None = 0.7  # the group's CV, at most (None: no limit)


class AuxGate(msgspec.Struct, frozen=True, kw_only=True):
    """When a core group may be split by an auxiliary factor (辅助分型 触发条件)."""

    factors: tuple[str, ...] = ()  # empty: every factor found in the history
    min_cv: float | None = 0.7  # the group's CV must be above it (None: no condition)
    min_reduction: float = 0.2  # 1 − CV after ÷ CV before, at least
    min_group_cases: int = 0  # cases of the group evaluated, at least
    min_subtype_cases: int = 0  # smaller subtypes fold into the base (no subtype)
    last_year_only: bool = True  # 上年度: the last selected year; else every selected year


class BuildOptions(msgspec.Struct, frozen=True, kw_only=True):
    weights: tuple[float, ...] = (1.0, 2.0, 7.0)
    years: tuple[int, ...] = ()  # ascending; empty = the last len(weights) years in the data
    threshold: int = 15
    scale: float | None = None  # None: 1000, or 1 for standard_quota (as DIP 3.0 writes them)
    weighting: Literal["year_means", "case_weights"] = "year_means"
    related_operations: bool = True
    min_comprehensive_cases: int = 1
    score_decimals: int = 4
    subcategory_length: int = 5
    category_length: int = 3
    method: Method = "average"
    benchmark_group: str = ""  # method benchmark: the group code (``K35.8/47.0100``)
    quota: float | None = None  # method standard_quota: yuan worth one point (× scale)
    trim: tuple[float, float] | None = None  # percentiles, e.g. (2.5, 97.5)
    trim_percentile: PercentileDef = "nearest_rank"
    trim_min_cases: int = 0  # groups with fewer cases are not trimmed
    primary: PrimarySelection | None = None
    aux: AuxGate | None = None


@dataclass(slots=True)
class PrimaryDecision:
    code: str
    cases: int
    primary_cases: int
    share: float
    cv: float
    selected: bool
    reason: str  # "" when selected


@dataclass(slots=True)
class AuxSubtype:
    value: str  # "" = the base (cases of no subtype, and folded small subtypes)
    cases: int
    mean_cost: float
    cv: float
    coefficient: float | None  # m_j / M; None for the base


@dataclass(slots=True)
class AuxSplit:
    group_code: str
    factor: str
    cases: int
    cv_before: float
    cv_after: float  # case-weighted mean of the subtypes' CVs
    reduction: float  # 1 − cv_after / cv_before
    kept: bool
    reason: str  # why refused; "" when kept
    subtypes: list[AuxSubtype]


@dataclass(slots=True)
class CatalogBuild:
    groups: list[Group]
    mean_cost: float  # M
    years: tuple[int, ...]
    cases_used: int
    cases_other_years: int
    cases_dropped: int  # in comprehensive groups below min_comprehensive_cases
    skipped: list[str] = field(default_factory=list)
    method: Method = "average"
    reference_cost: float = 0.0  # the divisor of the scores: M, the benchmark's m, or the quota
    scale: float = 1000.0
    cases_trimmed: int = 0
    primary_decisions: list[PrimaryDecision] = field(default_factory=list)
    aux: list[AuxSplit] = field(default_factory=list)


class HistoryError(DipError, ValueError):
    """The history file cannot be read (missing column, bad value)."""


class BuildError(DipError, ValueError):
    """The build options cannot be applied (unknown benchmark, no quota, bad percentiles)."""


# ---------------------------------------------------------------- statistics


class _Acc:
    """Per-year n, Σcost, Σcost² for one bucket; mergeable."""

    __slots__ = ("n", "s", "ss")

    def __init__(self, years: int) -> None:
        self.n = [0] * years
        self.s = [0.0] * years
        self.ss = [0.0] * years

    def merge(self, other: _Acc) -> None:
        for i in range(len(self.n)):
            self.n[i] += other.n[i]
            self.s[i] += other.s[i]
            self.ss[i] += other.ss[i]

    def count(self) -> int:
        return sum(self.n)


def _mean(acc: _Acc, weights: Sequence[float], mode: str) -> float:
    if mode == "case_weights":
        den = sum(w * n for w, n in zip(weights, acc.n, strict=True))
        return sum(w * s for w, s in zip(weights, acc.s, strict=True)) / den if den else 0.0
    num = den = 0.0
    for w, n, s in zip(weights, acc.n, acc.s, strict=True):
        if n:
            num += w * s / n
            den += w
    return num / den if den else 0.0


def _cv(acc: _Acc) -> float:
    n = sum(acc.n)
    if n == 0:
        return 0.0
    mean = sum(acc.s) / n
    if mean == 0:
        return 0.0
    var = max(sum(acc.ss) / n - mean * mean, 0.0)
    return math.sqrt(var) / mean


# ---------------------------------------------------------------- building


# one case kept for trimming and the gates: (cost, auxiliary subtypes)
_Case = tuple[float, AuxPairs]
# a combination's slice: (treatment, level, year index, n, Σcost, Σcost², cases or None)
_Part = tuple[str, str, int, int, float, float, list[_Case] | None]
# a case of a finished group: (year index, level, cost, auxiliary subtypes)
_Kept = tuple[int, str, float, AuxPairs]


def _percentile(costs: Sequence[float], pct: float, how: PercentileDef) -> float:
    """The ``pct`` percentile of sorted ``costs``; ranks in exact fractions (97.5 × 40 = 39)."""
    n = len(costs)
    p = Fraction(repr(pct))
    if how == "nearest_rank":
        rank = max(math.ceil(p * n / 100), 1)
        return costs[rank - 1]
    h = p * (n - 1) / 100
    lo = math.floor(h)
    if lo + 1 >= n:
        return costs[n - 1]
    return costs[lo] + float(h - lo) * (costs[lo + 1] - costs[lo])


def _plain_cv(costs: Sequence[float]) -> float:
    n = len(costs)
    mean = sum(costs) / n if n else 0.0
    if mean == 0:
        return 0.0
    var = max(sum(c * c for c in costs) / n - mean * mean, 0.0)
    return math.sqrt(var) / mean


def _check(opt: BuildOptions) -> None:
    if opt.method == "benchmark" and not opt.benchmark_group:
        raise BuildError("method benchmark needs benchmark_group (a group code)")
    if opt.method == "standard_quota" and not (opt.quota and opt.quota > 0):
        raise BuildError("method standard_quota needs a quota > 0 (yuan worth one point)")
    if opt.trim is not None:
        lo, hi = opt.trim
        if not 0 <= lo < hi <= 100:
            raise BuildError(f"trim percentiles must be 0 ≤ low < high ≤ 100, not {lo}, {hi}")
    ps = opt.primary
    if ps is not None and (ps.min_share > 0 or ps.min_cases > 0) and not ps.levels:
        raise BuildError("primary selection by share or cases needs the primary hospital levels")


def build_catalog(rows: Iterable[AnyHistRow], options: BuildOptions | None = None) -> CatalogBuild:
    """A catalog from historical cases; deterministic (output sorted by key, codes from keys)."""
    opt = options or BuildOptions()
    _check(opt)
    sub_len, cat_len = opt.subcategory_length, opt.category_length
    # costs case by case only when trimming or the gates need them
    keep_cases = opt.trim is not None or opt.aux is not None
    # raw[(year, sub, main, related, treatment, level)] = [n, Σ, Σ²]
    raw: dict[tuple[int, str, str, str, str, str], list[float]] = {}
    detail: dict[tuple[int, str, str, str, str, str], list[_Case]] = {}
    for row in rows:
        year, diag, ops, treatment, level, cost = row[:6]
        sub = norm_diag(diag)[:sub_len]
        if ops:
            main = ops[0]
            rel = "+".join(sorted(set(ops[1:]))) if opt.related_operations and len(ops) > 1 else ""
        else:
            main = rel = ""
        key = (year, sub, main, rel, treatment, level)
        a = raw.get(key)
        if a is None:
            raw[key] = [1, cost, cost * cost]
        else:
            a[0] += 1
            a[1] += cost
            a[2] += cost * cost
        if keep_cases:
            aux: AuxPairs = row[6] if len(row) > 6 else ()
            detail.setdefault(key, []).append((cost, aux))

    all_years = sorted({k[0] for k in raw})
    years = tuple(opt.years) if opt.years else tuple(all_years[-len(opt.weights) :])
    if len(years) != len(opt.weights):
        raise HistoryError(f"{len(opt.weights)} weights but years {list(years)}")
    yidx = {y: i for i, y in enumerate(years)}
    ny = len(years)

    # combination totals: (sub, main, rel) -> [part]
    combos: dict[tuple[str, str, str], list[_Part]] = {}
    other_years = 0
    for rk, (n, s, ss) in raw.items():
        year, sub, main, rel, tr, lv = rk
        i = yidx.get(year)
        if i is None:
            other_years += int(n)
            continue
        combos.setdefault((sub, main, rel), []).append(
            (tr, lv, i, int(n), s, ss, detail.get(rk) if keep_cases else None)
        )

    def count(parts: list[_Part]) -> int:
        return sum(p[3] for p in parts)

    core_keys = {k for k, parts in combos.items() if k[2] and count(parts) >= opt.threshold}
    related_of: dict[tuple[str, str], list[tuple[frozenset[str], str]]] = {}
    for sub, main, rel in core_keys:
        related_of.setdefault((sub, main), []).append((frozenset(rel.split("+")), rel))
    for cands in related_of.values():
        cands.sort(key=lambda c: (-len(c[0]), c[1]))

    # route every combination to its core candidate key (as the grouper would)
    routed: dict[tuple[str, str, str], list[_Part]] = {}
    for (sub, main, rel), parts in combos.items():
        target = (sub, main, "")
        if rel:
            if (sub, main, rel) in core_keys:
                target = (sub, main, rel)
            else:
                have = frozenset(rel.split("+"))
                for need, r in related_of.get((sub, main), ()):
                    if need <= have:
                        target = (sub, main, r)
                        break
        routed.setdefault(target, []).extend(parts)

    comp: dict[tuple[str, str], list[_Part]] = {}
    core_accs: list[tuple[tuple[str, str, str], _Summed]] = []
    total = _Acc(ny)
    trimmed = 0
    for rkey in sorted(routed):
        parts = routed[rkey]
        sub = rkey[0]
        if rkey[2] or count(parts) >= opt.threshold:
            summed = _accumulate(parts, ny, opt)
            core_accs.append((rkey, summed))
            total.merge(summed.acc)
            trimmed += summed.trimmed
        else:
            for p in parts:
                comp.setdefault((sub[:cat_len], p[0]), []).append(p)

    comp_accs: list[tuple[tuple[str, str], _Summed]] = []
    dropped = 0
    for ckey in sorted(comp, key=lambda k: (k[0], TREATMENT_RANK.get(k[1], 9), k[1])):
        parts = comp[ckey]
        if count(parts) < opt.min_comprehensive_cases:
            dropped += count(parts)
            continue
        summed = _accumulate(parts, ny, opt)
        comp_accs.append((ckey, summed))
        total.merge(summed.acc)
        trimmed += summed.trimmed

    w, mode = opt.weights, opt.weighting
    big_m = _mean(total, w, mode)

    def core_code(sub: str, main: str, rel: str) -> tuple[str, tuple[str, ...]]:
        ops = tuple(x for x in [main, *rel.split("+")] if x)
        return f"{sub}/{'+'.join(ops) if ops else 'conservative'}", ops

    scale = (
        opt.scale if opt.scale is not None else (1.0 if opt.method == "standard_quota" else 1000.0)
    )
    ref = big_m
    if opt.method == "standard_quota":
        ref = float(opt.quota or 0.0)
    elif opt.method == "benchmark":
        bench = [s for k, s in core_accs if core_code(*k)[0] == opt.benchmark_group]
        bench += [s for (cat, tr), s in comp_accs if f"{cat}/{tr}" == opt.benchmark_group]
        if not bench:
            raise BuildError(f"benchmark group {opt.benchmark_group} is not in the built catalog")
        ref = _mean(bench[0].acc, w, mode)

    def rw(m: float) -> float:
        return round(m / ref * scale, opt.score_decimals) if ref else 0.0

    def money(m: float) -> Decimal:
        return Decimal(repr(m)).quantize(Decimal("0.01"))

    groups: list[Group] = []
    decisions: list[PrimaryDecision] = []
    splits: list[AuxSplit] = []
    for (sub, main, rel), summed in core_accs:
        acc, by_level = summed.acc, summed.by_level
        m = _mean(acc, w, mode)
        code, ops = core_code(sub, main, rel)
        cv = _cv(acc)
        kind: Literal["core", "primary"] = "core"
        if opt.primary is not None:
            decision = _primary(code, sub, ops, acc, by_level, cv, opt.primary)
            if decision is not None:
                decisions.append(decision)
                kind = "primary" if decision.selected else "core"
        if opt.aux is not None:
            splits += _aux_splits(code, summed.kept, ny, opt.aux, opt.score_decimals)
        groups.append(
            Group(
                code=code,
                kind=kind,
                diag=sub,
                score=rw(m),
                operations=ops,
                ref_cost_all=money(m),
                ref_costs={lv: money(_mean(a, w, mode)) for lv, a in sorted(by_level.items())},
                case_count=acc.count(),
                cv=round(cv, 4),
            )
        )
    for (cat, tr), summed in comp_accs:
        acc, by_level = summed.acc, summed.by_level
        m = _mean(acc, w, mode)
        groups.append(
            Group(
                code=f"{cat}/{tr}",
                kind="comprehensive",
                diag=cat,
                score=rw(m),
                treatment=tr,  # type: ignore[arg-type]
                ref_cost_all=money(m),
                ref_costs={lv: money(_mean(a, w, mode)) for lv, a in sorted(by_level.items())},
                case_count=acc.count(),
                cv=round(_cv(acc), 4),
            )
        )
    return CatalogBuild(
        groups=groups,
        mean_cost=big_m,
        years=years,
        cases_used=total.count(),
        cases_other_years=other_years,
        cases_dropped=dropped,
        method=opt.method,
        reference_cost=ref,
        scale=scale,
        cases_trimmed=trimmed,
        primary_decisions=decisions,
        aux=splits,
    )


def _add(acc: _Acc, i: int, n: int, s: float, ss: float) -> None:
    acc.n[i] += n
    acc.s[i] += s
    acc.ss[i] += ss


@dataclass(slots=True)
class _Summed:
    acc: _Acc
    by_level: dict[str, _Acc]
    kept: list[_Kept]
    trimmed: int


def _accumulate(parts: list[_Part], ny: int, opt: BuildOptions) -> _Summed:
    """One group's parts summed: per hospital level (parts without a level count only in the
    total) and in total, after trimming when asked; the kept cases when they were recorded."""
    bounds: tuple[float, float] | None = None
    if opt.trim is not None:
        costs = sorted(c for p in parts for c, _ in p[6] or ())
        if costs and len(costs) >= opt.trim_min_cases:
            lo = _percentile(costs, opt.trim[0], opt.trim_percentile)
            hi = _percentile(costs, opt.trim[1], opt.trim_percentile)
            # a trim that would leave nothing (linear, two distinct costs) is not applied
            if any(lo <= c <= hi for c in costs):
                bounds = (lo, hi)
    by_level: dict[str, _Acc] = {}
    acc = _Acc(ny)
    kept: list[_Kept] = []
    trimmed = 0
    for _tr, lv, i, n, s, ss, cases in parts:
        if bounds is None:
            _add(acc, i, n, s, ss)
            if lv:
                _add(by_level.setdefault(lv, _Acc(ny)), i, n, s, ss)
            kept.extend((i, lv, c, aux) for c, aux in cases or ())
            continue
        for c, aux in cases or ():
            if not bounds[0] <= c <= bounds[1]:
                trimmed += 1
                continue
            _add(acc, i, 1, c, c * c)
            if lv:
                _add(by_level.setdefault(lv, _Acc(ny)), i, 1, c, c * c)
            kept.append((i, lv, c, aux))
    return _Summed(acc, by_level, kept, trimmed)


def _candidate(sub: str, ops: tuple[str, ...], dx: str, spec: str) -> bool:
    """Does a core group (subcategory, operations) match a list row (diagnosis prefix,
    ``a;b`` alternatives for the main operation, ``+`` further required operations)?"""
    if not sub.startswith(norm_diag(dx)):
        return False
    slots = [
        [norm_oprn(a) for a in slot.replace("|", ";").split(";") if a.strip()]
        for slot in spec.split("+")
        if slot.strip()
    ]
    if not slots:
        return not ops
    if not ops or ops[0] not in slots[0]:
        return False
    return all(any(a in ops[1:] for a in slot) for slot in slots[1:])


def _primary(
    code: str,
    sub: str,
    ops: tuple[str, ...],
    acc: _Acc,
    by_level: dict[str, _Acc],
    cv: float,
    sel: PrimarySelection,
) -> PrimaryDecision | None:
    """The 基层病种 decision for one core group; None when it is not a candidate."""
    if sel.candidates is not None and not any(
        _candidate(sub, ops, dx, spec) for dx, spec in sel.candidates
    ):
        return None
    n = acc.count()
    at_primary = sum(by_level[lv].count() for lv in sel.levels if lv in by_level)
    share = at_primary / n if n else 0.0
    reason = ""
    if at_primary < sel.min_cases:
        reason = f"{at_primary} cases at primary levels < {sel.min_cases}"
    elif share < sel.min_share:
        reason = f"primary share {share:.4f} < {sel.min_share}"
    elif sel.max_cv is not None and cv > sel.max_cv:
        reason = f"cv {cv:.4f} > {sel.max_cv}"
    return PrimaryDecision(code, n, at_primary, share, cv, not reason, reason)


def _aux_splits(
    code: str, kept: list[_Kept], ny: int, gate: AuxGate, decimals: int
) -> list[AuxSplit]:
    """The gate for every factor of one core group (factors no case carries are skipped)."""
    cases = [k for k in kept if k[0] == ny - 1] if gate.last_year_only else kept
    found = sorted({f for k in cases for f, v in k[3] if v})
    out: list[AuxSplit] = []
    for factor in gate.factors or tuple(found):
        if factor not in found:
            continue
        by_value: dict[str, list[float]] = {}
        for _i, _lv, c, aux in cases:
            by_value.setdefault(dict(aux).get(factor, ""), []).append(c)
        for v in [v for v in by_value if v and len(by_value[v]) < gate.min_subtype_cases]:
            by_value.setdefault("", []).extend(by_value.pop(v))
        costs = [c for _i, _lv, c, _a in cases]
        n = len(costs)
        mean = sum(costs) / n
        before = _plain_cv(costs)
        after = sum(len(v) * _plain_cv(v) for v in by_value.values()) / n
        reduction = 1 - after / before if before else 0.0
        reason = ""
        if n < gate.min_group_cases:
            reason = f"{n} cases < {gate.min_group_cases}"
        elif not [v for v in by_value if v]:
            reason = f"no subtype with {gate.min_subtype_cases} cases"
        elif gate.min_cv is not None and not before > gate.min_cv:
            reason = f"group cv {before:.4f} not above {gate.min_cv}"
        elif reduction < gate.min_reduction:
            reason = f"cv reduction {reduction:.4f} < {gate.min_reduction}"
        subtypes = [
            AuxSubtype(
                value=v,
                cases=len(cs),
                mean_cost=sum(cs) / len(cs),
                cv=_plain_cv(cs),
                coefficient=round(sum(cs) / len(cs) / mean, decimals) if v and mean else None,
            )
            for v, cs in sorted(by_value.items())
        ]
        out.append(
            AuxSplit(code, factor, n, before, after, reduction, not reason, reason, subtypes)
        )
    return out


# ---------------------------------------------------------------- output

_KIND_CN = {"core": "核心病种", "comprehensive": "综合病种", "primary": "基层病种"}
_TREAT_CN = {
    "conservative": "保守治疗",
    "diagnostic": "诊断性操作",
    "therapeutic": "治疗性操作",
    "surgery": "相关手术",
}


def write_catalog_csv(build: CatalogBuild, out: TextIO) -> None:
    """The catalog as a CSV `parse_catalog` reads (Chinese headers, per-level 次均费用_<level>)."""
    levels = sorted({lv for g in build.groups for lv in g.ref_costs})
    w = csv.writer(out, lineterminator="\n")
    w.writerow(
        [
            "病种编码",
            "病种类型",
            "主要诊断编码",
            "手术操作编码",
            "治疗方式",
            "病种分值",
            "次均费用",
            *(f"次均费用_{lv}" for lv in levels),
            "病例数",
            "变异系数",
        ]
    )
    for g in build.groups:
        w.writerow(
            [
                g.code,
                _KIND_CN[g.kind],
                g.diag,
                "+".join(g.operations),
                _TREAT_CN[g.treatment] if g.treatment else "",
                repr(g.score),
                str(g.ref_cost_all) if g.ref_cost_all is not None else "",
                *(str(g.ref_costs[lv]) if lv in g.ref_costs else "" for lv in levels),
                g.case_count,
                g.cv,
            ]
        )


def write_aux_csv(build: CatalogBuild, out: TextIO) -> None:
    """The auxiliary-catalog gate's findings, one row per group, factor and subtype: what a
    city reads to decide its [adjustments] bands (coefficient = m_j / M of the group)."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(
        [
            "group_code",
            "factor",
            "subtype",
            "cases",
            "mean_cost",
            "cv",
            "coefficient",
            "group_cases",
            "cv_before",
            "cv_after",
            "reduction",
            "decision",
            "reason",
        ]
    )
    for sp in build.aux:
        for st in sp.subtypes:
            w.writerow(
                [
                    sp.group_code,
                    sp.factor,
                    st.value,
                    st.cases,
                    f"{st.mean_cost:.2f}",
                    round(st.cv, 4),
                    "" if st.coefficient is None else repr(st.coefficient),
                    sp.cases,
                    round(sp.cv_before, 4),
                    round(sp.cv_after, 4),
                    round(sp.reduction, 4),
                    "kept" if sp.kept else "refused",
                    sp.reason,
                ]
            )


# DIP 3.0 六、基层病种 (127 rows), shipped as default data (data/NATIONAL.md)
NATIONAL_PRIMARY_LIST = Path(__file__).parent / "data" / "dip3-national-primary-care.csv"

_PRIMARY_DX = tuple(
    norm_header(h)
    for h in ("principal_dx", "主要诊断编码", "主要诊断代码", "诊断编码", "diag_code")
)
_PRIMARY_OPS = tuple(
    norm_header(h)
    for h in ("principal_procedures", "手术操作编码", "主要手术操作编码", "操作编码", "operations")
)


def read_primary_list(path: str | Path) -> tuple[tuple[str, str], ...]:
    """A 基层病种 list (the national DIP 3.0 one, or a city's): (diagnosis, operations) rows
    for `PrimarySelection.candidates`."""
    p = Path(path)
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    reader = csv.reader(io.StringIO(text))
    header = [norm_header(h) for h in next(reader, [])]
    idx = next((header.index(h) for h in _PRIMARY_DX if h in header), None)
    iop = next((header.index(h) for h in _PRIMARY_OPS if h in header), None)
    if idx is None:
        raise HistoryError(f"{p}: no principal_dx / 主要诊断编码 column")
    out: list[tuple[str, str]] = []
    for row in reader:
        if len(row) > idx and row[idx].strip():
            ops = row[iop].strip() if iop is not None and len(row) > iop else ""
            out.append((norm_diag(row[idx]), ops))
    return tuple(out)


# ---------------------------------------------------------------- input

_HIST_ALIASES: dict[str, tuple[str, ...]] = {
    "year": ("year", "年度", "年份", "结算年度"),
    "discharge_date": ("discharge_date", "dscg_time", "出院日期", "出院时间"),
    "diag": ("main_diag_code", "主要诊断编码", "主要诊断代码", "diag_code", "diagnosis"),
    "ops": ("operations", "手术操作编码", "oprn_codes", "oprn_oprt_code"),
    "classes": ("oprn_classes", "手术操作类别", "操作类别", "oprn_class"),
    "treatment": ("treatment", "治疗方式", "treatment_kind"),
    "cost": ("total_cost", "医疗总费用", "总费用", "medfee_sumamt"),
    "level": ("hospital_level", "医院等级", "医疗机构等级", "level"),
}
_HIST_LOOKUP = {norm_header(a): f for f, al in _HIST_ALIASES.items() for a in al}
# auxiliary subtype columns: aux_<factor> / 辅助分型_<factor> (NDJSON also "aux": {factor: value})
_AUX_PREFIXES = ("aux_", "辅助分型_")


def _aux_factor(header: str) -> str | None:
    h = norm_header(header)
    for prefix in _AUX_PREFIXES:
        if h.startswith(prefix) and len(h) > len(prefix):
            return h[len(prefix) :]
    return None


def _treatment(
    explicit: str, ops: Sequence[str], classes: Sequence[str], intervention_as: str
) -> str:
    if explicit:
        t = TREATMENT_VALUES.get(explicit.strip().lower())
        if t is None:
            raise HistoryError(f"unknown treatment {explicit!r}")
        return t
    if not ops:
        return "conservative"
    if not classes:
        raise HistoryError("operations without oprn_classes or treatment")
    rank = 0
    for c in classes:
        r = TREATMENT_RANK[intervention_as] if c == "intervention" else TREATMENT_RANK.get(c)
        if r is None or c == "conservative":
            raise HistoryError(f"unknown oprn_class {c!r}")
        rank = max(rank, r)
    return RANK_TREATMENT[rank]


def _split_ops(v: Any) -> tuple[list[str], list[str]]:
    """Operations as ``a+b`` text, a list of codes, or a list of [code, class] pairs."""
    if v is None or v == "":
        return [], []
    if isinstance(v, str):
        return [norm_oprn(x) for x in v.split("+") if x.strip()], []
    codes: list[str] = []
    classes: list[str] = []
    for item in v:
        if isinstance(item, str):
            codes.append(norm_oprn(item))
        else:
            codes.append(norm_oprn(str(item[0])))
            classes.append(str(item[1]))
    return codes, classes


def read_history(
    path: str | Path, intervention_as: str = "therapeutic", skipped: list[str] | None = None
) -> Iterator[AnyHistRow]:
    """Historical cases from CSV or NDJSON (see README.md); bad rows are skipped and described
    in ``skipped`` (when given), unreadable files raise HistoryError. Rows carry a seventh
    element, the auxiliary subtypes, when the file has auxiliary columns (keys)."""
    p = Path(path)
    if p.suffix.lower() in (".ndjson", ".jsonl", ".json"):
        yield from _read_ndjson(p, intervention_as, skipped)
    else:
        yield from _read_csv(p, intervention_as, skipped)


def _year_of(year: Any, date: Any) -> int:
    if year not in (None, ""):
        return int(year)
    if date:
        return int(str(date)[:4])
    raise HistoryError("no year or discharge_date")


def _read_csv(p: Path, intervention_as: str, skipped: list[str] | None) -> Iterator[AnyHistRow]:
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise HistoryError(f"{p}: empty file")
    col: dict[str, int] = {}
    aux_cols: list[tuple[str, int]] = []
    for i, h in enumerate(header):
        f = _HIST_LOOKUP.get(norm_header(h))
        if f is not None:
            col.setdefault(f, i)
        elif (factor := _aux_factor(h)) is not None:
            aux_cols.append((factor, i))
    for need in ("diag", "cost"):
        if need not in col:
            raise HistoryError(f"{p}: no {need} column (header: {header})")
    if "year" not in col and "discharge_date" not in col:
        raise HistoryError(f"{p}: no year or discharge_date column")
    iy, idt = col.get("year"), col.get("discharge_date")
    idg, ic = col["diag"], col["cost"]
    io_, icl, itr, ilv = col.get("ops"), col.get("classes"), col.get("treatment"), col.get("level")
    for lineno, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            y_text = row[iy] if iy is not None else None
            year = _year_of(y_text, row[idt] if idt is not None else "")
            ops_text = row[io_] if io_ is not None else ""
            ops = [norm_oprn(x) for x in ops_text.split("+") if x.strip()] if ops_text else []
            cls_text = row[icl] if icl is not None else ""
            classes = [x.strip() for x in cls_text.split("+") if x.strip()] if cls_text else []
            tr = _treatment(row[itr] if itr is not None else "", ops, classes, intervention_as)
            cost = float(row[ic])
            level = row[ilv].strip() if ilv is not None else ""
            if aux_cols:
                aux = tuple((f, row[i].strip()) for f, i in aux_cols if row[i].strip())
                yield (year, row[idg], tuple(ops), tr, level, cost, aux)
            else:
                yield (year, row[idg], tuple(ops), tr, level, cost)
        except (ValueError, IndexError) as e:
            if skipped is not None:
                skipped.append(f"{p.name}:{lineno}: {e}")


def _read_ndjson(p: Path, intervention_as: str, skipped: list[str] | None) -> Iterator[AnyHistRow]:
    dec = msgspec.json.Decoder(dict[str, Any])
    with p.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                d = {_HIST_LOOKUP.get(norm_header(k), k): v for k, v in dec.decode(line).items()}
                codes, classes = _split_ops(d.get("ops"))
                if not classes and isinstance(d.get("classes"), str):
                    classes = [x for x in d["classes"].split("+") if x]
                elif not classes and isinstance(d.get("classes"), list):
                    classes = [str(x) for x in d["classes"]]
                tr = _treatment(str(d.get("treatment") or ""), codes, classes, intervention_as)
                base: HistRow = (
                    _year_of(d.get("year"), d.get("discharge_date")),
                    str(d["diag"]),
                    tuple(codes),
                    tr,
                    str(d.get("level") or ""),
                    float(d["cost"]),
                )
                aux = _ndjson_aux(d)
                yield (*base, aux) if aux is not None else base
            except (ValueError, KeyError, TypeError, msgspec.DecodeError) as e:
                if skipped is not None:
                    skipped.append(f"{p.name}:{lineno}: {e!r}")


def _ndjson_aux(d: dict[str, Any]) -> AuxPairs | None:
    """Auxiliary subtypes of an NDJSON line: ``aux_<factor>`` keys or an ``aux`` object."""
    pairs: dict[str, str] = {}
    seen = False
    obj = d.get("aux")
    if isinstance(obj, dict):
        seen = True
        pairs.update((norm_header(str(k)), str(v).strip()) for k, v in obj.items() if v)
    for k, v in d.items():
        factor = _aux_factor(k)
        if factor is not None:
            seen = True
            if v not in (None, ""):
                pairs[factor] = str(v).strip()
    return tuple(sorted((f, v) for f, v in pairs.items() if v)) if seen else None
