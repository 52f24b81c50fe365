"""Scoring worker: `dip.case.grouped.v1` → `dip.case.scored.<admdvs>.v1` (+ the internal copy).

A case is scored under the TREATING city's rules in force for its clearing year by
`workers.dip.assess` (the grouping's result is used as is unless the rules changed since; the
route is computed once, for its scope and its destinations) and published to the treating
city's topic; a cross-city case also to the insured city's topic (role `insured`); a case
insured in another province also to the out-of-province topic. One more copy, with the case
facts, goes to `scored_all`, which the scored sink stores and `dipgw rescore` re-scores from. A
case that cannot be scored goes the same ways marked `unscored`, with the reason (one that
cannot be routed, `DIP_ROUTE`, to `scored_all` only). A withdrawn list (marked `DIP_WITHDRAWN`
by grouping) goes the same ways, unscored, with no group or score: a city that received the
case learns it no longer counts, and the scored sink's row replaces its score. Per-city topics
are created on first use (the broker does not auto-create them). Cases marked `DIP_NO_RULES`
are scored as soon as their city's rules for their clearing year are imported
(`workers.rescore`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from aiokafka import ConsumerRecord

from adapters.runtime.kafka import ensure_topics
from adapters.runtime.logs import get_logger
from adapters.runtime.settings import Settings
from contracts import Problem, city_of
from contracts.messages import (
    ENCODER,
    GROUPED_DECODER,
    GroupedCase,
    InternalScoredCase,
    ScoredCase,
)
from workers._deadletter import apply_each_or_dead_letter
from workers._runner import decode_each
from workers.dip import (
    Route,
    ScoreResult,
    assess,
    group_name,
    reasons,
    route_case,
    rules_key,
)
from workers.grouping import given
from workers.rules_store import RulesStore, StoredRules

if TYPE_CHECKING:
    from workers.registry import WorkerContext

log = get_logger("dipgw.scoring")


def scored_fields(score: ScoreResult) -> dict[str, object]:
    """The ScoreResult's fields a ScoredCase carries."""
    return {
        "group_status": score.status,
        "group_code": score.group_code,
        "deviation": score.deviation,
        "ratio": score.ratio,
        "group_score": score.group_score,
        "level_coefficient": score.level_coefficient,
        "adjustment": score.adjustment,
        "case_score": score.case_score,
        "point_value": score.point_value,
        "estimated_payment": score.estimated_payment,
        "special_review": score.special_review,
        "ruleset_version": score.ruleset_version,
        "catalog_version": score.catalog_version,
    }


def is_withdrawn(g: GroupedCase) -> bool:
    """Whether grouping found the list withdrawn (`stas_type` 0): marked `DIP_WITHDRAWN`."""
    return g.unscored is not None and g.unscored.rule == reasons.WITHDRAWN.rule


Outgoing = tuple[InternalScoredCase, Route | None]
"""A treating-role scored case (with its facts) and its route (None: it cannot be routed,
`DIP_ROUTE`)."""


def score_grouped(
    g: GroupedCase, stored: StoredRules | None, settings: Settings, now: datetime
) -> Outgoing:
    """The treating-role scored case (with facts) of one grouped case, scored or marked why not
    (`workers.dip.assess`), and its route. `stored`: the rules in force fetched for the case
    (`workers.dip.rules_key`); the grouping is used as is when made under them."""
    facts = g.facts
    out: dict[str, Any] = {
        "receipt_id": g.receipt_id,
        "case_key": g.case_key,
        "fixmedins_code": g.fixmedins_code,
        "setl_id": g.setl_id,
        "revision": g.revision,
        "received_at": g.received_at,
        "scored_at": now,
        "role": "treating",
        "treating_admdvs": g.treating_admdvs,
        "insured_admdvs": g.insured_admdvs,
        "treating_city": city_of(g.treating_admdvs) or g.treating_admdvs,
        "insured_city": city_of(g.insured_admdvs) or g.insured_admdvs,
        "clearing_year": g.clearing_year,
        "status": "unscored",
        "facts": facts,
    }
    province, template = settings.worker.province, settings.topics.scored
    if facts is None or g.clearing_year is None:  # not mapped: the grouping stage said why
        routed = route_case(g.insured_admdvs, g.treating_admdvs, province, template)
        if isinstance(routed, Problem):
            return InternalScoredCase(**out, scope="same_city", unscored=routed), None
        return InternalScoredCase(**out, scope=routed.scope, unscored=g.unscored), routed
    out.update(
        hospital_level=facts.hospital_level or None,  # "": a withdrawn list of no registered level
        insutype=facts.insutype,
        total_cost=facts.total_cost,
        main_diag_code=facts.main_diag_code,
        operations=[code for code, _ in facts.operations],
    )
    same_rules = stored is not None and g.ruleset_id == stored.ruleset_id
    try:
        a = assess(
            facts,
            given(stored),
            province=province,
            received_at=g.received_at,
            grouping=g.grouping if same_rules else None,  # else: regrouped under the new rules
            topic_template=template,
            withdrawn=is_withdrawn(g),
        )
    except Exception as exc:  # a bug in the core must not stall the partition behind this case
        log.exception("scoring.failed", case_key=g.case_key)
        routed = route_case(g.insured_admdvs, g.treating_admdvs, province, template)
        if isinstance(routed, Problem):
            return InternalScoredCase(**out, scope="same_city", unscored=routed), None
        internal = reasons.INTERNAL.problem(detail=type(exc).__name__)
        return InternalScoredCase(**out, scope=routed.scope, unscored=internal), routed
    out["scope"] = a.route.scope if a.route is not None else "same_city"
    if a.rules is not None and a.grouping is not None and stored is not None:
        out.update(
            ruleset_id=stored.ruleset_id,
            ruleset_version=a.rules.version_id,
            catalog_version=a.rules.catalog_version,
            group_status=a.grouping.status,
            group_code=a.grouping.group_code,
            group_name=group_name(a.rules, a.grouping.group_code),
            treatment=a.grouping.treatment or None,
        )
    if a.score is None:
        return InternalScoredCase(**out, unscored=a.reason), a.route
    out.update(scored_fields(a.score), status="scored")
    return InternalScoredCase(**out), a.route


