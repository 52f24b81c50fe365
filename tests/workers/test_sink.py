"""The sink on the real broker and database: latest revision wins, poison is set aside."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from contracts.messages import ENCODER, AcceptedSettlement
from gateway.runtime import Stack
from tests.builders import document, handled, wait_stored
from tests.clock import now as clock_now
from tests.conftest import Client

pytestmark = pytest.mark.integration


def _message(setl_id: str, revision: int, document_json: bytes) -> AcceptedSettlement:
    return AcceptedSettlement(
        receipt_id=str(uuid.uuid4()),
        case_key=f"H44010000001:{setl_id}",
        fixmedins_code="H44010000001",
        setl_id=setl_id,
        revision=revision,
        received_at=clock_now(),
        mdtrtarea_admvs="440100",
        document=msgspec.Raw(document_json),
    )


async def test_older_revision_arriving_late_never_wins(stack: Stack) -> None:
    setl = f"O{uuid.uuid4().hex[:8]}"
    topic = stack.settings.topics.accepted
    newer = _message(setl, 2, b'{"v": 2}')
    older = _message(setl, 1, b'{"v": 1}')
    positions = [  # out of order, same partition (same key)
        await stack.producer.send_and_wait(
            topic, ENCODER.encode(message), key=message.case_key.encode()
        )
        for message in (newer, older)
    ]
    await handled(stack, "sink", positions)  # both consumed, the late older one included
    row = await stack.pool.fetchrow("SELECT revision, record FROM cases WHERE setl_id = $1", setl)
    assert row["revision"] == 2 and msgspec.json.decode(row["record"]) == {"v": 2}


async def test_a_poison_message_is_dead_lettered_and_the_partition_moves_on(
    stack: Stack, hospital: Client
) -> None:
    setl = f"X{uuid.uuid4().hex[:8]}"
    poison = _message(setl, 1, b'{"psn_name": "\\u0000"}')  # jsonb cannot hold NUL
    meta = await stack.producer.send_and_wait(
        stack.settings.topics.accepted, ENCODER.encode(poison), key=poison.case_key.encode()
    )
    # a good list with the same key lands after it in the same partition
    _, good = await hospital.post("/v1/settlements", document(setl))
    await wait_stored(hospital, good["receipt_id"])
    dead = await stack.pool.fetchrow(
        """SELECT worker, key, error FROM dead_letters
           WHERE topic = $1 AND "partition" = $2 AND "offset" = $3""",
        meta.topic,
        meta.partition,
        meta.offset,
    )
    assert dead is not None and dead["worker"] == "sink"
    assert dead["key"] == f"H44010000001:{setl}"
    assert "Unicode" in dead["error"] or "Untranslatable" in dead["error"], dead["error"]
