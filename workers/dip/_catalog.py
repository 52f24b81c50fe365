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
- RW_i = m_i / M × scale, M the weighted mean cost of all cases used.
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
from pathlib import Path
from typing import Any, Literal, TextIO

import msgspec

from ._codes import RANK_TREATMENT, TREATMENT_RANK, norm_diag, norm_oprn
from ._columns import TREATMENT_VALUES, norm_header
from ._errors import DipError
from ._model import Group

# (year, main diagnosis, operation codes main first, treatment, hospital level, total cost)
HistRow = tuple[int, str, tuple[str, ...], str, str, float]


class BuildOptions(msgspec.Struct, frozen=True, kw_only=True):
    weights: tuple[float, ...] = (1.0, 2.0, 7.0)
    years: tuple[int, ...] = ()  # ascending; empty = the last len(weights) years in the data
    threshold: int = 15
    scale: float = 1000.0
    weighting: Literal["year_means", "case_weights"] = "year_means"
    related_operations: bool = True
    min_comprehensive_cases: int = 1
    score_decimals: int = 4
    subcategory_length: int = 5
    category_length: int = 3


@dataclass(slots=True)
class CatalogBuild:
    groups: list[Group]
    mean_cost: float  # M
    years: tuple[int, ...]
    cases_used: int
    cases_other_years: int
    cases_dropped: int  # in comprehensive groups below min_comprehensive_cases
    skipped: list[str] = field(default_factory=list)


class HistoryError(DipError, ValueError):
    """The history file cannot be read (missing column, bad value)."""


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


def build_catalog(rows: Iterable[HistRow], options: BuildOptions | None = None) -> CatalogBuild:
    """A catalog from historical cases; deterministic (output sorted by key, codes from keys)."""
    opt = options or BuildOptions()
    sub_len, cat_len = opt.subcategory_length, opt.category_length
    # raw[(year, sub, main, related, treatment, level)] = [n, Σ, Σ²]
    raw: dict[tuple[int, str, str, str, str, str], list[float]] = {}
    for year, diag, ops, treatment, level, cost in rows:
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

    all_years = sorted({k[0] for k in raw})
    years = tuple(opt.years) if opt.years else tuple(all_years[-len(opt.weights) :])
    if len(years) != len(opt.weights):
        raise HistoryError(f"{len(opt.weights)} weights but years {list(years)}")
    yidx = {y: i for i, y in enumerate(years)}
    ny = len(years)

    # combination totals: (sub, main, rel) -> [(treatment, level, year_i, n, s, ss)]
    combos: dict[tuple[str, str, str], list[tuple[str, str, int, int, float, float]]] = {}
    other_years = 0
    for (year, sub, main, rel, tr, lv), (n, s, ss) in raw.items():
        i = yidx.get(year)
        if i is None:
            other_years += int(n)
            continue
        combos.setdefault((sub, main, rel), []).append((tr, lv, i, int(n), s, ss))

    def count(parts: list[tuple[str, str, int, int, float, float]]) -> int:
        return sum(p[3] for p in parts)

    core_keys = {k for k, parts in combos.items() if k[2] and count(parts) >= opt.threshold}
    related_of: dict[tuple[str, str], list[tuple[frozenset[str], str]]] = {}
    for sub, main, rel in core_keys:
        related_of.setdefault((sub, main), []).append((frozenset(rel.split("+")), rel))
    for cands in related_of.values():
        cands.sort(key=lambda c: (-len(c[0]), c[1]))

    # route every combination to its core candidate key (as the grouper would)
    routed: dict[tuple[str, str, str], list[tuple[str, str, int, int, float, float]]] = {}
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

    groups: list[Group] = []
    comp: dict[tuple[str, str], list[tuple[str, str, int, int, float, float]]] = {}
    core_accs: list[tuple[tuple[str, str, str], dict[str, _Acc], _Acc]] = []
    total = _Acc(ny)
    for rkey in sorted(routed):
        parts = routed[rkey]
        sub = rkey[0]
        if rkey[2] or count(parts) >= opt.threshold:
            by_level, acc = _accumulate(parts, ny)
            core_accs.append((rkey, by_level, acc))
            total.merge(acc)
        else:
            for p in parts:
                comp.setdefault((sub[:cat_len], p[0]), []).append(p)

    comp_accs: list[tuple[tuple[str, str], dict[str, _Acc], _Acc]] = []
    dropped = 0
    for ckey in sorted(comp, key=lambda k: (k[0], TREATMENT_RANK.get(k[1], 9), k[1])):
        parts = comp[ckey]
        if count(parts) < opt.min_comprehensive_cases:
            dropped += count(parts)
            continue
        by_level, acc = _accumulate(parts, ny)
        comp_accs.append((ckey, by_level, acc))
        total.merge(acc)

    w, mode = opt.weights, opt.weighting
    big_m = _mean(total, w, mode)

    def rw(m: float) -> float:
        return round(m / big_m * opt.scale, opt.score_decimals) if big_m else 0.0

    def money(m: float) -> Decimal:
        return Decimal(repr(m)).quantize(Decimal("0.01"))

    for (sub, main, rel), by_level, acc in core_accs:
        m = _mean(acc, w, mode)
        ops = tuple(x for x in [main, *rel.split("+")] if x)
        groups.append(
            Group(
                code=f"{sub}/{'+'.join(ops) if ops else 'conservative'}",
                kind="core",
                diag=sub,
                score=rw(m),
                operations=ops,
                ref_cost_all=money(m),
                ref_costs={lv: money(_mean(a, w, mode)) for lv, a in sorted(by_level.items())},
                case_count=acc.count(),
                cv=round(_cv(acc), 4),
            )
        )
    for (cat, tr), by_level, acc in comp_accs:
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
    )


def _add(acc: _Acc, i: int, n: int, s: float, ss: float) -> None:
    acc.n[i] += n
    acc.s[i] += s
    acc.ss[i] += ss


def _accumulate(
    parts: list[tuple[str, str, int, int, float, float]], ny: int
) -> tuple[dict[str, _Acc], _Acc]:
    """One group's parts summed: per hospital level (parts without a level count only in the
    total) and in total."""
    by_level: dict[str, _Acc] = {}
    acc = _Acc(ny)
    for _tr, lv, i, n, s, ss in parts:
        _add(acc, i, n, s, ss)
        if lv:
            _add(by_level.setdefault(lv, _Acc(ny)), i, n, s, ss)
    return by_level, acc


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
) -> Iterator[HistRow]:
    """Historical cases from CSV or NDJSON (see README.md); bad rows are skipped and described
    in ``skipped`` (when given), unreadable files raise HistoryError."""
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


def _read_csv(p: Path, intervention_as: str, skipped: list[str] | None) -> Iterator[HistRow]:
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
    for i, h in enumerate(header):
        f = _HIST_LOOKUP.get(norm_header(h))
        if f is not None:
            col.setdefault(f, i)
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
            yield (year, row[idg], tuple(ops), tr, level, cost)
        except (ValueError, IndexError) as e:
            if skipped is not None:
                skipped.append(f"{p.name}:{lineno}: {e}")


def _read_ndjson(p: Path, intervention_as: str, skipped: list[str] | None) -> Iterator[HistRow]:
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
                yield (
                    _year_of(d.get("year"), d.get("discharge_date")),
                    str(d["diag"]),
                    tuple(codes),
                    tr,
                    str(d.get("level") or ""),
                    float(d["cost"]),
                )
            except (ValueError, KeyError, TypeError, msgspec.DecodeError) as e:
                if skipped is not None:
                    skipped.append(f"{p.name}:{lineno}: {e!r}")
