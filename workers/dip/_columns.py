"""Header and value vocabularies of city catalogs, Chinese and English (see README.md).

Headers are matched after trimming, dropping spaces/BOM and lower-casing, so ``病种分值``,
``分值``, ``Score`` and `` score `` all land on the same field.
"""

from __future__ import annotations

from typing import Final

FIELD_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "code": (
        "病种编码",
        "病种代码",
        "病种组合编码",
        "分组编码",
        "dip编码",
        "编码",
        "group_code",
        "code",
    ),
    "kind": ("病种类型", "病种类别", "类型", "kind", "group_kind", "type"),
    "diag": (
        "主要诊断编码",
        "主要诊断代码",
        "主诊断编码",
        "主诊断代码",
        "诊断编码",
        "诊断代码",
        "疾病编码",
        "main_diag_code",
        "diag_code",
        "diagnosis",
        "diag",
    ),
    "name": ("主要诊断名称", "诊断名称", "病种名称", "main_diag_name", "diag_name", "name"),
    "operations": (
        "手术操作编码",
        "主要手术操作编码",
        "主要手术操作代码",
        "主要操作编码",
        "手术操作代码",
        "操作编码",
        "手术编码",
        "operations",
        "oprn_code",
        "oprn_oprt_code",
        "main_oprn_code",
    ),
    "related": (
        "相关手术操作编码",
        "相关操作编码",
        "相关手术编码",
        "related_operations",
        "related",
    ),
    "oprn_name": (
        "手术操作名称",
        "主要手术操作名称",
        "主要操作名称",
        "操作名称",
        "oprn_name",
        "oprn_oprt_name",
    ),
    "treatment": ("治疗方式", "治疗类型", "操作类型", "操作属性", "treatment", "treatment_kind"),
    "score": ("病种分值", "分值", "基准分值", "score", "rw"),
    "ref_cost_all": (
        "次均费用",
        "全市次均费用",
        "平均费用",
        "次均医疗费用",
        "参考费用",
        "ref_cost",
        "mean_cost",
        "avg_cost",
    ),
    "case_count": ("病例数", "例数", "case_count", "cases", "n"),
    "cv": ("变异系数", "cv"),
    "primary_factor": ("基层系数", "基层病种系数", "primary_factor"),
    # 先期分组 rows: the national pre-group a row prices when its own code is not XQ<n>, and
    # whether its operations may be anywhere in the case's list (not only the main one)
    "pre_group": (
        "先期分组编码",
        "国家先期分组编码",
        "国家先期分组",
        "national_pre_group",
        "pre_group",
    ),
    "operations_anywhere": (
        "不限定主要手术操作",
        "不限定为主要手术操作",
        "不限主要手术操作",
        "operations_anywhere",
        "any_operation",
    ),
}

# Insurance funds in cost column suffixes (``次均费用_310``, ``次均费用_3A_职工``) → insutype.
FUND_VALUES: Final[dict[str, str]] = {
    **dict.fromkeys(("310", "职工", "职工医保", "employee", "employees"), "310"),
    **dict.fromkeys(("390", "居民", "城乡居民", "居民医保", "resident", "residents"), "390"),
}

# Per-group level coefficient (DIP 3.0 以病种设置的医疗机构等级系数): an alias + separator +
# level code or name, e.g. ``等级系数_3A``, ``coefficient_2``.
COEF_ALIASES: Final = ("等级系数", "调节系数", "系数", "coefficient", "coef")

# Per-level reference cost: an ``ref_cost_all`` alias + separator + level code or name,
# e.g. ``次均费用_3A``, ``次均费用(三级甲等)``, ``ref_cost:2``.
LEVEL_SEPARATORS: Final = "_:：()（）-[]【】 "

KIND_VALUES: Final[dict[str, str]] = {
    **dict.fromkeys(("核心", "核心病种", "core"), "core"),
    **dict.fromkeys(("综合", "综合病种", "comprehensive"), "comprehensive"),
    **dict.fromkeys(("基层", "基层病种", "primary", "primary_care"), "primary"),
    **dict.fromkeys(("床日", "床日病种", "bed_day", "bedday"), "bed_day"),
    **dict.fromkeys(("排除", "排除病种", "排除表", "exclusion", "excluded"), "exclusion"),
    **dict.fromkeys(
        ("先期分组", "先期分组病种", "先期分组下的核心病种", "pre_group", "pregroup", "pre-group"),
        "pre_group",
    ),
}

# Yes/no cells (``不限定主要手术操作``); empty = no.
BOOL_VALUES: Final[dict[str, bool]] = {
    **dict.fromkeys(("是", "y", "yes", "true", "1", "√"), True),
    **dict.fromkeys(("否", "n", "no", "false", "0", ""), False),
}

TREATMENT_VALUES: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "保守",
            "保守治疗",
            "内科",
            "内科诊疗",
            "内科诊疗组",
            "保守治疗组",
            "conservative",
            "medical",
        ),
        "conservative",
    ),
    **dict.fromkeys(("诊断性操作", "诊断性操作组", "diagnostic"), "diagnostic"),
    **dict.fromkeys(("治疗性操作", "治疗性操作组", "therapeutic"), "therapeutic"),
    **dict.fromkeys(("手术", "相关手术", "相关手术组", "手术组", "surgery"), "surgery"),
}


_UNITS: Final = ("(元)", "（元）", "(分)", "（分）", "(%)", "（%）", "(例)", "（例）")


def norm_header(h: str) -> str:
    """Trimmed, lower-case, without spaces, BOM or a trailing unit such as ``（元）``."""
    n = h.replace("\ufeff", "").replace(" ", "").replace("\u3000", "").replace("\n", "").strip()
    for unit in _UNITS:
        if n.endswith(unit):
            n = n[: -len(unit)]
    return n.lower()


_LOOKUP: Final[dict[str, str]] = {
    norm_header(alias): field for field, aliases in FIELD_ALIASES.items() for alias in aliases
}
_COEF_ALIASES: Final = tuple(sorted((norm_header(a) for a in COEF_ALIASES), key=len, reverse=True))
_COST_ALIASES: Final = tuple(
    sorted((norm_header(a) for a in FIELD_ALIASES["ref_cost_all"]), key=len, reverse=True)
)


def classify_header(h: str) -> tuple[str, str] | None:
    """(field, level token) for a header; level token is '' except for per-level costs."""
    n = norm_header(h)
    f = _LOOKUP.get(n)
    if f is not None:
        return f, ""
    for prefixes, field in ((_COST_ALIASES, "ref_cost_level"), (_COEF_ALIASES, "coef_level")):
        for alias in prefixes:
            if n.startswith(alias):
                token = n[len(alias) :].strip(LEVEL_SEPARATORS)
                if token:
                    return field, token
    return None
