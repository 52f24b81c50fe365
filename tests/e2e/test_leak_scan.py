"""After a hostile run, no certificate number and no name sent is found on any topic or in
any log line the gateway and the workers wrote.

Hostile: personal fields sent as lists, objects and numbers; personal data under keys the
contract does not know (`idcard`, `CertNo`, `patient_name`, a name or an ID number as the key
itself, at the top, in `input`, in a node, nested); ID numbers in fields that are not personal;
a top-level array; the same through the batch, national (`/fsi/api/4101A`) and CSV endpoints;
and a few clean lists, so that grouping, scoring and quality run too.

What is scanned: every topic of the run (the test's own namespace: rejected, grouped, scored
per city, all scored, out of province, quality alerts) and every log line (structlog and the
standard library, JSON, from debug up), for an 18-digit run (`\\d{17}[\\dXx]`) and for each
name sent. The accepted topic is the one exception by design: it carries the normalised list,
personal fields included, from the hospital to the case store (`AcceptedSettlement.document`,
contracts/messages.py; read only by dipgw's own workers). On it the test checks only that
nothing sent under an unknown key and nothing of a rejected list arrives.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import logging
import random
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

import msgspec
import pytest
import structlog
from aiokafka import AIOKafkaConsumer

from adapters.runtime.logs import configure_logging
from adapters.runtime.settings import Settings
from contracts.samples import make_certno
from gateway.runtime import LocalServices, Stack, running_stack
from tests.builders import document, tagged_settings, wait_scored
from tests.clock import CLOCK
from tests.conftest import register_hospital
from workers.dip import SAMPLE_RULES
from workers.rules_store import import_rules, read_rules_files

pytestmark = pytest.mark.integration

CODE = "H44010000001"
CERTNO_RUN = re.compile(r"\d{17}[\dXx]")
# Names and ID numbers sent in the rejected lists; the accepted lists' patients (张三 is the
# builders' default); names and ID numbers under unknown keys of accepted lists.
NAMES = ["司马懿", "诸葛孔明", "欧阳娜娜", "上官婉儿", "慕容复", "东方不败", "令狐冲", "任盈盈"]
ACCEPTED_NAMES = ["张三", "岳灵珊"]
STRAY_NAMES = ["林平之", "田伯光"]


def _certnos(count: int) -> list[str]:
    rng = random.Random(11)
    regions = ("110105", "440100", "440300", "310101", "510104")
    return [
        make_certno(rng, regions[n % 5], date(1950 + n, 1 + n % 12, 1 + n), "12"[n % 2])
        for n in range(count)
    ]


CERTNOS = _certnos(20)
STRAY_CERTNOS, CERTNOS = CERTNOS[:2], CERTNOS[2:]


def _setl(tag: str) -> str:
    return f"LK{tag}{uuid.uuid4().hex[:8].upper()}"


def _rejected(tag: str, **setlinfo: Any) -> dict[str, Any]:
    """A list rejected for a missing total (medfee_sumamt), with these setlinfo fields."""
    doc = document(_setl(tag), code=CODE, medfee_sumamt=None)
    doc["input"]["setlinfo"].update(setlinfo)
    return doc


def _hostile_lists() -> list[dict[str, Any]]:
    c, n = CERTNOS, NAMES
    as_structures = _rejected(
        "A",
        psn_name=[n[0], n[1]],
        certno={"no": c[0], "type": "01"},
        coner_name={"name": n[2]},
        coner_tel=[13812345678],
        psn_no=int(c[1]) if c[1].isdigit() else c[1],
        medcasno=[c[2]],
        brdy=["1970-05-01"],
        emp_name=n[3],
        hi_no=c[3],
        curr_addr=[n[4], c[4]],
    )
    unknown = _rejected("B", idcard=c[5], CertNo=c[6], patient_name=n[4], **{n[5]: "x", c[7]: "y"})
    unknown["patient"] = {"name": n[5], "certno": c[8], "more": [[{"idno": c[9]}]]}
    unknown["input"]["extra"] = [c[9], n[6]]
    unknown["input"]["diseinfo"][0]["patient"] = n[7]
    unknown["input"]["setlinfo"]["deep"] = _nested(200, {"certno": c[10], "name": n[7]})
    in_kept_fields = _rejected("C", bill_no=c[11], mdtrt_id=c[12], biz_sn=f"BZ{c[13]}")
    in_kept_fields["input"]["diseinfo"][0]["diag_name"] = f"胆囊炎（{c[14]}）"
    in_kept_fields["msgid"] = [c[15], {"x": n[0]}]
    unroutable = _rejected("D", psn_name=n[1], certno=c[0])
    del unroutable["mdtrtarea_admvs"]
    return [as_structures, unknown, in_kept_fields, unroutable]


def _nested(depth: int, leaf: Any) -> Any:
    node = leaf
    for level in range(depth):
        node = {"k": node} if level % 2 else [node]
    return node


def _accepted(name: str, stray: bool) -> dict[str, Any]:
    doc = document(_setl("OK"), code=CODE)
    doc["input"]["setlinfo"]["psn_name"] = name
    if stray:  # unknown keys: the contract's Struct never carries them on
        doc["input"]["setlinfo"].update(idcard=STRAY_CERTNOS[0], patient_name=STRAY_NAMES[0])
        doc["patient"] = {"name": STRAY_NAMES[1], "certno": STRAY_CERTNOS[1]}
    return doc


def _csv(docs: list[dict[str, Any]]) -> bytes:
    """Lists as CSV rows with path headers (docs/upload-format.md)."""
    rows = []
    for doc in docs:
        row = {k: str(v) for k, v in doc.items() if k != "input"}
        row.update({f"setlinfo.{k}": str(v) for k, v in doc["input"]["setlinfo"].items()})
        for node in ("diseinfo", "oprninfo", "icuinfo"):
            for i, entry in enumerate(doc["input"].get(node, [])):
                row.update({f"{node}[{i}].{k}": str(v) for k, v in entry.items()})
        rows.append(row)
    out = io.StringIO()
    writer = csv.DictWriter(out, sorted(set().union(*rows)))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """Every log line of the test (structlog and the standard library), JSON, debug up."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        structlog.configure(**saved)
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


