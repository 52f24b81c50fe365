"""Fuzzing that reaches the bodies (issue 11): no generated or hostile request gets a 5xx from
the real running gateway, and the upload operations answer at the body level (200, 202, 413,
422), not at the door (401, 403).

- schemathesis (a subprocess: the gateway runs on this test session's event loop) over
  /openapi.json with the hooks of tests/fuzz/schemathesis_hooks.py (through
  tests/fuzz/conformance_hooks.py) — uploads signed by a
  registered hospital over the exact body bytes, reads with the token or signature that may
  make them, half the upload bodies hostile variants of real lists — checking server errors,
  status codes, content types, headers and response schemas against the spec, following the
  spec's links (upload → receipt, case) in the stateful phase. Configuration:
  tests/fuzz/schemathesis.toml. The gateway's own /metrics, read before and after, tell what
  each route answered.
- the bomb corpus (tests/fuzz/corpus.py: XLSX bombs, deep JSON, huge numbers, NUL, bidi,
  damaged bytes, wrong shapes) on every upload endpoint, every run.
- Hypothesis over header values and raw query strings on every route, sent over a socket so
  that the bytes are exactly the generated ones, and over signed random uploads.

Over HTTP, one run sends at least 10,000 generated or hostile inputs (schemathesis ≥ 6,000,
the corpus ~600, headers and queries 3,000, signed uploads 600); the feed formats' own readers
get ~12,000 more without HTTP in tests/adapters/test_formats_hypothesis.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import tomllib
import urllib.parse
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from gateway.runtime import LocalServices, Stack, running_stack
from gateway.signing import signed_headers
from tests.builders import document, tagged_settings
from tests.clock import CLOCK
from tests.conftest import Client, register_hospital
from tests.fuzz import corpus

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "tests" / "fuzz"
CODE = "H44010000071"
CITY = "440100"
SHAPE = {"rule", "field", "dimension", "severity", "message", "message_en"}

UPLOADS = ("/v1/settlements", "/v1/settlements/batch", "/v1/settlements/file", "/fsi/api/{infno}")
BODY_LEVEL = {200, 202, 413, 422}  # answered after reading the body (403: the list's owner)
#: schemathesis' own count for the run of tests/fuzz/schemathesis.toml must not fall below
#: this (about 3,300 with seed 20261124: coverage ~750, fuzzing ~2,500, stateful ~50)
MIN_GENERATED = 6_000


@dataclass
class Target:
    """The fuzzed gateway: a stack of its own (own topics, no workers, no rate limit in the
    way), a registered hospital of `CITY`, an ops and a city token."""

    stack: Stack
    hospital: Client
    ops: Client
    city: Client


@pytest.fixture(scope="module")
async def target(services: LocalServices) -> AsyncIterator[Target]:
    base = tagged_settings(services.settings, "fz")
    limits = msgspec.structs.replace(base.limits, rate_per_s=1e6, burst=1_000_000)
    fuzz_settings = msgspec.structs.replace(base, limits=limits)
    async with running_stack(
        fuzz_settings, services.bootstrap, services.dsn, workers=(), clock=CLOCK
    ) as stack:
        hospital = await register_hospital(stack, CODE, CITY)
        ops = Client(stack, token=await stack.registry.issue_token("ops", "fuzz-ops"))
        city = Client(stack, token=await stack.registry.issue_token("city", "fuzz-city", CITY))
        yield Target(stack, hospital, ops, city)


_SAMPLE = re.compile(r'^dipgw_http_requests_total\{route="([^"]*)",status="(\d+)"\} (\S+)$', re.M)


async def http_counts(ops: Client) -> Counter[tuple[str, int]]:
    """dipgw_http_requests_total by (route, status), as the gateway counts them."""
    status, payload, _ = await ops.request("GET", "/metrics")
    assert status == 200, payload
    text = payload.decode() if isinstance(payload, bytes) else str(payload)
    return Counter({(route, int(code)): int(float(n)) for route, code, n in _SAMPLE.findall(text)})


def _by_route(counts: Counter[tuple[str, int]]) -> dict[str, dict[int, int]]:
    out: dict[str, dict[int, int]] = {}
    for (route, status), n in sorted(counts.items()):
        if n:
            out.setdefault(route, {})[status] = n
    return out


# -- schemathesis ----------------------------------------------------------------------------


@dataclass
class Run:
    """One schemathesis run against the target: its exit code, output, JSON report and what
    the gateway counted per route and status meanwhile."""

    returncode: int
    output: str
    report: dict[str, Any]
    seen: dict[str, dict[int, int]]
    seconds: float


async def run_schemathesis(target: Target, tmp_path: Path, config: str, *options: str) -> Run:
    """schemathesis' CLI (a subprocess: the gateway runs on this test session's event loop)
    with the hooks and the target's credentials, over the served /openapi.json."""
    assert target.hospital.secret and target.ops.token and target.city.token
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": str(FUZZ / "conformance_hooks.py"),  # schemathesis_hooks + 2
        "DIPGW_FUZZ_HOSPITAL": CODE,
        "DIPGW_FUZZ_SECRET": target.hospital.secret,
        "DIPGW_FUZZ_CITY": CITY,
        "DIPGW_FUZZ_OPS_TOKEN": target.ops.token,
        "DIPGW_FUZZ_CITY_TOKEN": target.city.token,
    }
    before = await http_counts(target.ops)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(FUZZ / config),
        "run",
        f"{target.stack.url}/openapi.json",
        *options,
        "--report",
        "json",
        "--report-json-path",
        str(tmp_path / "report.json"),
        "--output-truncate",
        "true",
        "--no-color",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=1800)
    seconds = time.monotonic() - started
    after = await http_counts(target.ops)
    output = out.decode(errors="replace")
    seen = _by_route(after - before)
    print(f"schemathesis: {seconds:.0f} s\n{output[-1500:]}")
    print(json.dumps(seen, indent=1))
    report = json.loads((tmp_path / "report.json").read_text())
    assert proc.returncode is not None
    return Run(proc.returncode, output, report, seen, seconds)


