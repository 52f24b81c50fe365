"""Grouping worker: `dip.settlement.accepted.v1` → `dip.case.grouped.v1`.

Maps each accepted upload to `CaseFacts` (hospital level from the registry), fetches the rules
in force of the TREATING city for the case's clearing year and groups it with
`workers.dip.assess` (the one decision of rules, group, score and route). A case that cannot be
grouped — unmappable, unknown hospital, no rules in force — is still published, marked with
the reason (`workers.dip.reasons`), so nothing accepted is lost. A withdrawn list (`stas_type`
0, national 4102) is not grouped: it travels on marked `DIP_WITHDRAWN` (with its facts, when
they map, so scoring routes it to every city that had it).
The output is produced and acknowledged before the runner commits the input offsets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
from aiokafka import ConsumerRecord

from adapters.runtime.logs import get_logger
from contracts.messages import ACCEPTED_DECODER, ENCODER, AcceptedSettlement, GroupedCase
from workers._deadletter import apply_each_or_dead_letter
from workers._runner import decode_each
from workers.casefacts_map import MappingError, ParsedDocument, case_facts, parse, withdrawn
from workers.dip import CaseFacts, RuleSet, RulesFor, assess, clearing_year, reasons, rules_key
from workers.rules_store import RulesStore, StoredRules

if TYPE_CHECKING:
    from workers.registry import WorkerContext

log = get_logger("dipgw.grouping")


class HospitalLevels:
    """Hospital code → level tier from the registry, cached for `ttl_s` (levels rarely change).

    Only a level found is cached, as the rules store does: a hospital registered a moment
    after its code was first looked up is known from the next batch, not 30 s later.
    """

    def __init__(self, pool: asyncpg.Pool, *, ttl_s: float = 30.0) -> None:
        self._pool = pool
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def levels(self, codes: set[str]) -> dict[str, str | None]:
        now = time.monotonic()
        out: dict[str, str | None] = {}
        missing = []
        for code in codes:
            hit = self._cache.get(code)
            if hit is not None and now - hit[0] < self._ttl:
                out[code] = hit[1]
            else:
                missing.append(code)
        if missing:
            rows = await self._pool.fetch(
                "SELECT fixmedins_code, level FROM hospitals WHERE fixmedins_code = ANY($1)",
                missing,
            )
            found = {r["fixmedins_code"]: r["level"] for r in rows}
            for code in missing:
                out[code] = found.get(code)
                if out[code] is not None:
                    self._cache[code] = (now, out[code])
        return out


Lookup = Callable[[str, int], Awaitable[StoredRules | None]]


def given(stored: StoredRules | None) -> RulesFor:
    """The rules fetched for a case as a `RulesFor`: they answer for their own city and year
    only, so `assess` still decides which rules apply."""

    def rules_for(city: str, year: int) -> RuleSet | None:
        if stored is None or (stored.rules.city, stored.rules.clearing_year) != (city, year):
            return None
        return stored.rules

    return rules_for


async def group_message(
    msg: AcceptedSettlement, level: str | None, rules_of: Lookup, now: datetime
) -> GroupedCase:
    """Group one accepted upload under the treating city's rules in force (`assess`)."""
    treating = msg.mdtrtarea_admvs
    base: dict[str, Any] = {
        "receipt_id": msg.receipt_id,
        "case_key": msg.case_key,
        "fixmedins_code": msg.fixmedins_code,
        "setl_id": msg.setl_id,
        "revision": msg.revision,
        "received_at": msg.received_at,
        "treating_admdvs": treating,
        "contract_version": msg.contract_version,
        "grouped_at": now,
    }
    insured = msg.insuplc_admdvs or treating
    try:
        doc = parse(bytes(msg.document))
    except MappingError as exc:
        return _unmappable(base, insured, exc)
    if withdrawn(doc):
        return _withdrawn(msg, doc, level, base)
    if level is None:
        return GroupedCase(
            **base, insured_admdvs=insured, clearing_year=None, unscored=reasons.NO_LEVEL.problem()
        )
    try:
        facts: CaseFacts = case_facts(
            doc,
            case_key=msg.case_key,
            fixmedins_code=msg.fixmedins_code,
            treating_admdvs=treating,
            insured_admdvs=msg.insuplc_admdvs,
            hospital_level=level,
        )
    except MappingError as exc:
        return _unmappable(base, insured, exc)
    base.update(insured_admdvs=facts.insured_admdvs, facts=facts)
    key = rules_key(facts, msg.received_at)
    stored = await rules_of(*key) if key is not None else None
    try:  # the scoring stage routes: not routed here
        a = assess(
            facts, given(stored), province=None, received_at=msg.received_at, with_score=False
        )
    except Exception:  # never expected (assess does not raise on data): scoring retries it
        log.exception("grouping.failed", case_key=msg.case_key)
        year = clearing_year(facts.discharge_date, msg.received_at)
        if stored is None:
            return GroupedCase(**base, clearing_year=year)
        return GroupedCase(
            **base,
            clearing_year=year,
            ruleset_id=stored.ruleset_id,
            ruleset_version=stored.rules.version_id,
            catalog_version=stored.rules.catalog_version,
        )
    if a.rules is None or a.grouping is None or stored is None:
        return GroupedCase(**base, clearing_year=a.clearing_year, unscored=a.reason)
    # An ungrouped case travels on grouped "ungrouped": scoring prices it or says why not.
    return GroupedCase(
        **base,
        clearing_year=a.clearing_year,
        grouping=a.grouping,
        ruleset_id=stored.ruleset_id,
        ruleset_version=a.rules.version_id,
        catalog_version=a.rules.catalog_version,
    )


