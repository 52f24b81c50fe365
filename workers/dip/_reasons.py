"""Why a case is not scored (or not grouped): the one catalogue, for the pipeline and the
offline commands alike.

The IDs are on the wire (`unscored.rule` of `dip.case.grouped.v1` / `dip.case.scored.*.v1`)
and in the database (`scored_cases.unscored_rule`): never rename one. Each reason becomes the
project's one error shape (`contracts.Problem`) through `contracts.Reason.problem`.
"""

from __future__ import annotations

from typing import Final

from contracts import Reason

NO_LEVEL: Final = Reason(
    rule="DIP_NO_LEVEL",
    field="fixmedins_code",
    message="医疗机构未登记等级，无法计分",
    message_en="hospital not in the registry: no level coefficient",
)
UNMAPPABLE: Final = Reason(
    rule="DIP_UNMAPPABLE",
    field="$",
    message="{message}",
    message_en="{message_en}",
)
NO_RULES: Final = Reason(
    rule="DIP_NO_RULES",
    field="mdtrtarea_admvs",
    message="就医地 {city} 无 {year} 清算年度的 DIP 规则，暂未计分",
    message_en="no DIP rules in force for treating city {city}, clearing year {year}",
)
UNGROUPED: Final = Reason(
    rule="DIP_UNGROUPED",
    field="main_diag_code",
    message="病例未能入组：{detail}",
    message_en="case could not be grouped: {detail}",
)
"""Only when grouping without scoring (`dipgw group`): scoring prices an ungrouped case by
the city's cost fraction, or reports `DIP_SCORE`."""
SCORE: Final = Reason(
    rule="DIP_SCORE",
    field="$",
    message="无法按就医地规则计分：{detail}",
    message_en="cannot be scored under the treating city's rules: {detail}",
)
ROUTE: Final = Reason(
    rule="DIP_ROUTE",
    field="mdtrtarea_admvs",
    message="区划代码无法路由：{detail}",
    message_en="regions cannot be routed: {detail}",
)
INTERNAL: Final = Reason(
    rule="DIP_INTERNAL",
    field="$",
    message="计分程序错误：{detail}",
    message_en="internal error while scoring: {detail}",
)

WITHDRAWN: Final = Reason(
    rule="DIP_WITHDRAWN",
    field="setlinfo.stas_type",
    message="结算清单已撤回（状态分类 0 未提交），其质控与分组结果作废，不计分；重新提交后再次计分",
    message_en=(
        "settlement list withdrawn by the hospital (stas_type 0): its grouping and score no "
        "longer count; it is scored again when re-submitted"
    ),
)
"""The list's latest revision has `stas_type` 0 (national 4102, 重点说明: status 0 makes the
list's quality-control and grouping results invalid). Its case travels on, to every recipient
that had it, so a city learns that a case it received is withdrawn."""

REASONS: Final = {
    r.rule: r
    for r in (NO_LEVEL, UNMAPPABLE, NO_RULES, UNGROUPED, SCORE, ROUTE, INTERNAL, WITHDRAWN)
}
"""Every reason by its ID."""
