"""The quality rollups do not count a status change (national 4102) as a list received
(issue 14 point 4): withdrawing and re-submitting a list adds no received, accepted or
revision count and no upload-lag sample; a corrected upload after them still does."""

from __future__ import annotations

import copy
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.runtime import Stack
from tests.builders import document, handled, new_code, wait_stored
from tests.conftest import Client, register_hospital


def _status_change(doc: dict[str, Any], code: str, stas: str) -> dict[str, Any]:
    setlinfo = doc["input"]["setlinfo"]
    row = {"psn_no": setlinfo["psn_no"], "setl_id": setlinfo["setl_id"], "stas_type": stas}
    return {
        "infno": "4102",
        "msgid": f"{code}{uuid.uuid4().int % 10**18:018d}",
        "mdtrtarea_admvs": "440100",
        "inf_time": "2026-11-24 09:30:00",
        "fixmedins_code": code,
        "input": {"data": {"stastinfo": [row]}},
    }


async def _sent(client: Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Send; wait until the receipt is stored. The receipt (id and revision)."""
    status, answer = await client.post(path, body)
    assert status == 200 and answer["infcode"] == 0, answer
    data = answer["output"]["data"]
    receipt = data[0] if isinstance(data, list) else data
    await wait_stored(client, receipt["setl_list_id"])
    return dict(receipt)


@pytest.mark.integration
async def test_a_status_change_is_not_a_list_received(stack: Stack) -> None:
    code = new_code()  # a fresh hospital: the rollups are this test's own
    client = await register_hospital(stack, code, "440100")
    doc = document(f"QS{uuid.uuid4().hex[:10]}", code=code)
    first = await _sent(client, "/fsi/api/4101A", doc)
    withdrawn = await _sent(client, "/fsi/api/4102", _status_change(doc, code, "0"))
    back = await _sent(client, "/fsi/api", _status_change(doc, code, "1"))
    assert (withdrawn["revision"], back["revision"]) == (2, 3)
    corrected = copy.deepcopy(doc)
    corrected["input"]["setlinfo"]["biz_sn"] = f"BZ{uuid.uuid4().int % 10**16:016d}"
    last = await _sent(client, "/fsi/api/4101A", corrected)
    assert last["revision"] == 4

    # every message of the case is on one partition: once the quality worker committed past
    # the last, it has handled them all
    where = await stack.pool.fetchrow(
        "SELECT kafka_topic, kafka_partition, kafka_offset FROM receipts WHERE receipt_id = $1",
        uuid.UUID(last["setl_list_id"]),
    )
    position = SimpleNamespace(
        topic=where["kafka_topic"], partition=where["kafka_partition"], offset=where["kafka_offset"]
    )
    await handled(stack, "quality", [position])
    rows = await stack.pool.fetch(
        """SELECT received, accepted, rejected, revisions, lag_hist FROM quality_daily
           WHERE fixmedins_code = $1""",
        code,
    )
    assert len(rows) == 1  # the fixed clock: one day
    (row,) = rows
    # the upload and its correction; not the withdrawal and the re-submission
    assert (row["received"], row["accepted"], row["rejected"], row["revisions"]) == (2, 2, 0, 1)
    assert sum(row["lag_hist"]) == 2
    assert first["revision"] == 1
