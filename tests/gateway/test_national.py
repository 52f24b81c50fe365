"""The national transactions (issue 14, points 3 and 4): 4101/4101A uploads, 4102 status
changes and 4103 queries on `/fsi/api/{infno}` and the service address `/fsi/api`, dry runs,
and their field lists against the national reference (`tests/reference/`, copied from the
shared reference)."""

from __future__ import annotations

import csv
import random
import re
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import CST
from contracts.samples import make_settlement
from gateway import national, refusals
from gateway.runtime import Stack
from tests.adapters.bombs import deep_array
from tests.builders import document, read_topic, wait_stored
from tests.clock import naive_now
from tests.conftest import Client, register_hospital

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "reference"  # copies of shared/reference (see its README)


# -- the reference's field lists -----------------------------------------------------------


def _spec_section(number: str) -> str:
    assert REFERENCE.is_dir(), f"the national reference is read from {REFERENCE}"
    text = (REFERENCE / "4101A-spec.md").read_text(encoding="utf-8")
    return text.split(f"## {number} ", 1)[1].split("\n## ", 1)[0]


def _table_codes(section: str, table: str) -> list[str]:
    """The 参数代码 column of a rebuilt table (`| 序号 | 参数代码 | …`) after its title."""
    rows = section.split(table, 1)[1].split("\n\n", 2)[1]  # the title line, then the table
    return [
        cells[2].strip()
        for line in rows.splitlines()
        if line.startswith("| ") and (cells := line.split("|"))[1].strip().isdigit()
    ]


