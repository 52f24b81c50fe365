"""Grouping worker: `dip.settlement.accepted.v1` → `dip.case.grouped.v1`.

Maps each accepted upload to `CaseFacts` (hospital level from the registry), finds the rules in
force of the TREATING city for the case's clearing year and groups it (exclusions → core →
comprehensive, see workers/dip). A case that cannot be grouped — unmappable, unknown hospital,
no rules in force — is still published, marked with the reason, so nothing accepted is lost.
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
from contracts import CST, city_of
from contracts.messages import ACCEPTED_DECODER, AcceptedSettlement
from workers._deadletter import apply_each_or_dead_letter
from workers._runner import decode_each
from workers.case_messages import ENCODER, GroupedCase, Problem
from workers.casefacts_map import MappingError, case_facts
from workers.dip import CaseFacts, group
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


def clearing_year(discharge_date: str, received_at: datetime) -> int:
    """The clearing year of a case: its discharge year, else the year it was received (CST)."""
    if len(discharge_date) >= 4 and discharge_date[:4].isdigit():
        return int(discharge_date[:4])
    return received_at.astimezone(CST).year


def no_rules(city: str, year: int) -> Problem:
    return Problem(
        severity="warn",
        dimension="",
        rule="DIP_NO_RULES",
        field="mdtrtarea_admvs",
        message=f"就医地 {city} 无 {year} 清算年度的 DIP 规则，暂未计分",
        message_en=f"no DIP rules in force for treating city {city}, clearing year {year}",
    )


Lookup = Callable[[str, int], Awaitable[StoredRules | None]]


async def group_message(
    msg: AcceptedSettlement, level: str | None, rules_of: Lookup, now: datetime
) -> GroupedCase:
    """Group one accepted upload under the treating city's rules in force."""
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
    if level is None:
        return GroupedCase(
            **base,
            insured_admdvs=insured,
            clearing_year=None,
            unscored=Problem(
                severity="warn",
                dimension="",
                rule="DIP_NO_LEVEL",
                field="fixmedins_code",
                message="医疗机构未登记等级，无法计分",
                message_en="hospital not in the registry: no level coefficient",
            ),
        )
    try:
        facts: CaseFacts = case_facts(
            bytes(msg.document),
            case_key=msg.case_key,
            fixmedins_code=msg.fixmedins_code,
            treating_admdvs=treating,
            insured_admdvs=msg.insuplc_admdvs,
            hospital_level=level,
        )
    except MappingError as exc:
        return GroupedCase(
            **base,
            insured_admdvs=insured,
            clearing_year=None,
            unscored=Problem(
                severity="warn",
                dimension="",
                rule="DIP_UNMAPPABLE",
                field=exc.field,
                message=exc.message,
                message_en=exc.message_en,
            ),
        )
    year = clearing_year(facts.discharge_date, msg.received_at)
    city = city_of(treating)
    stored = await rules_of(city, year) if city else None
    if city is None or stored is None:
        return GroupedCase(
            **base,
            insured_admdvs=facts.insured_admdvs,
            clearing_year=year,
            facts=facts,
            unscored=no_rules(city or treating, year),
        )
    try:
        grouping = group(facts, stored.rules)
    except Exception:  # never expected (group() does not raise on data): scoring retries it
        log.exception("grouping.failed", case_key=msg.case_key, ruleset=stored.rules.version_id)
        grouping = None
    return GroupedCase(
        **base,
        insured_admdvs=facts.insured_admdvs,
        clearing_year=year,
        facts=facts,
        grouping=grouping,
        ruleset_id=stored.ruleset_id,
        ruleset_version=stored.rules.version_id,
        catalog_version=stored.rules.catalog_version,
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
