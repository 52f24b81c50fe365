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
        ("", "a" * 16, "AUTH_TIMESTAMP"),
        ("-5", "a" * 16, "AUTH_TIMESTAMP"),
        ("1000", "short", "AUTH_NONCE"),
        ("1000", "a" * 65, "AUTH_NONCE"),
        ("1000", "a" * 15 + "/", "AUTH_NONCE"),
        # Hostile timestamps (issue 11): digits to str.isdigit() that int() refuses, and a
        # number past int()'s 4,300-digit limit, were 500s before any credential was checked.
        ("²", "a" * 16, "AUTH_TIMESTAMP"),
        ("١٠٠٠", "a" * 16, "AUTH_TIMESTAMP"),
        ("1" * 4301, "a" * 16, "AUTH_TIMESTAMP"),
        ("0" * 30 + "1000", "a" * 16, "AUTH_TIMESTAMP"),
    ],
)
def test_freshness_window_and_nonce_format(timestamp: str, nonce: str, reason: str | None) -> None:
    found = signing.check_fresh(timestamp, nonce, now=1000, window_s=300)
    assert (found.rule if found is not None else None) == reason


@pytest.mark.parametrize("given", ["é" * 64, "签名", "\udcff" * 64, "ab\x00cd"])
def test_a_signature_that_is_not_hex_never_matches(given: str) -> None:
    """A non-ASCII signature made `hmac.compare_digest` raise TypeError: a 500 (issue 11)."""
    assert not signing.matches([b"k"], "HMAC-SHA256", given, "POST", "/p", "1", "n" * 16, b"")