@pytest.fixture
def own_settings(services: LocalServices) -> Settings:
    settings = tagged_settings(services.settings, "leak")
    tag = settings.topics.accepted.removesuffix(".accepted")
    topics = msgspec.structs.replace(settings.topics, quality_alerts=f"{tag}.alerts")
    return msgspec.structs.replace(settings, topics=topics)


@pytest.fixture
async def own_stack(
    services: LocalServices, own_settings: Settings, fresh_dsn: str, log_stream: io.StringIO
) -> AsyncIterator[Stack]:
    async with running_stack(own_settings, services.bootstrap, fresh_dsn, clock=CLOCK) as stack:
        for path in SAMPLE_RULES.values():
            await import_rules(stack.pool, *read_rules_files([path]))
        yield stack


async def _every_topic(stack: Stack) -> dict[str, list[bytes]]:
    """Every message (key and value) of every topic of the test's namespace, from the start."""
    tag = stack.settings.topics.accepted.removesuffix(".accepted")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        topics = sorted(t for t in await consumer.topics() if t.startswith(tag + "."))
        consumer.subscribe(topics)
        found: dict[str, list[bytes]] = {t: [] for t in topics}
        deadline = asyncio.get_running_loop().time() + 30
        idle = 0
        while idle < 2 and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=1500)
            idle = 0 if batch else idle + 1
            for part, records in batch.items():
                found[part.topic] += [(r.key or b"") + b" " + (r.value or b"") for r in records]
        return found
    finally:
        await consumer.stop()


def _hits(text: str, names: list[str]) -> list[str]:
    return CERTNO_RUN.findall(text) + [name for name in names if name in text]


