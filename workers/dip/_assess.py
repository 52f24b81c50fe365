"""Assess one case: which rules, which group, what score, where it goes — or why not.

The one decision, for every caller: the grouping and scoring workers, `dipgw rescore` and the
offline `dipgw group` / `dipgw score`. The rules are the TREATING city's (`contracts.city_of`)
for the case's clearing year (`clearing_year`); when that city has no rules for that year the
case is not scored (`DIP_NO_RULES`), never scored under another year's rules. Every reason a
case is not scored comes from the one catalogue (`_reasons`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Literal

import msgspec

from contracts import CST, Problem, city_of
from contracts.dip import CaseFacts, GroupResult, ScoreResult

from . import _reasons as reasons
from ._grouping import group
from ._model import RuleSet
from ._routing import DEFAULT_TOPIC, Route, route
from ._scoring import ScoreError, score

RulesFor = Callable[[str, int], RuleSet | None]
"""(treating city ``xxxx00``, clearing year) → the rules in force, or None."""

Status = Literal["scored", "grouped", "unscored"]


def clearing_year(discharge_date: str, received_at: datetime) -> int:
    """The clearing year of a case: its discharge year, else the year it was received (CST)."""
    if len(discharge_date) >= 4 and discharge_date[:4].isdigit():
        return int(discharge_date[:4])
    return received_at.astimezone(CST).year


def rules_key(facts: CaseFacts, received_at: datetime) -> tuple[str, int] | None:
    """The (treating city, clearing year) whose rules apply to the case; None when the treating
    region is no region code (no rules can apply). For callers that fetch the rules first."""
    city = city_of(facts.treating_admdvs)
    if city is None:
        return None
    return city, clearing_year(facts.discharge_date, received_at)


def route_case(
    insured_admdvs: str,
    treating_admdvs: str,
    province: str,
    topic_template: str = DEFAULT_TOPIC,
) -> Route | Problem:
    """The case's route, or the `DIP_ROUTE` reason it has none."""
    try:
        return route(insured_admdvs, treating_admdvs, province, topic_template)
    except ValueError as exc:
        return reasons.ROUTE.problem(detail=exc)


class RulesBook:
    """Rule sets by treating city and clearing year (the offline commands' ``--rules``);
    callable as a `RulesFor`. The first rule set given for a city and year is the one used."""

    def __init__(self, rulesets: Iterable[RuleSet]) -> None:
        self._by: dict[tuple[str, int], RuleSet] = {}
        for rs in rulesets:
            self._by.setdefault((city_of(rs.city) or rs.city, rs.clearing_year), rs)

    def __call__(self, city: str, year: int) -> RuleSet | None:
        return self._by.get((city, year))


class Assessment(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one case. ``status``: ``scored``; ``grouped`` (grouping only, a group
    found); ``unscored`` with the ``reason`` (the results reached before it are kept)."""

    case_key: str
    status: Status
    clearing_year: int
    route: Route | None = None
    rules: RuleSet | None = None
    grouping: GroupResult | None = None
    score: ScoreResult | None = None
    reason: Problem | None = None


def assess(
    facts: CaseFacts,
    rules_for: RulesFor,
    *,
    province: str | None,
    received_at: datetime,
    with_score: bool = True,
    grouping: GroupResult | None = None,
    topic_template: str = DEFAULT_TOPIC,
    withdrawn: bool = False,
) -> Assessment:
    """Route, pick the rules, group and (`with_score`) score one case.

    ``province``: the gateway's province (``"44"`` or ``"440000"``) the case is routed in;
    None does not route (the grouping stage: the scoring stage routes). ``received_at``: when
    the case arrived, its clearing year when the discharge date has none. ``grouping``: the
    case's earlier grouping, used as is when made under the same rules (no regrouping).
    Grouping only, an ungrouped case is unscored (`DIP_UNGROUPED`); scored, it is priced by
    the city's cost fraction or unscored (`DIP_SCORE`). ``withdrawn``: the list's status is 0
    (national 4102): routed, so its recipients learn it, but neither grouped nor scored
    (`DIP_WITHDRAWN`), whatever the rules. Raises only on a bug of the core.
    """
    year = clearing_year(facts.discharge_date, received_at)

    def unscored(
        reason: Problem, rules: RuleSet | None = None, grouping: GroupResult | None = None
    ) -> Assessment:
        return Assessment(
            case_key=facts.case_key,
            status="unscored",
            clearing_year=year,
            route=routed,
            rules=rules,
            grouping=grouping,
            reason=reason,
        )

    routed: Route | None = None
    if province is not None:
        r = route_case(facts.insured_admdvs, facts.treating_admdvs, province, topic_template)
        if isinstance(r, Problem):
            return unscored(r)
        routed = r
    if withdrawn:
        return unscored(reasons.WITHDRAWN.problem())
    if not facts.hospital_level:
        return unscored(reasons.NO_LEVEL.problem())
    if not facts.main_diag_code.strip():  # what the pipeline's mapping refuses
        return unscored(
            reasons.UNMAPPABLE.problem("diseinfo", message="缺少诊断", message_en="no diagnosis")
        )
    city = city_of(facts.treating_admdvs)
    rules = rules_for(city, year) if city is not None else None
    if rules is None:
        return unscored(reasons.NO_RULES.problem(city=city or facts.treating_admdvs, year=year))
    g = grouping
    if g is None or g.ruleset_version != rules.version_id:
        g = group(facts, rules)
    if not with_score:
        if g.status == "ungrouped":
            return unscored(reasons.UNGROUPED.problem(detail=g.reason), rules=rules, grouping=g)
        return Assessment(
            case_key=facts.case_key,
            status="grouped",
            clearing_year=year,
            route=routed,
            rules=rules,
            grouping=g,
        )
    try:
        s = score(g, rules, facts)
    except ScoreError as exc:
        return unscored(
            reasons.SCORE.problem(exc.field, detail=exc.message), rules=rules, grouping=g
        )
    return Assessment(
        case_key=facts.case_key,
        status="scored",
        clearing_year=year,
        route=routed,
        rules=rules,
        grouping=g,
        score=s,
    )