async def test_schemathesis_reaches_the_bodies_and_finds_no_server_error(
    target: Target, tmp_path: Path
) -> None:
    run = await run_schemathesis(target, tmp_path, "schemathesis.toml")
    output, report, seen = run.output, run.report, run.seen
    cases = report["test_cases"]
    assert run.returncode == 0 and report["exit_code"] == 0, output[-6000:]
    assert not report["failures"] and not report["errors"], output[-6000:]
    assert cases["with_failures"] == 0 and cases["errored"] == 0, cases
    assert cases["generated"] >= MIN_GENERATED, cases
    assert report["phases"]["stateful"]["status"] == "success", report["phases"]

    server_errors = {r: s for r, by in seen.items() for s in by if s >= 500}
    assert not server_errors, (server_errors, seen)
    for route in UPLOADS:
        answers = seen.get(route, {})
        # every upload is signed right: none stops at authentication
        assert answers.get(401, 0) == 0, (route, answers)
        body_level = sum(n for status, n in answers.items() if status in BODY_LEVEL)
        assert body_level >= 300, (route, answers)
        assert body_level >= 0.8 * sum(answers.values()), (route, answers)
    assert seen["/v1/settlements"].get(202, 0) > 0  # valid lists accepted into Kafka
    assert seen["/v1/settlements/batch"].get(200, 0) > 0
    assert seen["/v1/settlements/file"].get(200, 0) > 0
    assert seen["/fsi/api/{infno}"].get(200, 0) > 0
    assert sum(n for r in UPLOADS for s, n in seen[r].items() if s in BODY_LEVEL) >= 2_000
    # the links were followed to receipts that exist
    assert seen.get("/v1/receipts/{receipt_id}", {}).get(200, 0) > 0, seen


