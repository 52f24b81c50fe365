"""Hostile input against the running gateway (issue 11): every value a client controls — query
parameters, path ids, header values — is answered 4xx in the error shape, never 5xx; a bad
`since` or `Last-Event-ID` is a 400 before an event stream says 200.

Requests go over a raw socket, so that the bytes sent are exactly the ones written here
(invalid UTF-8 in a header or a query included), whatever an HTTP client would normalise.
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse

import msgspec
import pytest

from adapters.runtime.metrics import REGISTRY as METRICS
from gateway.runtime import Stack
from tests.conftest import Client, city_client

pytestmark = pytest.mark.integration

SHAPE = {"rule", "field", "dimension", "severity", "message", "message_en"}


def q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


async def raw_exchange(
    stack: Stack, request: bytes, *, status_only: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """Send these exact bytes as the request; the answer's status, header fields (lower-case
    names) and body (dechunked), read until the server closes."""
    host, port = urllib.parse.urlsplit(stack.url).netloc.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 30)
        status = int(status_line.split()[1])
        if status_only:
            return status, {}, b""
        data = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    raw_headers, _, body = data.partition(b"\r\n\r\n")
    fields = {}
    for line in raw_headers.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    if fields.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return status, fields, body


async def raw_get(
    stack: Stack, target: str, headers: list[tuple[str, bytes]], *, status_only: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """One GET of `target` (already percent-encoded) with these exact header bytes."""
    host = urllib.parse.urlsplit(stack.url).hostname
    head = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n".encode()
    head += b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers)
    return await raw_exchange(stack, head + b"\r\n", status_only=status_only)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


def bearer(client: Client) -> list[tuple[str, bytes]]:
    return [("Authorization", f"Bearer {client.token}".encode())]


async def refused_400(
    stack: Stack, target: str, headers: list[tuple[str, bytes]], field: str
) -> None:
    status, fields, body = await raw_get(stack, target, headers)
    assert status == 400, (target, headers[1:], status, body[:500])
    assert fields["content-type"].startswith("application/json"), fields
    (problem,) = msgspec.json.decode(body)["errors"]
    assert set(problem) == SHAPE
    assert problem["rule"] == "BAD_QUERY" and problem["field"] == field, problem
    assert fields["x-dipgw-reason"] == "BAD_QUERY"


# -- the findings, one by one, as plain JSON and as event streams --------------------------

_SCORED = ("/v1/scored?", "/v1/scored/stream?max_seconds=1&")
_SSE = [("Accept", b"text/event-stream")]


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("route", _SCORED)
async def test_a_time_at_the_ends_of_the_calendar_is_a_400(
    stack: Stack, ops: Client, route: str, name: str, moment: str
) -> None:
    target = f"{route}{name}={q(moment)}"
    await refused_400(stack, target, bearer(ops), name)
    await refused_400(stack, target, bearer(ops) + _SSE, name)


@pytest.mark.parametrize(
    "last_event_id", ["²".encode(), b"9" * 20, b"9" * 5000, str(2**63).encode(), b"\xff", b"-1"]
)
async def test_a_hostile_last_event_id_is_a_400_before_the_stream_starts(
    stack: Stack, ops: Client, last_event_id: bytes
) -> None:
    headers = [*bearer(ops), ("Last-Event-ID", last_event_id), *_SSE]
    await refused_400(stack, "/v1/scored/stream?max_seconds=1", headers, "Last-Event-ID")


async def test_the_largest_position_is_a_good_last_event_id(stack: Stack, ops: Client) -> None:
    headers = [*bearer(ops), ("Last-Event-ID", str(2**63 - 1).encode()), *_SSE]
    status, fields, body = await raw_get(stack, "/v1/scored/stream?max_seconds=1", headers)
    assert status == 200 and fields["content-type"].startswith("text/event-stream")
    assert b"event: case" not in body


async def test_a_subscriber_leaving_mid_stream_is_not_a_failure(stack: Stack, ops: Client) -> None:
    """The heartbeat written after the client left ends the stream; no 503 is counted."""

    def answered(status: str) -> float:
        labels = {"route": "/v1/scored/stream", "status": status}
        return METRICS.get_sample_value("dipgw_http_requests_total", labels) or 0.0

    failed, ended = answered("503"), answered("200")
    after = str(2**63 - 1)  # nothing to send but the heartbeat (every 10 s)
    target = f"/v1/scored/stream?after={after}&max_seconds=12"
    assert (await raw_get(stack, target, bearer(ops), status_only=True))[0] == 200
    for _ in range(300):
        if answered("200") > ended:
            break
        await asyncio.sleep(0.1)
    assert answered("200") == ended + 1 and answered("503") == failed


@pytest.mark.parametrize("value", ["9" * 5000, "²", "0", "16", "1e-400"])
@pytest.mark.parametrize("accept", [b"application/json", b"text/csv"])
async def test_hostile_timely_days_is_a_400(
    stack: Stack, ops: Client, value: str, accept: bytes
) -> None:
    headers = [*bearer(ops), ("Accept", accept)]
    await refused_400(stack, f"/v1/quality/report?timely_days={q(value)}", headers, "timely_days")


@pytest.mark.parametrize("value", ["0001-01-01", "9999-12-31", "2026-W01-1"])
@pytest.mark.parametrize("name", ["from", "to"])
async def test_a_report_day_out_of_range_is_a_400(
    stack: Stack, ops: Client, name: str, value: str
) -> None:
    for route in ("report", "top-rules", "dashboard"):
        await refused_400(stack, f"/v1/quality/{route}?{name}={value}", bearer(ops), name)


@pytest.mark.parametrize(
    ("name", "value"),
    [("Authorization", b"Bearer \xff\xfe"), ("X-Request-Id", b"\xc3\xa9"), ("Cookie", b"")],
)
async def test_a_hostile_header_value_is_a_400(
    stack: Stack, ops: Client, name: str, value: bytes
) -> None:
    if name == "Cookie":
        headers, field = [("Cookie", b"dipgw_ops=\xff")], "Cookie"
    else:
        headers, field = [*bearer(ops), (name, value)], name
        if name == "Authorization":
            headers = [(name, value)]
    routes = ("/v1/quality/report", "/ops") if name == "Cookie" else ("/v1/scored", "/ops")
    for route in routes:
        await refused_400(stack, route, headers, field)


@pytest.mark.parametrize(
    ("request_bytes", "status", "rule"),
    [
        # a header longer than the parser takes (8,190 bytes)
        (
            b"GET /v1/scored HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
            431,
            "HTTP431",
        ),
        # a request line longer than the parser takes
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431, "HTTP431"),
        # not HTTP at all (a TLS hello, or bytes)
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "HTTP400"),
        # a header name with a space, a bad Content-Length
        (b"GET /v1/scored HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400, "HTTP400"),
        (b"POST /v1/settlements HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "HTTP400"),
    ],
    ids=["long-header", "long-request-line", "not-http", "bad-header-name", "bad-length"],
)
async def test_what_the_http_parser_refuses_is_answered_in_the_error_shape(
    stack: Stack, request_bytes: bytes, status: int, rule: str
) -> None:
    """aiohttp refuses these before any handler runs; the answer is still ours: JSON in the
    documented shape, the reason header, counted, and nothing of the request echoed."""

    def counted() -> float:
        labels = {"route": "unparsed", "status": str(status)}
        return METRICS.get_sample_value("dipgw_http_requests_total", labels) or 0.0

    before = counted()
    got, fields, body = await raw_exchange(stack, request_bytes)
    assert got == status, body[:300]
    assert fields["content-type"].startswith("application/json"), (fields, body[:300])
    assert fields["x-dipgw-reason"] == rule
    (problem,) = msgspec.json.decode(body)["errors"]
    assert set(problem) == SHAPE and problem["rule"] == rule
    assert b"aaaa" not in body and b"Bad Name" not in body
    assert counted() == before + 1


async def test_a_case_key_that_cannot_be_stored_is_not_found(stack: Stack, ops: Client) -> None:
    for target in (
        "/v1/cases/H44010000001/a%00b",
        "/v1/cases/H44010000001/%ED%A0%80",
        f"/v1/cases/H44010000001/{'a' * 5000}",
        "/v1/cases/%C2%B2/SETL1",
        "/v1/receipts/urn:uuid:00000000-0000-0000-0000-000000000000",
        f"/v1/receipts/{q('٣' * 32)}",
    ):
        status, _, body = await raw_get(stack, target, bearer(ops))
        assert status == 404, (target, body[:300])
        assert msgspec.json.decode(body)["errors"][0]["rule"] == "NOT_FOUND", target


# -- the sweep: every GET route, every parameter it reads, every hostile value --------------

READS: dict[str, tuple[str, ...]] = {
    "/healthz": (),
    "/readyz": (),
    "/metrics": (),
    "/openapi.json": (),
    "/asyncapi.json": (),
    "/v1/receipts/{receipt_id}": (),
    "/v1/cases/{fixmedins_code}/{setl_id}": (),
    "/v1/dictionaries": (),
    "/v1/dictionaries/{name}": (),
    "/v1/scored": ("city", "role", "status", "after", "since", "until", "limit"),
    "/v1/settlement/runs": ("city", "kind", "period", "limit", "page"),
    "/v1/settlement/runs/{run_id}": ("hospital",),
    "/v1/simulations": ("city", "year", "limit", "page"),
    "/v1/simulations/{sim_id}": (),
    "/v1/special-reviews": ("city", "hospital", "status", "year", "limit", "page"),
    "/v1/special-reviews/{review_id}": (),
    "/v1/scored/stream": (
        *("city", "role", "status", "after", "since", "until", "limit"),
        *("max_seconds", "max_events"),
    ),
    "/v1/quality/report": ("from", "to", "city", "hospital", "by", "format", "timely_days"),
    "/v1/quality/top-rules": ("from", "to", "city", "hospital", "severity", "limit"),
    "/v1/quality/alerts": ("city", "limit"),
    "/v1/quality/dashboard": ("from", "to", "city", "hospital"),
    "/v1/ops/rejected": ("hospital", "rule", "since", "until", "page", "limit"),
    "/v1/ops/rejected/{partition}/{offset}": (),
    "/v1/ops/dead-letters": ("worker", "hospital", "since", "until", "page", "limit"),
    "/v1/ops/dead-letters/{worker}/{topic}/{partition}/{offset}": (),
    "/v1/ops/audit": ("page", "limit"),
    "/ops": (),
    "/ops/login": (),
    "/ops/static/{name}": (),
}
"""The query parameters each GET route reads (checked against the router and OpenAPI)."""

HOSTILE = [
    "",
    "%00",
    "%0A",
    "%FF",
    "%ED%A0%80",  # a lone surrogate, as UTF-8
    q("²"),
    q("٣"),
    q("１"),
    q("\u202e"),  # right-to-left override
    q("\u2028"),
    "-1",
    q("+1"),
    "%201",
    "1_0",
    "0x10",
    "1e3",
    "1e-400",
    "NaN",
    "0",
    "01",
    "9" * 20,
    "9" * 5000,
    str(2**63),
    str(2**63 - 1),
    q("0001-01-01T00:00:00+14:00"),
    q("9999-12-31T23:59:59-14:00"),
    q("2026-01-01T00:00:00"),
    "2026-01-01T00:00:00+08:00",  # "+" unencoded: a space
    "0001-01-01",
    "9999-12-31",
    "2026-02-30",
    "a" * 5000,
    q("广州"),
    "csv",
    "all",
    "insured",
    "H44010000001",
    "440100",
]
HOSTILE_HEADERS: list[tuple[str, bytes]] = [
    ("Last-Event-ID", "²".encode()),
    ("Last-Event-ID", b"9" * 20),
    ("Last-Event-ID", b"9" * 5000),
    ("Last-Event-ID", str(2**63).encode()),
    ("Last-Event-ID", b"\xff"),
    ("Accept", b"\xff\xfe"),
    ("Accept", b"text/csv" * 500),
    ("X-Request-Id", b"\xff"),
    ("X-Request-Id", b"r" * 5000),
    ("Cookie", b"dipgw_ops=\xff"),
    ("Cookie", b'dipgw_ops="\\012\\377"'),
    ("Cookie", b"dipgw_ops=" + b"t" * 5000),
]


def _get_routes() -> set[str]:
    """The GET routes of the app as `gateway.app.create_app` builds it."""
    from tests.gateway.test_openapi import app

    return {
        route.resource.canonical
        for route in app().router.routes()
        if route.method in ("GET", "*") and route.resource is not None
    }


def test_the_sweep_knows_every_get_route_and_every_documented_parameter() -> None:
    from gateway import openapi

    assert set(READS) == _get_routes()
    document = msgspec.json.decode(openapi.document_bytes())
    for path, operations in document["paths"].items():
        get = operations.get("get")
        if get is None:
            continue
        documented = {p["name"] for p in get.get("parameters", []) if p["in"] == "query"}
        assert documented <= set(READS[path]), path


def _target(route: str, name: str, value: str) -> str:
    """The route with `value` as query parameter `name`, or as path id `name` ("{…}"), other
    path ids "x"; a stream for at most a second."""
    path = route.replace(name, value) if name.startswith("{") else route
    path = re.sub(r"\{[^}]+\}", "x", path)
    query = [f"{name}={value}"] if name and not name.startswith("{") else []
    if route.endswith("/stream"):
        query.append("max_seconds=1")  # after the value: the first of a name is read
    return f"{path}?{'&'.join(query)}" if query else path


async def test_no_hostile_value_in_any_parameter_of_any_get_route_is_a_server_error(
    stack: Stack, ops: Client
) -> None:
    city = await city_client(stack, "440100")
    requests: list[tuple[str, list[tuple[str, bytes]]]] = []
    for route, names in READS.items():
        names = (*names, *re.findall(r"\{[^}]+\}", route))
        cases = [(name, value) for name in names for value in HOSTILE]
        for who in (ops, city):
            requests += [(_target(route, n, v), bearer(who)) for n, v in cases or [("", "")]]
            for header in HOSTILE_HEADERS:
                headers = [header] if header[0] == "Cookie" else [*bearer(who), header]
                requests.append((_target(route, "", "x"), headers))
    failures: list[tuple[str, list[tuple[str, bytes]], int, bytes]] = []
    gate = asyncio.Semaphore(8)

    async def one(target: str, headers: list[tuple[str, bytes]]) -> None:
        async with gate:
            stream = "/stream" in target
            status, fields, body = await raw_get(stack, target, headers, status_only=stream)
        if status >= 500:
            failures.append((target[:120], [(n, v[:40]) for n, v in headers[1:]], status, body))
        elif status >= 400 and not stream:
            assert fields["content-type"].startswith("application/json"), (target, fields)
            problems = msgspec.json.decode(body)["errors"]
            assert problems and all(set(p) == SHAPE for p in problems), (target, body)

    await asyncio.gather(*(one(target, headers) for target, headers in requests))
    assert failures == [], f"{len(failures)} of {len(requests)}: {failures[:5]}"
