"""The `/ops` message browser over a real run: rejected lists and dead letters, opened masked,
and a dead letter replayed once after a fix, audited, never counted twice."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import msgspec
import pytest

from gateway.ops import COOKIE
from gateway.ops.messages import REPLAY_HEADER
from gateway.runtime import Stack
from tests.builders import document, handled, new_code, wait_received
from tests.conftest import Client, city_client, register_hospital

pytestmark = pytest.mark.integration
PLUS8 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")


def _rejected(code: str, setl_id: str) -> dict[str, Any]:
    """A list refused at the door (no total), naming its patient 张三 with an ID number."""
    return document(setl_id, code=code, medfee_sumamt=None)


def _personal(doc: dict[str, Any]) -> list[str]:
    setlinfo = doc["input"]["setlinfo"]
    values = [setlinfo["psn_name"], setlinfo["certno"]]
    assert setlinfo["psn_name"] == "张三" and len(setlinfo["certno"]) == 18
    return values


def _no_personal(answer: Any, personal: list[str]) -> None:
    text = msgspec.json.encode(answer).decode()
    for value in personal:
        assert value not in text, value


def _times(answer: Any) -> list[str]:
    """Every value of a key naming a moment, anywhere in the answer."""
    found: list[str] = []
    if isinstance(answer, dict):
        for key, value in answer.items():
            if key in ("at", "received_at", "replayed_at", "audited_at", "generated_at"):
                if value is not None:
                    found.append(value)
            else:
                found += _times(value)
    elif isinstance(answer, list):
        for item in answer:
            found += _times(item)
    return found


async def _wait(probe: Any, what: str) -> Any:
    for _ in range(300):
        got = await probe()
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within 30 s")


async def test_ops_lists_filters_and_opens_rejected_lists_masked(stack: Stack, ops: Client) -> None:
    code = new_code()
    client = await register_hospital(stack, code, "440100")
    personal: list[str] = []
    for setl in ("MB1", "MB2", "MB3"):
        doc = _rejected(code, setl)
        personal += _personal(doc)
        status, body = await client.post("/v1/settlements", doc)
        assert status == 422, body
    await wait_received(stack.pool, code, 3)

    answers = []
    status, page = await ops.get(f"/v1/ops/rejected?hospital={code}&limit=2")
    assert status == 200, page
    assert len(page["rows"]) == 2 and page["has_more"] is True and page["page"] == 1
    status, second = await ops.get(f"/v1/ops/rejected?hospital={code}&limit=2&page=2")
    assert len(second["rows"]) == 1 and second["has_more"] is False
    rows = page["rows"] + second["rows"]
    assert {r["case_key"] for r in rows} == {f"{code}:MB{n}" for n in (1, 2, 3)}
    assert all(r["rules"] == ["REQ_FIELD"] and r["city"] == "440100" for r in rows)
    answers += [page, second]

    status, by_rule = await ops.get(f"/v1/ops/rejected?hospital={code}&rule=REQ_FIELD")
    assert len(by_rule["rows"]) == 3
    status, other_rule = await ops.get(f"/v1/ops/rejected?hospital={code}&rule=FMT_POSCODE")
    assert status == 200 and other_rule["rows"] == []
    received = rows[0]["received_at"]
    status, window = await ops.get(
        f"/v1/ops/rejected?hospital={code}&since={received.replace('+', '%2B')}"
        f"&until={received.replace('+', '%2B')}"
    )
    # that second, both ends included: the list itself, and any other of the same second
    assert status == 200 and rows[0]["id"] in [r["id"] for r in window["rows"]]
    assert {r["received_at"] for r in window["rows"]} == {received}
    assert len(window["rows"]) == sum(r["received_at"] == received for r in rows)
    status, later = await ops.get(
        f"/v1/ops/rejected?hospital={code}&since=2099-01-01T00:00:00%2B08:00"
    )
    assert later["rows"] == []
    answers += [by_rule, window]

    status, opened = await ops.get(f"/v1/ops/rejected/{rows[0]['id']}")
    assert status == 200, opened
    assert opened["case_key"] == rows[0]["case_key"]
    (error,) = opened["errors"]
    assert error["rule"] == "REQ_FIELD" and error["field"].endswith("medfee_sumamt")
    setlinfo = opened["document"]["input"]["setlinfo"]
    assert setlinfo["setl_id"] == rows[0]["case_key"].split(":")[1]
    assert setlinfo["psn_name"] != "张三" and setlinfo["certno"] not in personal
    answers.append(opened)

    _no_personal(answers, personal)
    times = _times(answers)
    assert times and all(PLUS8.match(t) for t in times), times

    for path in ("/v1/ops/rejected/0/999999999", "/v1/ops/rejected/x/1", "/v1/ops/rejected?page=0"):
        status, body = await ops.get(path)
        assert status in (400, 404) and body["errors"][0]["rule"] in ("NOT_FOUND", "BAD_QUERY")


async def test_hospitals_and_bureaus_may_not_browse_messages(
    stack: Stack, hospital: Client
) -> None:
    bureau = await city_client(stack, "440100")
    paths = ("/v1/ops/rejected", "/v1/ops/dead-letters", "/v1/ops/audit", "/v1/ops/rejected/0/1")
    for caller in (hospital, bureau):
        for path in paths:
            status, body = await caller.get(path)
            assert status == 403 and body["errors"][0]["rule"] == "FORBIDDEN_ROLE", path
        status, body = await caller.post("/v1/ops/dead-letters/quality/t/0/1/replay", b"")
        assert status == 403, body
    status, body = await Client(stack).get("/v1/ops/rejected")
    assert status == 401


async def test_a_dead_letter_is_opened_masked_and_replayed_once_after_a_fix(
    stack: Stack, ops: Client
) -> None:
    """The quality worker cannot apply one hospital's rejected list (a database trigger
    stands for the bug); it is dead-lettered. After the fix ops open it, masked, and replay
    it: counted once, the dead letter marked, the action audited; a second replay writes
    nothing, and a duplicate of the copy (as a producer retry makes) is not counted again."""
    code = new_code()
    client = await register_hospital(stack, code, "440100")
    trigger = f"poison_{code.lower()}"
    await stack.pool.execute(
        f"""CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'quality cannot apply this list'; END $$;
            CREATE TRIGGER {trigger} BEFORE INSERT ON quality_daily FOR EACH ROW
            WHEN (NEW.fixmedins_code = '{code}') EXECUTE FUNCTION {trigger}()"""
    )
    try:
        doc = _rejected(code, "DL1")
        personal = _personal(doc)
        status, body = await client.post("/v1/settlements", doc)
        assert status == 422, body

        async def listed() -> list[dict[str, Any]]:
            _, page = await ops.get(f"/v1/ops/dead-letters?hospital={code}&worker=quality")
            return list(page["rows"])

        (dead,) = await _wait(listed, "dead-lettered")
    finally:
        await stack.pool.execute(f"DROP TRIGGER {trigger} ON quality_daily")  # the fix
        await stack.pool.execute(f"DROP FUNCTION {trigger}()")
    topic = stack.settings.topics.rejected
    assert (dead["worker"], dead["topic"], dead["fixmedins_code"]) == ("quality", topic, code)
    assert dead["replayed_at"] is None and "RaiseError" in dead["error"]
    path = f"/v1/ops/dead-letters/{dead['id']}"

    status, opened = await ops.get(path)
    assert status == 200, opened
    assert opened["message_gone"] is False and opened["message"]["fixmedins_code"] == code
    setlinfo = opened["message"]["document"]["input"]["setlinfo"]
    assert setlinfo["setl_id"] == "DL1" and setlinfo["psn_name"] != "张三"
    assert opened["message"]["errors"][0]["rule"] == "REQ_FIELD"
    answers: list[Any] = [dead, opened]

    status, first = await ops.post(path + "/replay", b"")
    assert status == 200, first
    assert first["replayed"] is True and first["result"] == "replayed"
    assert first["actor"] == "test-ops"
    await wait_received(stack.pool, code, 1)
    to_topic, to_partition, to_offset = first["replayed_to"].rsplit("/", 2)
    assert to_topic == topic

    status, again = await ops.post(path + "/replay", b"")
    assert status == 200 and again["replayed"] is False
    assert again["result"] == "already replayed" and again["replayed_to"] == first["replayed_to"]

    # A duplicate of the copy (the same header): handled, and counted as the same message.
    copy = await _read(stack, to_topic, int(to_partition), int(to_offset))
    assert dict(copy.headers)[REPLAY_HEADER] == dead["id"].encode()
    meta = await stack.producer.send_and_wait(
        to_topic, copy.value, key=copy.key, headers=list(copy.headers)
    )
    await handled(stack, "quality", [meta])
    received = await stack.pool.fetchval(
        "SELECT sum(received) FROM quality_daily WHERE fixmedins_code = $1", code
    )
    assert received == 1
    kept = await stack.pool.fetch(
        """SELECT "partition", "offset" FROM rejected_messages WHERE fixmedins_code = $1""",
        code,
    )
    assert [(r["partition"], r["offset"]) for r in kept] == [(dead["partition"], dead["offset"])]

    status, reopened = await ops.get(path)
    assert reopened["replayed_at"] == first["replayed_at"]
    audit = [a for a in reopened["audit"]["rows"] if a["target"] == dead["id"]]
    assert [(a["result"], a["actor"], a["action"]) for a in audit] == [
        ("already replayed", "test-ops", "replay"),
        ("replayed", "test-ops", "replay"),
    ]
    status, log = await ops.get("/v1/ops/audit")
    assert status == 200 and {a["id"] for a in audit} <= {a["id"] for a in log["rows"]}
    answers += [first, again, reopened, log]
    _no_personal(answers, personal)
    times = _times(answers)
    # (the message's own received_at is as the topic carries it: with microseconds)
    assert len(times) >= 8 and all(t.endswith("+08:00") for t in times), times
    assert all(PLUS8.match(t) for t in _times([dead, first, again, log])), times

    status, body = await ops.post("/v1/ops/dead-letters/quality/nope/0/0/replay", b"")
    assert status == 404 and body["errors"][0]["rule"] == "NOT_FOUND"


async def test_a_sink_dead_letter_replayed_is_stored_once_and_no_other_worker_sees_it(
    stack: Stack, ops: Client
) -> None:
    """The accepted topic has three workers; only the sink failed. The copy is stored by the
    sink; grouping and quality, which applied the original, skip it: one grouped message, one
    list counted."""
    code = new_code()
    client = await register_hospital(stack, code, "440100")
    trigger = f"poison_sink_{code.lower()}"
    await stack.pool.execute(
        f"""CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'the sink cannot store this list'; END $$;
            CREATE TRIGGER {trigger} BEFORE INSERT ON cases FOR EACH ROW
            WHEN (NEW.fixmedins_code = '{code}') EXECUTE FUNCTION {trigger}()"""
    )
    try:
        status, receipt = await client.post("/v1/settlements", document("SK1", code=code))
        assert status == 202, receipt

        async def listed() -> list[dict[str, Any]]:
            _, page = await ops.get(f"/v1/ops/dead-letters?hospital={code}&worker=sink")
            return list(page["rows"])

        (dead,) = await _wait(listed, "dead-lettered by the sink")
    finally:
        await stack.pool.execute(f"DROP TRIGGER {trigger} ON cases")
        await stack.pool.execute(f"DROP FUNCTION {trigger}()")
    accepted = stack.settings.topics.accepted
    assert dead["topic"] == accepted and dead["key"] == f"{code}:SK1"
    status, replayed = await ops.post(f"/v1/ops/dead-letters/{dead['id']}/replay", b"")
    assert status == 200 and replayed["replayed"] is True, replayed
    topic, partition, offset = replayed["replayed_to"].rsplit("/", 2)
    copy = await _read(stack, topic, int(partition), int(offset))
    for worker in ("sink", "grouping", "quality"):
        await handled(stack, worker, [_Position(topic, int(partition), int(offset))])

    stored = await stack.pool.fetch(
        "SELECT revision, receipt_id::text FROM cases WHERE fixmedins_code = $1", code
    )
    assert [(r["revision"], r["receipt_id"]) for r in stored] == [(1, receipt["receipt_id"])]
    _, status_now = await client.get(f"/v1/receipts/{receipt['receipt_id']}")
    assert status_now["status"] == "stored"
    grouped = await _all_keyed(stack, stack.settings.topics.grouped, copy.key)
    assert len(grouped) == 1  # the original's; grouping skipped the copy
    received = await stack.pool.fetchval(
        "SELECT sum(received) FROM quality_daily WHERE fixmedins_code = $1", code
    )
    assert received == 1


class _Position(msgspec.Struct):
    """Where a record is (as `send_and_wait` returns it), for `handled`."""

    topic: str
    partition: int
    offset: int


async def _all_keyed(stack: Stack, topic: str, key: bytes) -> list[Any]:
    """Every message of `topic` with `key`, read from the beginning to the end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(stack.settings.topics.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        found = []
        while any([await consumer.position(tp) < ends[tp] for tp in parts]):
            batch = await consumer.getmany(timeout_ms=500)
            found += [r for rs in batch.values() for r in rs if r.key == key]
        return found
    finally:
        await consumer.stop()


async def _read(stack: Stack, topic: str, partition: int, offset: int) -> Any:
    from gateway.ops.messages import read_at

    record = await read_at(stack.producer, topic, partition, offset)
    assert record is not None
    return record


async def test_the_page_replays_only_from_its_own_origin_with_its_header(stack: Stack) -> None:
    """A replay is a state-changing POST: with the session cookie it needs the page's header
    and its origin; a cross-site form can send neither."""
    token = await stack.registry.issue_token("ops", "test-ops-csrf-replay")
    from datetime import timedelta

    session = await stack.registry.open_session(token, timedelta(hours=1))
    assert session is not None
    path = stack.url + "/v1/ops/dead-letters/quality/nope/0/0/replay"
    async with aiohttp.ClientSession(cookies={COOKIE: session}) as http:
        for headers in (
            {},  # a cross-site form: no header
            {"X-Dipgw-Ops": "1", "Origin": "https://evil.example"},
        ):
            async with http.post(path, headers=headers) as resp:
                assert resp.status == 403, headers
                assert (await resp.json())["errors"][0]["rule"] == "FORBIDDEN_CSRF"
        async with http.post(path, headers={"X-Dipgw-Ops": "1", "Origin": stack.url}) as resp:
            assert resp.status == 404  # allowed through; no such dead letter
        async with http.get(stack.url + "/v1/ops/audit") as resp:
            assert resp.status == 200  # reading needs no header


async def test_quality_answers_and_the_dashboard_show_times_in_plus_eight(
    stack: Stack, ops: Client
) -> None:
    code = new_code()
    client = await register_hospital(stack, code, "440100")
    status, _ = await client.post("/v1/settlements", _rejected(code, "T1"))
    assert status == 422
    await wait_received(stack.pool, code, 1)
    status, report = await ops.get(f"/v1/quality/report?hospital={code}")
    (row,) = report["rows"]
    assert PLUS8.match(row["last_seen"]), row["last_seen"]
    status, dashboard = await ops.get("/v1/quality/dashboard")
    assert PLUS8.match(dashboard["generated_at"])
    moments = [h["last_seen"] for h in dashboard["hospitals"] if h["last_seen"]]
    moments += [a["raised_at"] for a in dashboard["alerts"]]
    moments += [p["at"] for p in dashboard["pipeline"]]
    assert moments and all(re.search(r"\+08:00$", m) for m in moments), moments


async def test_a_replay_keeps_the_headers_names_the_first_original_and_names_acl_refusals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What is written again (no stack: the Kafka reads and writes stood in for)."""
    from types import SimpleNamespace

    from aiokafka.errors import TopicAuthorizationFailedError

    from gateway.ops import messages

    sent: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = []

    class Producer:
        refuse = False

        async def send_and_wait(
            self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
        ) -> Any:
            if self.refuse:
                raise TopicAuthorizationFailedError()
            sent.append((topic, value, key, headers))
            return SimpleNamespace(topic=topic, partition=3, offset=42)

    stored: dict[int, Any] = {
        5: SimpleNamespace(value=b"{}", key=b"H1:S1", headers=[("dipgw-schema-id", b"x/1")]),
        6: SimpleNamespace(value=b"{}", key=b"H1:S1", headers=[(REPLAY_HEADER, b"sink/t/0/5")]),
    }

    async def read_at(producer: Any, topic: str, partition: int, offset: int) -> Any:
        if topic == "closed":
            raise TopicAuthorizationFailedError()
        return stored.get(offset)

    monkeypatch.setattr(messages, "read_at", read_at)
    producer = Producer()
    assert await messages._write_again(producer, "sink/t/0/5", 1.0) == ("replayed", "t/3/42")
    assert sent[-1] == (
        "t",
        b"{}",
        b"H1:S1",
        [("dipgw-schema-id", b"x/1"), (REPLAY_HEADER, b"sink/t/0/5")],
    )
    await messages._write_again(producer, "sink/t/0/6", 1.0)  # a copy that failed again
    assert sent[-1][3] == [(REPLAY_HEADER, b"sink/t/0/5")]
    assert await messages._write_again(producer, "sink/t/0/7", 1.0) == ("gone from Kafka", None)

    result, written = await messages._write_again(producer, "sink/closed/0/5", 1.0)
    assert written is None and result.startswith("refused by Kafka") and "READ on" in result
    producer.refuse = True
    result, written = await messages._write_again(producer, "sink/t/0/5", 1.0)
    assert written is None and "may not write t" in result and "WRITE on" in result
    assert len(sent) == 2