#: The upload and query operations whose answers the conformance run checks (the stream stays
#: open by design: tests/gateway/test_subscriptions.py drives it).
CONFORMANCE_PATHS = r"^/(v1/(settlements|receipts/|cases/|scored$|quality/)|fsi/)"
CONFORMANCE_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
PHASES = ("examples", "fuzzing", "stateful")


async def test_every_answer_of_the_upload_and_query_operations_conforms_to_the_spec(
    target: Target, tmp_path: Path
) -> None:
    """A bounded run (tests/fuzz/conformance.toml): every status answered is documented for
    its operation, with the documented content type, headers and body schema."""
    run = await run_schemathesis(
        target, tmp_path, "conformance.toml", "--include-path-regex", CONFORMANCE_PATHS
    )
    report, seen = run.report, run.seen
    assert not report["failures"] and not report["errors"], run.output[-8000:]
    assert run.returncode == 0 and report["exit_code"] == 0, run.output[-8000:]
    checks = tomllib.loads((FUZZ / "conformance.toml").read_text())["checks"]
    assert all(checks[name]["enabled"] for name in CONFORMANCE_CHECKS), checks
    operations = report["operations"]
    assert operations["tested"] == operations["selected"] >= 11, operations
    assert report["test_cases"]["without_checks"] == 0, report["test_cases"]
    assert all(report["phases"][p]["status"] == "success" for p in PHASES), report["phases"]
    # the answers checked include the successful ones of every operation, not only refusals
    for route, status in (
        ("/v1/settlements", 202),
        ("/v1/settlements/batch", 200),
        ("/v1/settlements/file", 200),
        ("/fsi/api/{infno}", 200),
        ("/v1/scored", 200),
        ("/v1/quality/report", 200),
        ("/v1/quality/top-rules", 200),
        ("/v1/quality/alerts", 200),
        ("/v1/quality/dashboard", 200),
    ):
        assert seen.get(route, {}).get(status, 0) > 0, (route, status, seen)
    assert not {r: s for r, by in seen.items() for s in by if s >= 500}, seen
    # the receipt and the case an upload leads to (schemathesis reaches them only when its
    # stateful phase happens to follow a link from an accepted list): their 200s, checked here
    await _answers_conform(target)


async def _answers_conform(target: Target) -> None:
    """An accepted list's answers, its receipt's and its case's against their schemas in the
    served document (jsonschema, formats checked)."""
    status, spec, _ = await target.ops.request("GET", "/openapi.json")
    assert status == 200
    setl_id = f"CONF{uuid.uuid4().hex[:12]}"
    answers: list[tuple[str, str, int, Any]] = []
    status, receipt = await target.hospital.post(
        "/v1/settlements", document(setl_id, code=CODE, area=CITY, insured=CITY)
    )
    answers.append(("post", "/v1/settlements", status, receipt))
    status, body = await target.hospital.get(f"/v1/receipts/{receipt['receipt_id']}")
    answers.append(("get", "/v1/receipts/{receipt_id}", status, body))
    status, body = await target.city.get(f"/v1/cases/{CODE}/{setl_id}")
    answers.append(("get", "/v1/cases/{fixmedins_code}/{setl_id}", status, body))
    status, body = await target.hospital.post(
        "/fsi/api/4101A", document(f"{setl_id}N", code=CODE, area=CITY, insured=CITY)
    )
    answers.append(("post", "/fsi/api/{infno}", status, body))
    assert [a[2] for a in answers] == [202, 200, 200, 200], answers
    for method, path, status, body in answers:
        media = spec["paths"][path][method]["responses"][str(status)]["content"]
        schema = {**media["application/json"]["schema"], "components": spec["components"]}
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        wrong = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(body)
        ]
        assert not wrong, (method, path, status, wrong, body)


# -- the bomb corpus -----------------------------------------------------------------------


