"""Who may push and read: signatures, nonces, windows, regions, tokens, mTLS — over real HTTP."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import yarl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway import signing
from gateway.runtime import LocalServices, Stack, running_stack
from tests.builders import document
from tests.clock import CLOCK
from tests.conftest import Client, register_hospital

pytestmark = pytest.mark.integration


async def _post_signed(client: Client, doc: Any, **override: str) -> tuple[int, Any]:
    body = msgspec.json.encode(doc)
    headers = client.headers("POST", "/v1/settlements", body)
    headers.update(override)
    status, payload, _ = await Client(client.stack).request(
        "POST", "/v1/settlements", body, headers=headers
    )
    return status, payload


def _rule(payload: Any) -> str:
    return str(payload["errors"][0]["rule"])


async def test_unsigned_and_badly_signed_requests_are_refused(hospital: Client) -> None:
    doc = document(f"A{uuid.uuid4().hex[:10]}")
    status, payload = await Client(hospital.stack).post("/v1/settlements", doc)
    assert (status, _rule(payload)) == (401, "AUTH_MISSING")

    status, payload = await _post_signed(hospital, doc, **{signing.SIGNATURE: "00" * 32})
    assert (status, _rule(payload)) == (401, "AUTH_SIGNATURE")

    # An unknown hospital gets the answer of a wrong signature (for the same request, the
    # very same bytes: test_a_signature_mismatch_shows_the_servers_canonical_string).
    stranger = Client(hospital.stack, hospital="H99999999999", secret="guess")
    status2, payload2 = await stranger.post("/v1/settlements", document("X1", code="H99999999999"))
    assert (status2, _rule(payload2)) == (status, _rule(payload))

    old = str(int(time.time()) - 301)
    status, payload = await _post_signed(hospital, doc, **{signing.TIMESTAMP: old})
    assert (status, _rule(payload)) == (401, "AUTH_TIMESTAMP")


async def test_a_refused_signature_says_which_part_failed(hospital: Client) -> None:
    """Issue 14 point 5: each part of a signed request gets its own answer, over real HTTP."""
    doc = document(f"H{uuid.uuid4().hex[:10]}")
    status, payload = await _post_signed(hospital, doc, **{signing.NONCE: ""})
    assert (status, _rule(payload), payload["errors"][0]["field"]) == (
        401,
        "AUTH_HEADER_MISSING",
        "X-Dipgw-Nonce",
    )
    # signing headers without the signature are not taken for "no credentials"
    body = msgspec.json.encode(doc)
    partial = hospital.headers("POST", "/v1/settlements", body)
    del partial[signing.SIGNATURE]
    status, payload, _ = await Client(hospital.stack).request(
        "POST", "/v1/settlements", body, headers=partial
    )
    assert (status, _rule(payload)) == (401, "AUTH_HEADER_MISSING")
    assert payload["errors"][0]["message_en"].endswith("missing or empty: X-Dipgw-Signature")

    ahead = str(int(time.time()) + 3600)
    status, payload = await _post_signed(hospital, doc, **{signing.TIMESTAMP: ahead})
    message = payload["errors"][0]["message_en"]
    assert (status, _rule(payload)) == (401, "AUTH_TIMESTAMP")
    assert re.search(rf"timestamp {ahead} \(\S+\+08:00\) is \+(3599|3600) s from", message)
    assert "+08:00 (Unix " in message and "outside ±300 s" in message
    status, payload = await _post_signed(hospital, doc, **{signing.TIMESTAMP: "soon"})
    assert (status, _rule(payload)) == (401, "AUTH_TIMESTAMP_FORMAT")
    status, payload = await _post_signed(hospital, doc, **{signing.NONCE: "n-7"})
    assert (status, _rule(payload)) == (401, "AUTH_NONCE")


async def test_a_signature_mismatch_shows_the_servers_canonical_string(hospital: Client) -> None:
    """The SHA-256 of the string the server built (both body digests), the path it saw and
    the shape of the lines; never the secret or the signature it expected. An unknown code
    gets the same answer for the same request."""
    doc = document(f"C{uuid.uuid4().hex[:10]}")
    body = msgspec.json.encode(doc)
    path = "/v1/settlements?note=proxy"
    headers = hospital.headers("POST", "/v1/settlements", body)  # signed without the query
    anonymous = Client(hospital.stack)
    status, payload, _ = await anonymous.request("POST", path, body, headers=headers)
    assert (status, _rule(payload)) == (401, "AUTH_SIGNATURE")
    message = payload["errors"][0]["message_en"]
    timestamp, nonce = headers[signing.TIMESTAMP], headers[signing.NONCE]
    for sign_type in ("HMAC-SHA256", "HMAC-SM3"):
        server = signing.canonical_request("POST", path, timestamp, nonce, body, sign_type)
        assert hashlib.sha256(server).hexdigest() in message
        assert hashlib.sha256(server).hexdigest() in payload["errors"][0]["message"]
    mine = signing.canonical_request(
        "POST", "/v1/settlements", timestamp, nonce, body, "HMAC-SHA256"
    )
    assert hashlib.sha256(mine).hexdigest() not in message
    assert f"(path {path})" in message and hashlib.sha256(body).hexdigest() in message
    assert "METHOD\\npath?query\\ntimestamp\\nnonce\\nhex(digest(body))" in message
    assert hospital.secret is not None and hospital.secret not in message
    expected = signing.signature(
        hospital.secret.encode(), "HMAC-SHA256", "POST", path, timestamp, nonce, body
    )
    assert expected not in message and expected.upper() not in message

    stranger = dict(headers, **{signing.HOSPITAL: "H99999999997"})
    status2, payload2, _ = await anonymous.request("POST", path, body, headers=stranger)
    assert (status2, payload2) == (status, payload)


async def test_a_signature_in_uppercase_hex_is_accepted(hospital: Client) -> None:
    """docs/upload-format.md: X-Dipgw-Signature in either case (the body digest inside the
    signed string is lowercase)."""
    doc = document(f"U{uuid.uuid4().hex[:10]}")
    body = msgspec.json.encode(doc)
    headers = hospital.headers("POST", "/v1/settlements", body)
    headers[signing.SIGNATURE] = headers[signing.SIGNATURE].upper()
    status, payload, _ = await Client(hospital.stack).request(
        "POST", "/v1/settlements", body, headers=headers
    )
    assert status == 202, payload


async def test_an_unknown_hospital_costs_the_same_work_as_a_known_one(
    hospital: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer time told whether a code is registered (9.5 ms against 1.2 ms with a 15 MB
    body, issue 11): the body is now read and signed for an unknown code too."""
    hashed: list[tuple[str, int]] = []
    real = signing.matches

    def counting(secrets_: list[bytes], sign_type: str, given: str, *rest: Any) -> bool:
        hashed.append((sign_type, len(rest[-1])))
        return real(secrets_, sign_type, given, *rest)

    monkeypatch.setattr(signing, "matches", counting)
    doc = dict(document("T1", code="H99999999998"), padding="x" * 100_000)
    stranger = Client(hospital.stack, hospital="H99999999998", secret="guess")
    status, payload = await stranger.post("/v1/settlements", doc)
    assert (status, _rule(payload)) == (401, "AUTH_SIGNATURE")
    assert hashed and hashed[0][0] == "HMAC-SHA256" and hashed[0][1] > 100_000


