"""Loading a city's rules: a TOML policy file that names its catalog (CSV or XLSX).

The catalog is read as cities publish it; `_columns` maps Chinese or English headers. A rules
file may also be a JSON document produced by `encode_ruleset` (how the service stores it).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import tomllib
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, cast

import msgspec

from ._codes import norm_diag, norm_oprn
from ._columns import (
    BOOL_VALUES,
    FUND_VALUES,
    KIND_VALUES,
    LEVEL_SEPARATORS,
    TREATMENT_VALUES,
    classify_header,
)
from ._index import RuleSetError, build_index, check_used
from ._model import Exclusion, Group, Level, Policy, PreGroupRule, RuleSet, decode_ruleset
from ._national import on_primary_list
from ._pregroups import ALL_DIAGNOSES, PreGroupError, national_id, resolve_pre_groups

_OP_SEPARATORS = ("；", ";", "、", ",", "，")


def read_table(path: Path) -> list[list[str]]:
    """Rows of a CSV (UTF-8 with or without BOM, else GB18030) or the first XLSX sheet."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import openpyxl  # type: ignore[import-untyped]

        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            ws = wb.worksheets[0]
            return [
                ["" if v is None else _cell(v) for v in row]
                for row in ws.iter_rows(values_only=True)
            ]
        finally:
            wb.close()
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    return [row for row in csv.reader(io.StringIO(text)) if any(c.strip() for c in row)]