def _check_answer(bomb: corpus.Bomb, status: int, payload: Any) -> str | None:
    """What is wrong with the answer to `bomb`, or None."""
    if status not in bomb.statuses:
        return f"status {status} (expected one of {sorted(bomb.statuses)})"
    if not isinstance(payload, dict):
        return f"not a JSON object: {str(payload)[:200]}"
    if status >= 400:
        errors = payload.get("errors")
        if not errors or not all(set(e) == SHAPE for e in errors):
            return f"not the error shape: {str(payload)[:300]}"
    elif bomb.path.startswith("/fsi/"):
        if payload.get("infcode") not in (0, -1):
            return f"infcode {payload.get('infcode')!r}"
    elif status == 200:
        results = payload.get("results")
        if not isinstance(results, list) or not results:
            return f"no results: {str(payload)[:300]}"
        for result in results:
            for problem in (result.get("errors") or []) + (result.get("warnings") or []):
                if set(problem) != SHAPE:
                    return f"a result's problem is not the shape: {problem}"
    return None


async def _post(client: Client, bomb: corpus.Bomb) -> tuple[int, Any]:
    status, payload, _ = await client.request(
        "POST", bomb.path, bomb.body, content_type=bomb.content_type
    )
    return status, payload


async def test_the_bomb_corpus_gets_no_server_error_on_any_upload_endpoint(
    target: Target,
) -> None:
    bombs = corpus.bombs(CODE, CITY)
    assert len(bombs) > 500
    wrong: list[tuple[str, str, str]] = []
    statuses: Counter[tuple[str, int]] = Counter()
    for bomb in bombs:
        status, payload = await _post(target.hospital, bomb)
        statuses[(bomb.path, status)] += 1
        problem = _check_answer(bomb, status, payload)
        if problem is not None:
            wrong.append((bomb.name, bomb.path, problem))
    print(_by_route(statuses))
    assert not wrong, wrong


# -- Hypothesis: header values and raw query strings ----------------------------------------

_GET_ROUTES = (
    "/v1/receipts/{id}",
    "/v1/cases/{code}/{id}",
    "/v1/scored",
    "/v1/quality/report",
    "/v1/quality/top-rules",
    "/v1/quality/alerts",
    "/v1/quality/dashboard",
    "/ops",
    "/metrics",
    "/healthz",
    "/openapi.json",
)
_PARAMS = (
    "city",
    "role",
    "status",
    "after",
    "since",
    "until",
    "limit",
    "from",
    "to",
    "hospital",
    "by",
    "format",
    "timely_days",
    "severity",
    "max_seconds",
    "max_events",
)
_NASTY = [t.encode("utf-8", "surrogatepass") for t in corpus.HOSTILE_TEXTS if len(t) < 100]
# Bytes an HTTP/1.1 header value may not hold at all (the parser refuses them before the
# gateway sees the request) are left out: CR and LF would split the request.
_header_value = st.one_of(
    st.sampled_from(_NASTY),
    st.binary(max_size=60),
    st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"9" * 5000, b"Bearer ", b"Bearer \xff\xfe", b"DIPGW-HMAC x"]),
).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
_HEADER_NAMES = (
    "Authorization",
    "X-Request-Id",
    "Accept",
    "Content-Type",
    "Last-Event-ID",
    "X-Dipgw-Hospital",
    "X-Dipgw-Timestamp",
    "X-Dipgw-Nonce",
    "X-Dipgw-Signature",
    "Cookie",
    "Origin",
    "X-Forwarded-Proto",
)


def _quote(raw: bytes) -> str:
    return urllib.parse.quote_from_bytes(raw, safe="")


_query_part = st.one_of(
    st.tuples(st.sampled_from(_PARAMS), _header_value).map(lambda p: f"{p[0]}={_quote(p[1])}"),
    st.sampled_from(_PARAMS).map(lambda p: f"{p}="),
    st.sampled_from(["%", "%zz", "%ff%fe", "&&", "=", "a=%00", "+", ";", "[]=1", "limit=1e3"]),
    st.binary(max_size=20).map(_quote),
)
_path_id = st.one_of(
    st.sampled_from(["00000000-0000-0000-0000-000000000000", CODE, "SETL000000000001"]),
    st.binary(min_size=1, max_size=40).map(_quote),
    st.sampled_from(["%00", "%2F", "..", "%ff", "9" * 400, "%E2%80%AE"]),
)