async def test_a_nonce_is_single_use(hospital: Client) -> None:
    doc = document(f"N{uuid.uuid4().hex[:10]}")
    body = msgspec.json.encode(doc)
    headers = hospital.headers("POST", "/v1/settlements", body)
    anonymous = Client(hospital.stack)
    first = await anonymous.request("POST", "/v1/settlements", body, headers=headers)
    replay = await anonymous.request("POST", "/v1/settlements", body, headers=headers)
    assert first[0] == 202
    assert (replay[0], _rule(replay[1])) == (401, "AUTH_NONCE_REUSED")


async def test_hmac_sm3_hospital(stack: Stack) -> None:
    sm3 = await register_hospital(stack, "H44030000099", "440300", sign_type="HMAC-SM3")
    status, payload = await sm3.post(
        "/v1/settlements", document(f"S{uuid.uuid4().hex[:8]}", code="H44030000099", area="440300")
    )
    assert status == 202, payload


async def test_hospital_submits_only_its_own_lists_in_its_own_region(hospital: Client) -> None:
    other_code = document(f"F{uuid.uuid4().hex[:8]}", code="H44010000002")
    status, payload = await hospital.post("/v1/settlements", other_code)
    assert (status, _rule(payload)) == (403, "FORBIDDEN_INSTITUTION")
    other_region = document(f"F{uuid.uuid4().hex[:8]}", area="440300")
    status, payload = await hospital.post("/v1/settlements", other_region)
    assert (status, _rule(payload)) == (403, "FORBIDDEN_INSTITUTION")
    # a county code inside the hospital's city is its region
    status, _ = await hospital.post(
        "/v1/settlements", document(f"F{uuid.uuid4().hex[:8]}", area="440104")
    )
    assert status == 202