def _reference_fields(name: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    with (REFERENCE / name).open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            out.setdefault(row["node"], set()).add(row["field"])
    return out


def _query_setlinfo_names() -> set[str]:
    """表198's 113 setlinfo names of the 4103 output (`name` or `name 中文` or `name(…)`)."""
    line = next(line for line in _spec_section("5.4.1.4").splitlines() if "表198" in line).split(
        "In order: ", 1
    )[1]
    return {re.match(r"\s*([a-z0-9_]+)", item)[1] for item in line.split(", ")}  # type: ignore[index]


def test_the_4102_and_4103_field_lists_are_the_specs() -> None:
    assert tuple(_table_codes(_spec_section("5.4.1.3"), "表196")) == national.STATUS_INPUT
    assert tuple(_table_codes(_spec_section("5.4.1.4"), "表197")) == national.QUERY_INPUT
    # the 4103 output nodes: 表198-203, and the 4101A input nodes 4103's text did not reach
    output = _spec_section("5.4.1.4").split("### 5.4.1.4.5 输出", 1)[1]
    named = re.findall(r"\(节点标识：([a-z]+)\)|\(([a-z]+)\)", output)
    spec_nodes = {a or b for a, b in named}
    assert spec_nodes == {"setlinfo", "payinfo", "opspdiseinfo", "diseinfo", "iteminfo", "oprninfo"}
    assert set(national.QUERY_NODES) == spec_nodes | (
        set(_reference_fields("4101A-fields.csv")) & {"icuinfo", "bldinfo"}
    )
    assert len(_query_setlinfo_names()) == 113
    # the status dictionary: 0/1 settable, 2/3 the bureau's
    with (REFERENCE / "dictionaries.csv").open(encoding="utf-8") as handle:
        stas = {
            r["value"]: r["label_cn"]
            for r in csv.DictReader(handle)
            if r["dict_code"] == "stas_type"
        }
    assert stas == {code: labels[0] for code, labels in national.STATUS_LABELS.items()}


def test_status_changes_follow_4102s_rules() -> None:
    allowed = {
        (c, t) for c in "0123" for t in "01" if national.refused_change("S", c, t, "f") is None
    }
    assert allowed == {("1", "0"), ("0", "1"), ("3", "0"), ("3", "1")}
    refused = national.refused_change("S1", "1", "1", "input.data.stastinfo[0].stas_type")
    assert refused is not None and refused.rule == "NAT_STATUS"
    assert refused.field == "input.data.stastinfo[0].stas_type" and "S1" in refused.message


def test_the_guide_shows_the_national_catalogue() -> None:
    doc = (ROOT / "docs" / "national.md").read_text(encoding="utf-8")
    shown = doc.split("<!-- national-errors:begin -->\n", 1)[1].split(
        "<!-- national-errors:end -->"
    )[0]
    assert shown == national.markdown_table()
    assert not {r.rule for r in national.NATIONAL_REASONS} & {r.rule for r in refusals.CATALOGUE}


# -- over HTTP -----------------------------------------------------------------------------

integration = pytest.mark.integration


def _setl() -> str:
    return f"N{uuid.uuid4().hex[:12]}"


def _envelope(infno: str, data: Any, code: str = "H44010000001") -> dict[str, Any]:
    return {
        "infno": infno,
        "msgid": f"{code}{uuid.uuid4().int % 10**18:018d}",
        "mdtrtarea_admvs": "440100",
        "inf_time": "2026-11-24 09:30:00",
        "fixmedins_code": code,
        "input": {"data": data},
    }


def _withdraw(doc: dict[str, Any], stas: str, code: str = "H44010000001") -> dict[str, Any]:
    setlinfo = doc["input"]["setlinfo"]
    row = {"psn_no": setlinfo["psn_no"], "setl_id": setlinfo["setl_id"], "stas_type": stas}
    return _envelope("4102", {"stastinfo": [row]}, code)


def _query(doc: dict[str, Any], code: str = "H44010000001") -> dict[str, Any]:
    setlinfo = doc["input"]["setlinfo"]
    return _envelope("4103", {"psn_no": setlinfo["psn_no"], "setl_id": setlinfo["setl_id"]}, code)


async def _uploaded(client: Client, doc: dict[str, Any]) -> dict[str, Any]:
    status, answer = await client.post("/fsi/api/4101A", doc)
    assert status == 200 and answer["infcode"] == 0, answer
    await wait_stored(client, answer["output"]["data"]["setl_list_id"])
    return dict(answer)


async def _status_of(client: Client, doc: dict[str, Any]) -> str:
    status, answer = await client.post("/fsi/api/4103", _query(doc))
    assert status == 200 and answer["infcode"] == 0, answer
    return str(answer["output"]["setlinfo"]["stas_type"])


async def _receipts(stack: Stack, setl_id: str) -> int:
    count = await stack.pool.fetchval("SELECT count(*) FROM receipts WHERE setl_id = $1", setl_id)
    return int(count)


@integration
async def test_4101_and_4101A_upload_on_their_paths_and_on_the_service_address(
    stack: Stack, hospital: Client
) -> None:
    doc = document(_setl())
    status, answer = await hospital.post("/fsi/api/4101A", doc)
    assert status == 200 and answer["infcode"] == 0 and answer["err_msg"] == "", answer
    receipt = answer["output"]["data"]["setl_list_id"]
    # the receiving time is China Standard Time, whatever zone the stack's clock reads
    received = await stack.pool.fetchval(
        "SELECT received_at FROM receipts WHERE receipt_id = $1", uuid.UUID(receipt)
    )
    local = received.astimezone(CST)
    assert answer["refmsg_time"] == f"{local:%Y%m%d%H%M%S}{local.microsecond // 1000:03d}"

    old = make_settlement(
        random.Random(9),
        infno="4101",
        now=naive_now(),
        mdtrtarea_admvs="440100",
        insuplc_admdvs="440300",
        fixmedins_code="H44010000001",
    )
    old["input"]["setlinfo"]["setl_id"] = _setl()
    status, answer = await hospital.post("/fsi/api/4101", old)
    assert status == 200 and answer["infcode"] == 0, answer

    for sent in (
        document(_setl()),
        {
            **old,
            "input": {**old["input"], "setlinfo": {**old["input"]["setlinfo"], "setl_id": _setl()}},
        },
    ):
        status, answer = await hospital.post("/fsi/api", sent)
        assert status == 200 and answer["infcode"] == 0, answer
        assert answer["output"]["data"]["revision"] == 1
        assert await _receipts(stack, sent["input"]["setlinfo"]["setl_id"]) == 1
    # the path's transaction and the body's must agree
    status, answer = await hospital.post("/fsi/api/4101A", {**doc, "infno": "4102"})
    assert status == 200 and answer["infcode"] == -1 and "ENV_INFNO" in answer["err_msg"]


@integration
async def test_the_service_address_names_an_unknown_or_missing_infno(hospital: Client) -> None:
    for body, shown in (
        ({**document(_setl()), "infno": "9999"}, "'9999'"),
        (_envelope("", {}), "''"),
    ):
        status, answer = await hospital.post("/fsi/api", body)
        assert status == 200 and answer["infcode"] == -1, answer
        (error,) = answer["output"]["errors"]
        assert (error["rule"], error["field"]) == ("NAT_INFNO", "infno")
        assert shown in error["message_en"] and "4101, 4101A, 4102, 4103" in error["message_en"]
    missing = document(_setl())
    del missing["infno"]
    status, answer = await hospital.post("/fsi/api", missing)
    assert answer["infcode"] == -1 and "(none)" in answer["output"]["errors"][0]["message_en"]
    status, answer = await hospital.post("/fsi/api", {**missing, "infno": "X" * 5000})
    (error,) = answer["output"]["errors"]  # the caller's text is cut, not echoed whole
    assert f"'{'X' * 16}'" in error["message_en"] and len(error["message_en"]) < 120
    status, answer = await hospital.post("/fsi/api", b"{not json")
    assert status == 200 and answer["output"]["errors"][0]["rule"] == "DEC_JSON"
    status, _ = await hospital.post("/fsi/api/9999", document(_setl()))
    assert status == 404


@integration
async def test_withdraw_and_resubmit_a_list_through_the_pipeline(
    stack: Stack, hospital: Client
) -> None:
    doc = document(_setl())
    setl_id = doc["input"]["setlinfo"]["setl_id"]
    await _uploaded(hospital, doc)
    assert await _status_of(hospital, doc) == "1"

    status, answer = await hospital.post("/fsi/api/4102", _withdraw(doc, "0"))
    assert status == 200 and answer["infcode"] == 0, answer
    (row,) = answer["output"]["data"]
    assert (row["setl_id"], row["stas_type"], row["revision"]) == (setl_id, "0", 2)
    await wait_stored(hospital, row["setl_list_id"])  # through Kafka and the sink
    assert await _status_of(hospital, doc) == "0"
    stored = await stack.pool.fetchrow(
        "SELECT revision, record->'input'->'setlinfo'->>'stas_type' AS stas FROM cases "
        "WHERE fixmedins_code = $1 AND setl_id = $2",
        "H44010000001",
        setl_id,
    )
    assert (stored["revision"], stored["stas"]) == (2, "0")

    # withdrawn twice: refused, nothing changes
    status, answer = await hospital.post("/fsi/api/4102", _withdraw(doc, "0"))
    assert answer["infcode"] == -1 and answer["output"]["errors"][0]["rule"] == "NAT_STATUS"
    assert await _receipts(stack, setl_id) == 2

    # re-submitted on the service address: its content is the first revision's again, yet a
    # new revision (a duplicate would never reach the sink and the list would stay withdrawn)
    status, answer = await hospital.post("/fsi/api", _withdraw(doc, "1"))
    assert answer["infcode"] == 0, answer
    (row,) = answer["output"]["data"]
    assert row["revision"] == 3
    await wait_stored(hospital, row["setl_list_id"])
    assert await _status_of(hospital, doc) == "1"
    status, answer = await hospital.post("/fsi/api/4102", _withdraw(doc, "1"))
    assert answer["infcode"] == -1 and "NAT_STATUS" in answer["err_msg"]
    # one case, its latest revision: never counted twice
    cases = await stack.pool.fetch("SELECT revision FROM cases WHERE setl_id = $1", setl_id)
    assert [r["revision"] for r in cases] == [3]
    # each change is a message on the accepted topic, as a consumer reads it
    key = f"H44010000001:{setl_id}"
    sent = await read_topic(stack.bootstrap, stack.settings.topics.accepted, {key}, expect=3)
    assert [(m["revision"], m["document"]["input"]["setlinfo"]["stas_type"]) for m in sent] == [
        (1, "1"),
        (2, "0"),
        (3, "1"),
    ]


@integration
async def test_4102_names_each_bad_row_and_changes_nothing(stack: Stack, hospital: Client) -> None:
    doc = document(_setl())
    await _uploaded(hospital, doc)
    setl_id = doc["input"]["setlinfo"]["setl_id"]
    rows = [
        {"psn_no": doc["input"]["setlinfo"]["psn_no"], "setl_id": setl_id, "stas_type": "0"},
        {"psn_no": "P1", "setl_id": "", "stas_type": "2"},
        {"psn_no": "wrong", "setl_id": setl_id, "stas_type": 0},
    ]
    status, answer = await hospital.post("/fsi/api/4102", _envelope("4102", {"stastinfo": rows}))
    assert status == 200 and answer["infcode"] == -1
    assert [(e["rule"], e["field"]) for e in answer["output"]["errors"]] == [
        ("NAT_REQUIRED", "input.data.stastinfo[1].setl_id"),
        ("NAT_INPUT", "input.data.stastinfo[1].stas_type"),
        ("NAT_INPUT", "input.data.stastinfo[2].setl_id"),
    ]
    status, answer = await hospital.post(
        "/fsi/api/4102", _envelope("4102", {"stastinfo": rows[2:]})
    )
    assert [(e["rule"], e["field"]) for e in answer["output"]["errors"]] == [
        ("NAT_PSN", "input.data.stastinfo[0].psn_no")
    ]
    status, answer = await hospital.post("/fsi/api/4102", _envelope("4102", {}))
    assert answer["output"]["errors"][0]["rule"] == "NAT_REQUIRED"
    assert await _receipts(stack, setl_id) == 1 and await _status_of(hospital, doc) == "1"


@integration
async def test_4103_returns_the_stored_list_in_its_output_shape(hospital: Client) -> None:
    doc = document(_setl())
    await _uploaded(hospital, doc)
    status, answer = await hospital.post("/fsi/api", _query(doc))
    assert status == 200 and answer["infcode"] == 0, answer
    output = answer["output"]
    assert tuple(output) == national.QUERY_NODES
    sent, got = doc["input"], output["setlinfo"]
    assert got["setl_id"] == sent["setlinfo"]["setl_id"] and got["psn_name"] == "张三"
    assert got["fixmedins_code"] == "H44010000001" and got["stas_type"] == "1"
    assert [d["diag_code"] for d in output["diseinfo"]] == [
        d["diag_code"] for d in sent["diseinfo"]
    ]
    assert [o["oprn_oprt_code"] for o in output["oprninfo"]] == [
        o["oprn_oprt_code"] for o in sent["oprninfo"]
    ]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", got["adm_time"])
    assert got["adm_time"] == sent["setlinfo"]["adm_time"]
    days, hours, minutes = (int(p) for p in sent["setlinfo"]["vent_used_dura"].split("/"))
    assert (got["vent_used_days"], got["vent_used_hcnt"], got["vent_used_mcnt"]) == (
        days,
        hours,
        minutes,
    )
    # every name is national: 4103's output, or the 4101A/4101 upload's as stored
    national_names = _query_setlinfo_names()
    for name in ("4101A-fields.csv", "4101-fields.csv"):
        national_names |= _reference_fields(name)["setlinfo"]
    # ... or the national settlement transaction's (2207) summary, which the province has
    # only from the upload (docs/upload-format.md, "Fields 4101A leaves out")
    settlement_2207 = {"medfee_sumamt", "fund_pay_sumamt", "hifp_pay", "psn_cash_pay", "setl_time"}
    assert set(got) - national_names == settlement_2207


@integration
async def test_a_dry_run_checks_but_stores_and_sends_nothing(
    stack: Stack, hospital: Client
) -> None:
    doc = document(_setl())
    setl_id = doc["input"]["setlinfo"]["setl_id"]
    status, answer, headers = await hospital.request(
        "POST", "/fsi/api/4101A?dry_run=1", msgspec.json.encode(doc)
    )
    assert status == 200 and answer["infcode"] == 0, answer
    assert answer["output"]["data"] == {"dry_run": True, "case_key": f"H44010000001:{setl_id}"}
    assert headers["X-Dipgw-Dry-Run"] == "1"
    bad = document(_setl())
    del bad["input"]["setlinfo"]["psn_name"]
    status, answer, _ = await hospital.request(
        "POST", "/fsi/api?dry_run=1", msgspec.json.encode(bad)
    )
    assert answer["infcode"] == -1 and "psn_name" in answer["err_msg"]
    assert await _receipts(stack, setl_id) == 0
    # the real upload afterwards is the first revision: the dry run reserved nothing
    answer = await _uploaded(hospital, doc)
    assert answer["output"]["data"]["revision"] == 1
    status, answer, _ = await hospital.request(
        "POST", "/fsi/api/4102?dry_run=1", msgspec.json.encode(_withdraw(doc, "0"))
    )
    assert answer["infcode"] == 0 and answer["output"]["data"][0]["dry_run"] is True
    assert await _receipts(stack, setl_id) == 1 and await _status_of(hospital, doc) == "1"
    status, answer, _ = await hospital.request(
        "POST", "/fsi/api/4101A?dry_run=yes", msgspec.json.encode(doc)
    )
    assert status == 400 and answer["errors"][0]["rule"] == "BAD_QUERY"


@integration
async def test_a_hospital_cannot_change_or_query_another_hospitals_list(
    stack: Stack, hospital: Client
) -> None:
    other = await register_hospital(stack, "H44010000471", "440100")
    doc = document(_setl())
    await _uploaded(hospital, doc)
    code = "H44010000471"
    for path, body in (
        ("/fsi/api/4102", _withdraw(doc, "0", code)),
        ("/fsi/api", _query(doc, code)),
    ):
        status, answer = await other.post(path, body)
        assert status == 200 and answer["infcode"] == -1, answer
        assert answer["output"]["errors"][0]["rule"] == "NOT_FOUND"  # as if absent
    # naming the other hospital in the envelope is refused outright
    status, answer = await other.post("/fsi/api/4102", _withdraw(doc, "0"))
    assert status == 403 and answer["errors"][0]["rule"] == "FORBIDDEN_INSTITUTION"
    assert await _receipts(stack, doc["input"]["setlinfo"]["setl_id"]) == 1
    assert await _status_of(hospital, doc) == "1"


@integration
async def test_openapi_describes_the_national_routes(hospital: Client) -> None:
    status, spec, _ = await Client(hospital.stack).request("GET", "/openapi.json")
    assert status == 200
    for path in ("/fsi/api", "/fsi/api/4102", "/fsi/api/4103"):
        operation = spec["paths"][path]["post"]
        assert operation["operationId"] and operation["tags"] == ["national"]
        body = operation["requestBody"]["content"]["application/json"]
        assert body["schema"] and body["example"]["infno"] in national.TRANSACTIONS
        assert operation["responses"]["200"]["content"]["application/json"]["example"]


@integration
async def test_a_body_too_deep_or_of_the_wrong_shape_is_refused_clearly(hospital: Client) -> None:
    deep = deep_array(100_000)
    for path, body in (
        ("/fsi/api", b'{"x": ' + deep + b', "infno": "4102"}'),
        ("/fsi/api/4102", b'{"infno": "4102", "input": {"x": ' + deep + b"}}"),
        ("/fsi/api/4103", b'{"input": {"data": {"x": ' + deep + b"}}}"),
    ):
        status, answer = await hospital.post(path, body)
        assert status == 422 and answer["errors"][0]["rule"] == "JSON_TOO_DEEP", (path, answer)
    status, answer = await hospital.post("/fsi/api", b"[]")
    assert status == 200 and answer["infcode"] == -1
    assert answer["output"]["errors"][0]["rule"] == "NAT_INPUT"
    status, answer = await hospital.post("/fsi/api/4103", _envelope("4103", {"setl_id": [1]}))
    (error,) = answer["output"]["errors"]
    assert error["rule"] == "NAT_INPUT" and "$.input.data.setl_id" in error["message_en"]
    # a control character in a key (schemathesis sent NUL: PostgreSQL refuses it, a 500 then)
    for path, data in (
        ("/fsi/api/4103", {"psn_no": "P1", "setl_id": "S\x001"}),
        ("/fsi/api/4102", {"stastinfo": [{"psn_no": "P\x00", "setl_id": "S1", "stas_type": "0"}]}),
    ):
        status, answer = await hospital.post(path, _envelope(path[-4:], data))
        assert status == 200 and answer["infcode"] == -1, (path, answer)
        (error,) = answer["output"]["errors"]
        assert error["rule"] == "NAT_INPUT" and "control" in error["message_en"], answer


# -- Hypothesis: signed random national calls ----------------------------------------------

_SHAPE = {"rule", "field", "dimension", "severity", "message", "message_en"}
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_rows = st.fixed_dictionaries(
    {},
    optional={
        "psn_no": st.one_of(st.text(max_size=40), st.integers(), st.none()),
        "setl_id": st.one_of(st.text(max_size=40), st.integers(), st.none(), _json),
        "stas_type": st.sampled_from(["0", "1", "2", "3", "", "x", 0, 1, None, 1.5]),
    },
)
_bodies = st.one_of(
    _json,
    st.builds(
        lambda infno, code, data: {"infno": infno, "fixmedins_code": code, "input": {"data": data}},
        st.sampled_from([*national.TRANSACTIONS, "9999", "", None, 4102]),
        st.sampled_from(["H44010000001", "H44010000471", "", None]),
        st.one_of(
            _json,
            _rows,
            st.builds(
                lambda rows: {"stastinfo": rows},
                st.one_of(_rows, st.lists(_rows, max_size=4), _json),
            ),
        ),
    ),
)


@integration
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=_bodies,
    path=st.sampled_from(["/fsi/api", "/fsi/api/4102", "/fsi/api/4103", "/fsi/api/4101A"]),
    dry_run=st.sampled_from(["", "?dry_run=1", "?dry_run=0"]),
)
async def test_random_signed_national_calls_get_a_clear_answer(
    hospital: Client, body: Any, path: str, dry_run: str
) -> None:
    status, answer, _ = await hospital.request("POST", path + dry_run, msgspec.json.encode(body))
    assert status < 500 or status == 503, (path, body, status, answer)
    if status == 200:
        assert answer["infcode"] in (0, -1), answer
        if answer["infcode"] == -1:
            errors = answer["output"]["errors"]
            assert errors and all(set(e) >= _SHAPE for e in errors), answer
            assert answer["err_msg"]
    else:
        assert answer["errors"] and all(set(e) >= _SHAPE for e in answer["errors"]), answer