async def _raw(stack: Stack, method: str, target: str, headers: list[tuple[str, bytes]]) -> Any:
    """One request of exactly these bytes; (status, content type, body)."""
    host, port = urllib.parse.urlsplit(stack.url).netloc.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n".encode()
        head += b"".join(n.encode() + b": " + v + b"\r\n" for n, v in headers)
        writer.write(head + b"Content-Length: 0\r\n\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    if fields.get("transfer-encoding") == "chunked":
        body = b""  # an event stream or a CSV report: only its status matters here
    return int(lines[0].split()[1]), fields.get("content-type", ""), body


@settings(max_examples=3_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    route=st.sampled_from(_GET_ROUTES),
    ids=st.tuples(_path_id, _path_id),
    query=st.lists(_query_part, max_size=6).map("&".join),
    principal=st.sampled_from(["ops", "city", "hospital", "none"]),
    extra=st.lists(st.tuples(st.sampled_from(_HEADER_NAMES), _header_value), max_size=4),
)
async def test_hostile_headers_and_queries_never_get_a_server_error(
    target: Target,
    route: str,
    ids: tuple[str, str],
    query: str,
    principal: str,
    extra: list[tuple[str, bytes]],
) -> None:
    path = route.replace("{code}", ids[0]).replace("{id}", ids[1])
    request_target = f"{path}?{query}" if query else path
    headers: list[tuple[str, bytes]] = []
    if principal in ("ops", "city"):
        client = target.ops if principal == "ops" else target.city
        headers.append(("Authorization", f"Bearer {client.token}".encode()))
    elif principal == "hospital":
        assert target.hospital.secret
        # signed over the target as sent: where the gateway reads the path differently, the
        # answer is a 401, which is fine; the point is that nothing is a 500
        signed = signed_headers(CODE, target.hospital.secret.encode(), "GET", request_target)
        headers += [(k, v.encode()) for k, v in signed.items()]
    headers += extra
    status, content_type, body = await _raw(target.stack, "GET", request_target, headers)
    assert status < 500, (request_target, headers, status, body[:500])
    if status >= 400 and content_type.startswith("application/json"):
        errors = msgspec.json.decode(body)["errors"]
        assert errors and all(set(e) == SHAPE for e in errors), body[:500]


# -- Hypothesis: signed random uploads ------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_documents = st.one_of(
    _json,
    st.builds(
        lambda setl, extra, area: {
            "fixmedins_code": CODE,
            "mdtrtarea_admvs": area,
            "input": {"setlinfo": {"setl_id": setl, **extra}, "diseinfo": extra},
        },
        st.text(max_size=40),
        st.dictionaries(st.text(max_size=10), _json, max_size=3),
        st.sampled_from([CITY, "440300", "", "4401001", "ab"]),
    ),
)


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    doc=_documents,
    path=st.sampled_from(
        ["/v1/settlements", "/v1/settlements/batch", "/fsi/api/4101A", "/v1/settlements/file"]
    ),
    raw=st.binary(max_size=200) | st.none(),
    content_type=st.sampled_from(
        ["application/json", "application/x-ndjson", "text/csv", corpus.XLSX]
    ),
)
async def test_signed_random_uploads_never_get_a_server_error(
    target: Target, doc: Any, path: str, raw: bytes | None, content_type: str
) -> None:
    body = (
        raw
        if raw is not None
        else msgspec.json.encode({"records": [doc, doc]} if path.endswith("batch") else doc)
    )
    if not path.endswith("file"):
        content_type = "application/json"
    status, answer = await target.hospital.post(path, body, content_type=content_type)
    assert status < 500, answer
    if status >= 400:
        assert answer["errors"] and all(set(e) == SHAPE for e in answer["errors"]), answer