async def test_disable_and_rotate(stack: Stack) -> None:
    client = await register_hospital(stack, "H44010000077", "440100")
    doc = document(f"D{uuid.uuid4().hex[:8]}", code="H44010000077")
    await stack.registry.set_status("H44010000077", "disabled")
    status, payload = await client.post("/v1/settlements", doc)
    assert (status, _rule(payload)) == (403, "AUTH_DISABLED")
    await stack.registry.set_status("H44010000077", "active")
    assert (await client.post("/v1/settlements", doc))[0] == 202

    old_secret = client.secret
    new_secret = await stack.registry.rotate_secret("H44010000077", grace=dt.timedelta(minutes=5))
    assert (await client.post("/v1/settlements", doc))[0] == 202  # old one, inside its grace
    client.secret = new_secret
    assert (await client.post("/v1/settlements", doc))[0] == 202
    await stack.registry.rotate_secret("H44010000077")  # no grace: both old ones die now
    for secret in (old_secret, new_secret):
        client.secret = secret
        assert (await client.post("/v1/settlements", doc))[0] == 401


async def test_secrets_are_stored_sealed(stack: Stack) -> None:
    secret = await stack.registry.add_hospital(
        f"H440100{uuid.uuid4().int % 10**5:05d}", "密钥测试医院", "440100", "2"
    )
    rows = await stack.pool.fetch("SELECT secret_enc FROM hospitals")
    assert all(secret.encode() not in bytes(row["secret_enc"]) for row in rows)


async def test_tokens_read_their_own_city_only(stack: Stack, hospital: Client, ops: Client) -> None:
    setl = f"T{uuid.uuid4().hex[:8]}"
    _, receipt = await hospital.post("/v1/settlements", document(setl))  # 440100, insured 440300
    path = f"/v1/receipts/{receipt['receipt_id']}"
    guangzhou = Client(stack, token=await stack.registry.issue_token("city", "gz", "440100"))
    shenzhen = Client(stack, token=await stack.registry.issue_token("city", "sz", "440300"))
    foshan = Client(stack, token=await stack.registry.issue_token("city", "fs", "440600"))
    other_hospital = await register_hospital(stack, "H44010000002", "440100")
    assert (await guangzhou.get(path))[0] == 200  # treating city
    assert (await shenzhen.get(path))[0] == 200  # insured city of a cross-city case
    assert (await ops.get(path))[0] == 200
    assert (await hospital.get(path))[0] == 200
    for outsider in (foshan, other_hospital):
        status, payload = await outsider.get(path)
        assert (status, _rule(payload)) == (404, "NOT_FOUND")
    assert (await foshan.get(f"/v1/cases/H44010000001/{setl}"))[0] == 404
    assert (await guangzhou.get(f"/v1/cases/H44010000001/{setl}"))[0] == 200

    status, payload = await guangzhou.post("/v1/settlements", document("Z1"))
    assert (status, _rule(payload)) == (403, "FORBIDDEN_ROLE")
    await stack.registry.revoke_token("fs")
    status, payload = await foshan.get(path)
    assert (status, _rule(payload)) == (401, "AUTH_TOKEN")


