"""Request signing (pure): what a HIS computes and what the gateway accepts."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from gateway import signing


def test_canonical_request_is_five_lines_with_the_body_digest() -> None:
    body = b'{"a":1}'
    canonical = signing.canonical_request(
        "post", "/v1/settlements?x=1", "1700000000", "n" * 16, body, "HMAC-SHA256"
    )
    assert canonical == (
        b"POST\n/v1/settlements?x=1\n1700000000\n"
        + b"n" * 16
        + b"\n"
        + hashlib.sha256(body).hexdigest().encode()
    )


@pytest.mark.parametrize("sign_type", ["HMAC-SHA256", "HMAC-SM3"])
def test_signature_is_the_hmac_of_the_canonical_request(sign_type: str) -> None:
    digest = {"HMAC-SHA256": "sha256", "HMAC-SM3": "sm3"}[sign_type]
    headers = signing.signed_headers(
        "H44010000001",
        b"secret",
        "POST",
        "/p",
        b"body",
        sign_type=sign_type,
        now=1700000000,
        nonce="a" * 20,
    )
    canonical = signing.canonical_request("POST", "/p", "1700000000", "a" * 20, b"body", sign_type)
    assert headers[signing.SIGNATURE] == hmac.new(b"secret", canonical, digest).hexdigest()
    assert signing.matches(
        [b"other", b"secret"],
        sign_type,
        headers[signing.SIGNATURE],
        "POST",
        "/p",
        "1700000000",
        "a" * 20,
        b"body",
    )


def test_any_change_breaks_the_signature() -> None:
    h = signing.signed_headers("H44010000001", b"k", "POST", "/p", b"body", now=1, nonce="a" * 16)
    sig = h[signing.SIGNATURE]
    base = ("POST", "/p", "1", "a" * 16, b"body")
    assert signing.matches([b"k"], "HMAC-SHA256", sig, *base)
    for changed in (
        ("GET", *base[1:]),
        (base[0], "/q", *base[2:]),
        (*base[:2], "2", *base[3:]),
        (*base[:3], "b" * 16, base[4]),
        (*base[:4], b"bodY"),
    ):
        assert not signing.matches([b"k"], "HMAC-SHA256", sig, *changed)
    assert not signing.matches([b"K"], "HMAC-SHA256", sig, *base)
    assert not signing.matches([b"k"], "HMAC-SM3", sig, *base)


@pytest.mark.parametrize(
    ("timestamp", "nonce", "reason"),
    [
        ("1000", "a" * 16, None),
        ("1300", "a" * 16, None),
        ("1301", "a" * 16, "AUTH_TIMESTAMP"),
        ("699", "a" * 16, "AUTH_TIMESTAMP"),
        ("", "a" * 16, "AUTH_TIMESTAMP_FORMAT"),
        ("-5", "a" * 16, "AUTH_TIMESTAMP_FORMAT"),
        ("1000", "short", "AUTH_NONCE"),
        ("1000", "a" * 65, "AUTH_NONCE"),
        ("1000", "a" * 15 + "/", "AUTH_NONCE"),
        # Hostile timestamps (issue 11): digits to str.isdigit() that int() refuses, and a
        # number past int()'s 4,300-digit limit, were 500s before any credential was checked.
        ("²", "a" * 16, "AUTH_TIMESTAMP_FORMAT"),
        ("١٠٠٠", "a" * 16, "AUTH_TIMESTAMP_FORMAT"),
        ("1" * 4301, "a" * 16, "AUTH_TIMESTAMP_FORMAT"),
        ("0" * 30 + "1000", "a" * 16, "AUTH_TIMESTAMP_FORMAT"),
        ("999999999999", "a" * 16, "AUTH_TIMESTAMP"),  # past year 9999: no +08:00 form
    ],
)
def test_freshness_window_and_nonce_format(timestamp: str, nonce: str, reason: str | None) -> None:
    found = signing.check_fresh(timestamp, nonce, now=1000, window_s=300)
    assert (found.refusal.rule if found is not None else None) == reason
    if found is not None:  # every template filled: the answer is never a 500
        found.refusal.problem(found.header, **found.values)


def test_a_stale_timestamp_is_shown_against_the_servers_time_in_china_standard_time() -> None:
    """Issue 14 point 5: the integrator sees both clocks, +08:00 and labelled, and the skew."""
    now = 1_795_484_000  # 2026-11-24T01:33:20Z
    found = signing.check_fresh(str(now + 412), "n" * 16, now=now + 0.9, window_s=300)
    assert found is not None
    problem = found.refusal.problem(found.header, **found.values)
    assert (problem.rule, problem.field) == ("AUTH_TIMESTAMP", "X-Dipgw-Timestamp")
    assert problem.message_en == (
        "timestamp 1795484412 (2026-11-24T09:40:12+08:00) is +412 s from the server's time "
        "2026-11-24T09:33:20+08:00 (Unix 1795484000), outside ±300 s: set the HIS clock by NTP "
        "and sign each request when it is sent"
    )
    assert "2026-11-24T09:33:20+08:00" in problem.message


def test_a_malformed_timestamp_or_nonce_says_so() -> None:
    bad_time = signing.check_fresh("17954840OO", "n" * 16, now=1_795_484_000, window_s=300)
    assert bad_time is not None
    text = bad_time.refusal.problem(**bad_time.values).message_en
    assert "1795484000, 2026-11-24T09:33:20+08:00" in text and "17954840OO" not in text
    bad_nonce = signing.check_fresh("1795484000", "n" * 8, now=1_795_484_000, window_s=300)
    assert bad_nonce is not None
    assert "has 8 characters" in bad_nonce.refusal.problem(**bad_nonce.values).message_en


@pytest.mark.parametrize(
    ("present", "named"),
    [
        ({signing.SIGNATURE: "ab"}, "X-Dipgw-Hospital, X-Dipgw-Timestamp, X-Dipgw-Nonce"),
        ({signing.HOSPITAL: "H1", signing.TIMESTAMP: "1", signing.NONCE: "n"}, "X-Dipgw-Signature"),
        (
            {
                signing.HOSPITAL: "H1",
                signing.TIMESTAMP: "",
                signing.NONCE: "n",
                signing.SIGNATURE: "a",
            },
            "X-Dipgw-Timestamp",
        ),
    ],
)
def test_missing_signing_headers_are_named(present: dict[str, str], named: str) -> None:
    found = signing.check_headers(present)
    assert found is not None and found.refusal.rule == "AUTH_HEADER_MISSING"
    problem = found.refusal.problem(found.header, **found.values)
    assert problem.field == named.split(", ")[0]
    assert problem.message_en.endswith(f"missing or empty: {named}")
    full = dict.fromkeys(signing.HEADERS, "x")
    assert signing.check_headers(full) is None


def test_a_mismatch_shows_the_servers_canonical_string_by_its_sha256() -> None:
    body = b'{"infno":"4101A"}'
    args = ("POST", "/v1/settlements?dry=1", "1795484000", "n" * 16)
    found = signing.mismatch(*args, body)
    problem = found.refusal.problem(found.header, **found.values)
    assert (problem.rule, problem.field) == ("AUTH_SIGNATURE", "X-Dipgw-Signature")
    for sign_type, key in (
        ("HMAC-SHA256", "canonical_sha256"),
        ("HMAC-SM3", "canonical_sha256_sm3"),
    ):
        canonical = signing.canonical_request(*args, body, sign_type)
        assert found.values[key] == hashlib.sha256(canonical).hexdigest()
        assert found.values[key] in problem.message_en
        assert canonical.decode().rsplit("\n", 1)[1] in problem.message_en  # the body digest
    assert found.values["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert "METHOD\\npath?query\\ntimestamp\\nnonce\\nhex(digest(body))" in problem.message_en
    assert "(path /v1/settlements?dry=1)" in problem.message_en
    assert "unknown hospital or wrong key" in problem.message_en
    # built from the request alone: nothing about the hospital, its key or the expected HMAC
    assert signing.mismatch(*args, body) == found


@pytest.mark.parametrize("given", ["é" * 64, "签名", "\udcff" * 64, "ab\x00cd"])
def test_a_signature_that_is_not_hex_never_matches(given: str) -> None:
    """A non-ASCII signature made `hmac.compare_digest` raise TypeError: a 500 (issue 11)."""
    assert not signing.matches([b"k"], "HMAC-SHA256", given, "POST", "/p", "1", "n" * 16, b"")