async def test_no_id_number_or_name_on_any_topic_or_in_any_log(
    own_stack: Stack, log_stream: io.StringIO
) -> None:
    stack = own_stack
    hospital = await register_hospital(stack, CODE, "440100")
    answers: list[Any] = []

    async def post(path: str, body: Any, expect: int, **kw: Any) -> Any:
        status, answer = await hospital.post(path, body, **kw)
        assert status == expect, answer
        answers.append(answer)
        return answer

    hostile = _hostile_lists()
    for doc in hostile:
        await post("/v1/settlements", doc, 422)
    top_array = [copy.deepcopy(hostile[0]), CERTNOS[16], NAMES[6]]
    await post("/v1/settlements", top_array, 422)
    national = copy.deepcopy(hostile[0])
    national["input"]["setlinfo"]["setl_id"] = _setl("N")
    answer = await post("/fsi/api/4101A", national, 200)
    assert answer["infcode"] == -1

    accepted = [_accepted(ACCEPTED_NAMES[n % 2], stray=n < 2) for n in range(4)]
    batch = [accepted[0], accepted[1], *copy.deepcopy(hostile[:3])]
    for doc in batch[2:]:
        doc["input"]["setlinfo"]["setl_id"] = _setl("BATCH")
    answer = await post("/v1/settlements/batch", {"records": batch}, 200)
    assert (answer["accepted"], answer["rejected"]) == (2, 3), answer
    csv_rejected = _rejected("CSV", psn_name=NAMES[3], certno=CERTNOS[17], setl_id="")
    answer = await post(
        "/v1/settlements/file",
        _csv([accepted[2], csv_rejected, accepted[3]]),
        200,
        content_type="text/csv",
    )
    assert [r["status"] for r in answer["results"]] == ["accepted", "rejected", "accepted"]

    # The workers have grouped, scored and counted everything before the topics are read.
    keys = {(CODE, d["input"]["setlinfo"]["setl_id"]): 1 for d in accepted}
    await wait_scored(stack.pool, keys)
    rejected_count = len(hostile) + 1 + 1 + 3 + 1  # single, top-level array, national, batch, CSV
    for _ in range(300):  # quality has counted them (and logged what it logs)
        counted = await stack.pool.fetchval(
            "SELECT coalesce(sum(received), 0) FROM quality_daily WHERE fixmedins_code = $1", CODE
        )
        if counted >= len(accepted) + rejected_count - 1:  # (the top-level array is not a list)
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # log lines of the last handlers

    topics = await _every_topic(stack)
    t = stack.settings.topics
    assert len(topics[t.rejected]) == rejected_count
    assert len(topics[t.accepted]) == len(accepted)
    assert topics[t.grouped] and topics[t.scored_all]
    everything = NAMES + ACCEPTED_NAMES + STRAY_NAMES
    leaks = {
        topic: hits
        for topic, messages in topics.items()
        if topic != t.accepted
        and (hits := _hits(b"\n".join(messages).decode("utf-8", "replace"), everything))
    }
    accepted_text = b"\n".join(topics[t.accepted]).decode()
    sent_only_elsewhere = [*STRAY_CERTNOS, *STRAY_NAMES, *CERTNOS, *NAMES]
    leaks[t.accepted] = [v for v in sent_only_elsewhere if v in accepted_text]
    leaks["logs"] = _hits(log_stream.getvalue(), everything)
    for answer in answers:  # the national response's own 30-digit message id (region+time+serial)
        if isinstance(answer, dict):
            answer.pop("inf_refmsgid", None)
    leaks["answers"] = _hits(msgspec.json.encode(answers).decode(), everything)
    assert {k: v for k, v in leaks.items() if v} == {}
    assert log_stream.getvalue()  # the run did log (the scan read something)

    # What the rejected topic shows of the lists: known fields, masked; unknown keys named.
    shown = {}
    for message in topics[t.rejected]:
        doc = msgspec.json.decode(message.partition(b" ")[2])["document"]
        if isinstance(doc, dict) and isinstance(doc.get("input"), dict):
            setlinfo = doc["input"]["setlinfo"]
            shown[setlinfo.get("setl_id")] = setlinfo
    structures = shown[hostile[0]["input"]["setlinfo"]["setl_id"]]
    assert (structures["psn_name"], structures["certno"]) == ("[masked array]", "[masked object]")
    assert structures["brdy"] == "[masked array]" and structures["emp_name"] == "****"
    unknown = shown[hostile[1]["input"]["setlinfo"]["setl_id"]]
    assert {"idcard", "CertNo", "patient_name", "deep"} <= set(unknown["_dropped"])


def test_an_unstorable_value_under_a_hostile_key_names_no_data() -> None:
    from gateway.checks import Checker, Rejected

    doc = document("LKNUL1", code=CODE)
    doc["input"]["setlinfo"][CERTNOS[-1]] = "x\u0000"
    doc["input"]["setlinfo"][NAMES[0]] = {"y": "\u0000"}
    rejected = Checker().check_one(msgspec.json.encode(doc), CLOCK())
    assert isinstance(rejected, Rejected)
    shown = msgspec.json.encode([rejected.errors, rejected.masked_document]).decode()
    assert _hits(shown, NAMES) == []
    assert [(e.rule, e.field) for e in rejected.errors] == [("FMT004", "setlinfo")]
