"""From checked records to their outcomes: the one path every way in shares.

An HTTP upload (`gateway.routes_ingest`), a national 4101 call (`gateway.routes_national`)
and a feed source (`gateway.feeds`) all end here: the good lists go to the ingestor
(reserve → Kafka → accept), the rejected ones to the rejected topic for the quality worker and
ops, and each record gets its outcome in the shape of the batch answer's `results[]`.
Nothing here knows about a request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from adapters.runtime.logs import Throttle, get_logger
from adapters.runtime.metrics import PRODUCE_SECONDS, RECORDS, REJECTIONS, UPLOAD_LAG
from contracts import city_of
from contracts.messages import ENCODER, RejectedSettlement
from gateway.checks import Checked, Rejected
from gateway.ingest import Receipt, Unavailable
from gateway.services import Services

__all__ = ["Outcome", "foreign_positions", "take"]

log = get_logger("dipgw.intake")


@dataclass
class Outcome:
    """One record's end: accepted or duplicate (with its receipt), rejected (with its
    errors), or unavailable (Kafka or PostgreSQL could not take it now: send it again)."""

    position: str
    case_key: str | None
    receipt: Receipt | None = None
    errors: list[Any] | None = None
    warnings: list[Any] | None = None
    unavailable: bool = False

    @property
    def status(self) -> str:
        if self.unavailable:
            return "unavailable"
        if self.receipt is None:
            return "rejected"
        return "duplicate" if self.receipt.duplicate else "accepted"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"position": self.position, "status": self.status}
        if self.case_key:
            out["case_key"] = self.case_key
        if self.receipt is not None:
            out.update(receipt_id=str(self.receipt.receipt_id), revision=self.receipt.revision)
        if self.errors:
            out["errors"] = self.errors
        if self.warnings:
            out["warnings"] = self.warnings
        return out


def foreign_positions(
    allowed: Mapping[str, str | None], checked: Iterable[Checked | Rejected]
) -> list[str]:
    """Positions of records their sender may not submit: an institution not in `allowed`
    (institution code → its registered region), or a region of another city than that
    institution's.

    Judged before the contract's verdict: a list of another hospital is refused as such,
    valid or not. A record naming no institution, or an unknown region, is the contract's to
    refuse (REQ_ROUTING, ADMDVS_UNKNOWN), not foreign.
    """
    bad = []
    for item in checked:
        if isinstance(item, Checked):
            code, area = item.upload.fixmedins_code, item.upload.mdtrtarea_admvs
        else:
            code, area = item.fixmedins_code, item.mdtrtarea_admvs
        if not code:
            continue
        other_city = area and (city := city_of(area)) is not None
        if code not in allowed or (other_city and city != city_of(allowed[code])):
            bad.append(item.position)
    return bad


async def take(
    services: Services,
    sender: str,
    checked: list[Checked | Rejected],
    received_at: datetime,
    nonce: tuple[str, str] | None = None,
) -> list[Outcome]:
    """Ingest the good records, publish the rejected ones; one outcome per record, in order.

    `sender` is the institution the records come from (a feed of a hospital group: the one
    its records name). `nonce` (hospital, nonce) is a signed request's, recorded with the
    reservation. A rejection that could not be published withholds every rejected verdict
    (`unavailable`): a rejection the quality figures never count would make them lie.
    """
    outcomes: list[Outcome] = []
    good: list[tuple[Outcome, Checked]] = []
    for item in checked:
        if isinstance(item, Rejected):
            outcomes.append(Outcome(item.position, item.case_key, errors=item.errors))
            code = item.fixmedins_code or sender
            RECORDS.labels("rejected", code).inc()
            for error in item.errors:
                REJECTIONS.labels(code, error.rule, error.dimension).inc()
        else:
            outcome = Outcome(
                item.position, item.upload.case_key, warnings=list(item.upload.warnings) or None
            )
            outcomes.append(outcome)
            good.append((outcome, item))
    if good:
        started = time.perf_counter()
        results = await services.ingestor.submit_many(
            [c.upload for _, c in good], received_at, nonce=nonce
        )
        PRODUCE_SECONDS.observe(time.perf_counter() - started)
        for (outcome, item), result in zip(good, results, strict=True):
            if isinstance(result, Unavailable):
                outcome.unavailable = True
                continue
            outcome.receipt = result
            code = item.upload.fixmedins_code
            RECORDS.labels("duplicate" if result.duplicate else "accepted", code).inc()
            if not result.duplicate and item.discharged_at is not None:
                UPLOAD_LAG.observe((received_at - item.discharged_at).total_seconds())
    rejected = [item for item in checked if isinstance(item, Rejected)]
    if rejected and not await _publish_rejections(services, sender, rejected, received_at):
        for outcome in outcomes:
            if outcome.receipt is None and not outcome.unavailable:
                outcome.unavailable = True
    return outcomes


# Why rejections could not be recorded, logged once per cause every few seconds.
_REJECTED_WRITE_LOG = Throttle(10.0)


async def _publish_rejections(
    services: Services, sender: str, rejected: list[Rejected], received_at: datetime
) -> bool:
    """Rejections go to their topic (personal fields masked) for the quality worker and ops;
    False if Kafka did not take them all within the Kafka timeout."""

    async def write() -> None:
        futures = [
            await services.producer.send(
                services.rejected_topic,
                key=(item.case_key or item.fixmedins_code or sender).encode(),
                value=ENCODER.encode(
                    RejectedSettlement(
                        fixmedins_code=item.fixmedins_code or sender,
                        case_key=item.case_key,
                        position=item.position,
                        received_at=received_at,
                        errors=item.errors,
                        document=msgspec.Raw(ENCODER.encode(item.masked_document)),
                    )
                ),
            )
            for item in rejected
        ]
        await asyncio.gather(*futures)

    try:
        await asyncio.wait_for(write(), services.kafka_timeout_s)
    except Exception as exc:
        cause = type(exc).__name__
        held = _REJECTED_WRITE_LOG.admit(cause)
        if held is not None:
            log.warning("rejected_topic.write_failed", error=cause, count=len(rejected), also=held)
        return False
    return True