def _unmappable(base: dict[str, Any], insured: str, exc: MappingError) -> GroupedCase:
    return GroupedCase(
        **base,
        insured_admdvs=insured,
        clearing_year=None,
        unscored=reasons.UNMAPPABLE.problem(
            exc.field, message=exc.message, message_en=exc.message_en
        ),
    )


def _withdrawn(
    msg: AcceptedSettlement, doc: ParsedDocument, level: str | None, base: dict[str, Any]
) -> GroupedCase:
    """A withdrawn list, marked `DIP_WITHDRAWN` and not grouped: with its facts when they map
    (its insured region and clearing year route it as its scored revisions were routed)."""
    reason = reasons.WITHDRAWN.problem()
    try:
        facts = case_facts(
            doc,
            case_key=msg.case_key,
            fixmedins_code=msg.fixmedins_code,
            treating_admdvs=msg.mdtrtarea_admvs,
            insured_admdvs=msg.insuplc_admdvs,
            hospital_level=level or "",
        )
    except MappingError:
        insured = msg.insuplc_admdvs or msg.mdtrtarea_admvs
        return GroupedCase(**base, insured_admdvs=insured, clearing_year=None, unscored=reason)
    year = clearing_year(facts.discharge_date, msg.received_at)
    return GroupedCase(
        **base,
        insured_admdvs=facts.insured_admdvs,
        facts=facts,
        clearing_year=year,
        unscored=reason,
    )


class Grouper:
    def __init__(self, context: WorkerContext) -> None:
        settings = context.settings
        self._pool = context.pool
        self._producer = context.producer
        self._topic = settings.topics.grouped
        self._store = RulesStore(context.pool, ttl_s=settings.worker.rules_cache_s)
        self._levels = HospitalLevels(context.pool, ttl_s=settings.worker.hospital_cache_s)
        self._clock = context.clock

    async def handle(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        # A message that fails for another reason than Kafka/PostgreSQL being away is
        # dead-lettered instead of stalling its partition.
        await apply_each_or_dead_letter(self._pool, "grouping", records, self._apply)

    async def _apply(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        messages = [m for _, m in decode_each(records, ACCEPTED_DECODER, "grouping")]
        if not messages:
            return
        levels = await self._levels.levels({m.fixmedins_code for m in messages})
        now = self._clock()
        futures = []
        rules_of = self._store.memo()
        for msg in messages:
            grouped = await group_message(msg, levels.get(msg.fixmedins_code), rules_of, now)
            futures.append(
                await self._producer.send(
                    self._topic, key=msg.case_key.encode(), value=ENCODER.encode(grouped)
                )
            )
        await asyncio.gather(*futures)