def destinations(
    scored: InternalScoredCase, route: Route | None, settings: Settings
) -> list[tuple[str, ScoredCase]]:
    """(topic, message) for every recipient of a treating-role scored case along its route,
    the internal `scored_all` copy (with facts) included; the recipients' copies are the
    public type, without facts. No route (`DIP_ROUTE`): the internal copy only."""
    public = scored.public()
    out: list[tuple[str, ScoredCase]] = [(settings.topics.scored_all, scored)]
    if route is None:
        return out
    for target in route.targets:
        if target.role == "treating":
            out.append((target.topic, public))
        elif target.role == "insured":
            out.append((target.topic, msgspec.structs.replace(public, role="insured")))
        else:
            out.append(
                (
                    settings.topics.out_of_province,
                    msgspec.structs.replace(public, role="out_of_province"),
                )
            )
    return out


class TopicCache:
    """Creates per-city topics on first use; remembers which exist."""

    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self._settings = settings
        self._bootstrap = bootstrap
        self._known: set[str] = set()
        self._lock = asyncio.Lock()

    async def ensure(self, topics: Iterable[str]) -> None:
        missing = sorted(set(topics) - self._known)
        if not missing:
            return
        async with self._lock:
            missing = sorted(set(missing) - self._known)
            if missing:
                await ensure_topics(self._settings, self._bootstrap, missing)
                self._known.update(missing)


async def publish(
    producer: Any, topics: TopicCache, settings: Settings, cases: list[Outgoing]
) -> None:
    """Publish scored cases to all their destinations; returns once every send is acked."""
    sends = [(t, m) for case, route in cases for t, m in destinations(case, route, settings)]
    await topics.ensure(t for t, _ in sends)
    futures = [
        await producer.send(topic, key=msg.case_key.encode(), value=ENCODER.encode(msg))
        for topic, msg in sends
    ]
    await asyncio.gather(*futures)


class Scorer:
    """The scoring worker's handler; it also owns the re-scorer of cases waiting for rules
    (`workers.rescore.run_waiting_rescorer`: a city's rules for a clearing year, once
    imported, score the cases stored `DIP_NO_RULES` meanwhile)."""

    def __init__(self, context: WorkerContext) -> None:
        self._settings = context.settings
        self._pool = context.pool
        self._producer = context.producer
        self._store = RulesStore(context.pool, ttl_s=context.settings.worker.rules_cache_s)
        self._topics = TopicCache(context.settings, context.bootstrap)
        self._clock = context.clock
        self._waiting: asyncio.Task[None] | None = None
        from workers.rescore import run_waiting_rescorer

        # Runs as long as the worker task that built this handler (its restarts included).
        owner = asyncio.current_task()
        if owner is not None:
            self._waiting = asyncio.create_task(
                run_waiting_rescorer(context, owner), name="rescore-waiting"
            )

    async def handle(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        await apply_each_or_dead_letter(self._pool, "scoring", records, self._apply)

    async def _apply(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        now = self._clock()
        cases = []
        rules_of = self._store.memo()
        for _, g in decode_each(records, GROUPED_DECODER, "scoring"):
            key = rules_key(g.facts, g.received_at) if g.facts is not None else None
            stored = await rules_of(*key) if key is not None else None
            cases.append(score_grouped(g, stored, self._settings, now))
        if cases:
            await publish(self._producer, self._topics, self._settings, cases)