def _cell(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _num(text: str, what: str, row: int) -> Decimal | None:
    t = text.strip().replace(",", "").replace("，", "")
    if not t:
        return None
    try:
        return Decimal(t)
    except InvalidOperation:
        raise RuleSetError(f"catalog row {row}: {what} {text!r} is not a number") from None


def _ops(text: str) -> list[str]:
    t = text.strip()
    for sep in _OP_SEPARATORS:
        t = t.replace(sep, "+")
    return ["|".join(norm_oprn(a) for a in s.split("|")) for s in t.split("+") if s.strip()]


def _level_resolver(levels: Sequence[Level]) -> dict[str, str]:
    out: dict[str, str] = {}
    for lv in levels:
        out[lv.code.lower()] = lv.code
        if lv.name:
            out[lv.name.lower()] = lv.code
    return out


def _header_row(rows: Sequence[Sequence[str]]) -> int:
    """Cities often put a title and notes above the header: take the first of the first ten
    rows that names both a group code and a diagnosis column."""
    if not rows:
        raise RuleSetError("catalog is empty")
    for i, row in enumerate(rows[:10]):
        fields = {c[0] for c in map(classify_header, row) if c is not None}
        if {"code", "diag"} <= fields:
            return i
    return 0


def _level_and_fund(
    token: str, levels: dict[str, str], header: str
) -> tuple[str | None, str | None]:
    """A column suffix → (level code, fund insutype): ``3A``, ``310``, ``职工``, ``3A_310``,
    ``三级甲等(居民)``."""
    if token in levels:
        return levels[token], None
    if token in FUND_VALUES:
        return None, FUND_VALUES[token]
    parts = [p for p in re.split(f"[{re.escape(LEVEL_SEPARATORS)}]", token) if p]
    if len(parts) == 2:
        for lv, fund in (parts, parts[::-1]):
            if lv in levels and fund in FUND_VALUES:
                return levels[lv], FUND_VALUES[fund]
    raise RuleSetError(f"catalog column {header!r}: unknown hospital level or fund {token!r}")


def parse_catalog(
    rows: Sequence[Sequence[str]],
    levels: Sequence[Level],
    *,
    national_primary: bool = False,
) -> tuple[list[Group], list[Exclusion]]:
    """Groups and exclusions from a header row + data rows (see README.md for the columns).

    ``national_primary``: a group whose kind the catalog does not state becomes 基层病种 when
    it is on the national DIP 3.0 list; a kind the city states wins."""
    start = _header_row(rows)
    header = rows[start]
    resolve = _level_resolver(levels)
    cols: dict[str, int] = {}
    level_cols: dict[int, str] = {}
    fund_cols: dict[int, tuple[str | None, str]] = {}
    coef_cols: dict[int, str] = {}
    for i, h in enumerate(header):
        c = classify_header(h)
        if c is None:
            continue
        field, token = c
        if field in ("ref_cost_level", "coef_level"):
            code, fund = _level_and_fund(token, resolve, h)
            if fund is not None:
                if field == "coef_level":
                    raise RuleSetError(
                        f"catalog column {h!r}: per-fund group coefficients are not supported "
                        "(use fund_coefficients of [[levels]] or [[hospitals]])"
                    )
                fund_cols[i] = (code, fund)
            elif code is not None:
                (level_cols if field == "ref_cost_level" else coef_cols)[i] = code
        else:
            cols.setdefault(field, i)
    for need in ("code", "diag"):
        if need not in cols:
            raise RuleSetError(f"catalog has no {need} column (header: {list(header)})")

    def get(row: Sequence[str], field: str) -> str:
        i = cols.get(field)
        return row[i].strip() if i is not None and i < len(row) and row[i] is not None else ""

    groups: list[Group] = []
    exclusions: list[Exclusion] = []
    for n, row in enumerate(rows[start + 1 :], start=start + 2):
        code = get(row, "code")
        diag_text = get(row, "diag")
        diag = norm_diag(diag_text)
        ops = _ops(get(row, "operations")) + _ops(get(row, "related"))
        kind_text = get(row, "kind").lower()
        treat_text = get(row, "treatment").lower()
        if kind_text:
            kind = KIND_VALUES.get(kind_text)
            if kind is None:
                raise RuleSetError(f"catalog row {n}: unknown group kind {kind_text!r}")
        else:
            kind = "comprehensive" if len(diag) <= 3 and treat_text else "core"
            if kind == "core" and national_primary and on_primary_list(diag, tuple(ops)):
                kind = "primary"
        if kind == "exclusion":
            if diag:
                exclusions.append(Exclusion(code=diag, target="diagnosis", name=get(row, "name")))
            for op in ops:
                exclusions.append(Exclusion(code=op, target="operation"))
            if not diag and not ops:
                raise RuleSetError(f"catalog row {n}: exclusion without diagnosis or operation")
            continue
        if not code:
            raise RuleSetError(f"catalog row {n}: no group code")
        anywhere_text = get(row, "operations_anywhere").lower()
        anywhere = BOOL_VALUES.get(anywhere_text)
        if anywhere is None:
            raise RuleSetError(
                f"catalog row {n}: 不限定主要手术操作 {anywhere_text!r} is not 是/否"
            )
        pre_text = get(row, "pre_group")
        pre_rule = None
        if kind == "pre_group":
            if diag_text.lower() in ALL_DIAGNOSES:
                diag = ""
            nat = national_id(pre_text or code)
            if pre_text and not nat:
                raise RuleSetError(
                    f"catalog row {n}: 先期分组编码 {pre_text!r} is not a national pre-group"
                )
            if any(sep in get(row, c) for c in ("operations", "related") for sep in _OP_SEPARATORS):
                raise RuleSetError(
                    f"catalog row {n}: pre-group {code}: write alternative operations with '|' "
                    "and operations all required with '+' (the national list's ';' is '|' here)"
                )
            pre_rule = PreGroupRule(national=nat, operations_anywhere=anywhere)
        elif anywhere or pre_text:
            raise RuleSetError(
                f"catalog row {n}: group {code}: 不限定主要手术操作 / 先期分组编码 are for "
                "pre-group (先期分组) rows only"
            )
        if not diag and kind != "pre_group":
            raise RuleSetError(f"catalog row {n}: group {code} has no main diagnosis")
        treatment = None
        if treat_text:
            treatment = TREATMENT_VALUES.get(treat_text)
            if treatment is None:
                raise RuleSetError(f"catalog row {n}: unknown treatment {treat_text!r}")
        if kind == "comprehensive" and treatment is None:
            raise RuleSetError(f"catalog row {n}: comprehensive group {code} needs a treatment")
        score = _num(get(row, "score"), "score", n)
        if score is None:
            raise RuleSetError(f"catalog row {n}: group {code} has no score")
        ref_costs: dict[str, Decimal] = {}
        for i, lv in level_cols.items():
            v = _num(row[i] if i < len(row) else "", f"cost for level {lv}", n)
            if v is not None:
                ref_costs[lv] = v
        fund_costs: dict[str, dict[str, Decimal]] = {}
        fund_all: dict[str, Decimal] = {}
        for i, (lv_or_none, fund) in fund_cols.items():
            v = _num(row[i] if i < len(row) else "", f"cost for fund {fund}", n)
            if v is None:
                continue
            if lv_or_none is None:
                fund_all[fund] = v
            else:
                fund_costs.setdefault(fund, {})[lv_or_none] = v
        primary_factor = _num(get(row, "primary_factor"), "基层系数", n)
        coefs: dict[str, float] = {}
        for i, lv in coef_cols.items():
            k = _num(row[i] if i < len(row) else "", f"coefficient for level {lv}", n)
            if k is not None:
                coefs[lv] = float(k)
        count = _num(get(row, "case_count"), "case count", n)
        cv = _num(get(row, "cv"), "cv", n)
        groups.append(
            Group(
                code=code,
                kind=cast(Any, kind),
                diag=diag,
                score=float(score),
                name=get(row, "name"),
                operations=tuple(ops),
                oprn_name=get(row, "oprn_name"),
                treatment=cast(Any, treatment),
                ref_cost_all=_num(get(row, "ref_cost_all"), "reference cost", n),
                ref_costs=ref_costs,
                level_coefficients=coefs,
                case_count=None if count is None else int(count),
                cv=None if cv is None else float(cv),
                fund_ref_cost_all=fund_all,
                fund_ref_costs=fund_costs,
                primary_factor=None if primary_factor is None else float(primary_factor),
                pre_group=pre_rule,
            )
        )
    return groups, exclusions


def make_ruleset(
    policy: Policy, groups: Iterable[Group], exclusions: Iterable[Exclusion] = ()
) -> RuleSet:
    """Assemble and validate (builds the index once so inconsistencies fail at load time, and
    refuses what the engine would ignore: `check_used`)."""
    try:
        resolved = resolve_pre_groups(policy, groups)
    except PreGroupError as e:
        raise RuleSetError(str(e)) from None
    rs = RuleSet(policy=policy, groups=resolved, exclusions=tuple(exclusions))
    check_used(rs.policy, rs.groups)
    build_index(rs)
    return rs


# Options a city may switch off: TOML has no null, so they take the string "none".
_NULLABLE: dict[str, tuple[str, ...]] = {
    "deviation": ("low_threshold", "high_threshold", "extreme_threshold", "high_offset"),
    "special_review": ("min_ratio", "min_inpatient_days"),
    "unmatched": ("zero_score_cost_fraction", "ungrouped_cost_fraction"),
}


def load_policy(data: dict[str, Any]) -> Policy:
    """The policy from TOML data; ``"none"`` switches off a threshold; unknown keys are errors
    (a misspelt option would otherwise be silently ignored)."""
    data = dict(data)
    for table, keys in _NULLABLE.items():
        section = data.get(table)
        if isinstance(section, dict):
            data[table] = {
                k: None if k in keys and isinstance(v, str) and v.lower() == "none" else v
                for k, v in section.items()
            }
    try:
        return msgspec.convert(data, Policy)
    except msgspec.ValidationError as e:
        raise RuleSetError(f"policy: {e}") from None


def load_rules(path: str | Path, catalog: str | Path | None = None) -> RuleSet:
    """A RuleSet from a TOML policy (its ``catalog`` key, relative to the TOML file, or
    ``catalog``) or from a JSON rule-set document."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        try:
            rs = decode_ruleset(p.read_bytes())
        except msgspec.ValidationError as e:
            raise RuleSetError(f"{p}: {e}") from None
        check_used(rs.policy, rs.groups)
        build_index(rs)
        return rs
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise RuleSetError(f"{p}: {e}") from None
    cat_name = data.pop("catalog", None)
    cat_path = Path(catalog) if catalog is not None else None
    if cat_path is None:
        if not isinstance(cat_name, str):
            raise RuleSetError(f"{p}: no catalog file named (key 'catalog')")
        cat_path = p.parent / cat_name
    rows = read_table(cat_path)
    if not data.get("catalog_version"):
        digest = hashlib.sha256(cat_path.read_bytes()).hexdigest()[:12]
        data["catalog_version"] = f"{cat_path.name}@{digest}"
    policy = load_policy(data)
    groups, exclusions = parse_catalog(
        rows, policy.levels, national_primary=policy.primary.national_list
    )
    return make_ruleset(policy, groups, exclusions)