def _cert(
    subject: str, issuer: tuple[x509.Certificate, Any] | None, *, ca: bool = False, ip: bool = False
) -> tuple[x509.Certificate, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def _write(path: Path, cert: x509.Certificate, key: Any) -> None:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


async def test_mutual_tls_client_certificate_names_the_hospital(
    services: LocalServices, tmp_path: Path
) -> None:
    ca = _cert("dipgw test CA", None, ca=True)
    _write(tmp_path / "ca", *ca)
    _write(tmp_path / "server", *_cert("127.0.0.1", ca, ip=True))
    _write(tmp_path / "client", *_cert("H44010000055", ca))
    _write(tmp_path / "stranger", *_cert("H44010000056", ca))
    settings = msgspec.structs.replace(
        services.settings,
        http=msgspec.structs.replace(
            services.settings.http,
            tls_cert=str(tmp_path / "server.crt"),
            tls_key=str(tmp_path / "server.key"),
            client_ca=str(tmp_path / "ca.crt"),
        ),
    )
    async with running_stack(
        settings, services.bootstrap, services.dsn, workers=(), clock=CLOCK
    ) as tls_stack:
        assert tls_stack.url.startswith("https://")
        await tls_stack.registry.add_hospital(
            "H44010000055", "证书医院", "440100", "3", cert_subject="H44010000055"
        )
        body = msgspec.json.encode(document(f"M{uuid.uuid4().hex[:8]}", code="H44010000055"))

        async def post(cert: str | None) -> tuple[int, Any]:
            context = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
            if cert:
                context.load_cert_chain(tmp_path / f"{cert}.crt", tmp_path / f"{cert}.key")
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    tls_stack.url + "/v1/settlements",
                    data=body,
                    ssl=context,
                    headers={"Content-Type": "application/json"},
                ) as resp,
            ):
                return resp.status, await resp.json()

        assert (await post("client"))[0] == 202
        status, payload = await post("stranger")
        assert (status, _rule(payload)) == (401, "AUTH_CERT")
        status, payload = await post(None)
        assert (status, _rule(payload)) == (401, "AUTH_MISSING")


async def test_a_nonce_is_single_use_for_rejected_and_batch_uploads(hospital: Client) -> None:
    anonymous = Client(hospital.stack)
    bad = document(f"N{uuid.uuid4().hex[:10]}")
    del bad["input"]["setlinfo"]["setl_id"]
    for path, doc in (
        ("/v1/settlements", bad),
        ("/v1/settlements/batch", {"records": [document(f"N{uuid.uuid4().hex}")]}),
    ):
        body = msgspec.json.encode(doc)
        headers = hospital.headers("POST", path, body)
        first = await anonymous.request("POST", path, body, headers=headers)
        replay = await anonymous.request("POST", path, body, headers=headers)
        assert first[0] in (200, 422), first
        assert (replay[0], _rule(replay[1])) == (401, "AUTH_NONCE_REUSED"), path


async def test_the_signed_path_is_the_request_target_as_sent(hospital: Client) -> None:
    """docs/upload-format.md: the path and query go into the canonical string with their
    percent-encoding as sent, not decoded or normalised (`%41` stays `%41`)."""
    assert hospital.secret is not None
    target = "/v1/cases/H44010000001/SETL%41B?x=%7E"
    headers = signing.signed_headers("H44010000001", hospital.secret.encode(), "GET", target)
    url = yarl.URL(hospital.stack.url + target, encoded=True)
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        status, payload = resp.status, await resp.json()
    assert (status, _rule(payload)) == (404, "NOT_FOUND")  # signed: past authentication
    decoded = signing.signed_headers(
        "H44010000001", hospital.secret.encode(), "GET", "/v1/cases/H44010000001/SETLAB?x=~"
    )
    async with aiohttp.ClientSession() as http, http.get(url, headers=decoded) as resp:
        status, payload = resp.status, await resp.json()
    assert (status, _rule(payload)) == (401, "AUTH_SIGNATURE")
    assert f"(path {target})" in payload["errors"][0]["message_en"]
