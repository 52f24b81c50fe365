"""Request signing between a hospital HIS and the gateway (pure: no I/O).

A request is signed with HMAC over five lines — method, path (with query), timestamp, nonce
and the hex digest of the body — using the hospital's registered algorithm: HMAC-SHA256, or
HMAC-SM3 (the national spec recommends SM2/SM3 for `signtype`), where the body digest uses
the same hash. Headers:

    X-Dipgw-Hospital:  H44010000001
    X-Dipgw-Timestamp: 1795484000            (Unix seconds; accepted within ±300 s)
    X-Dipgw-Nonce:     16–64 characters [A-Za-z0-9_-], single use
    X-Dipgw-Signature: lowercase hex HMAC
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

from gateway import refusals
from gateway.refusals import Refusal

HOSPITAL = "X-Dipgw-Hospital"
TIMESTAMP = "X-Dipgw-Timestamp"
NONCE = "X-Dipgw-Nonce"
SIGNATURE = "X-Dipgw-Signature"

SIGN_TYPES = {"HMAC-SHA256": "sha256", "HMAC-SM3": "sm3"}
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# Unix seconds in ASCII digits: `str.isdigit` also takes "²" and other scripts' digits, and
# int() refuses more than 4,300 digits; both were 500s before any credential was checked.
_TIMESTAMP = re.compile(r"^[0-9]{1,12}\Z")
_HEX = re.compile(r"^[0-9A-Fa-f]{1,128}\Z")


def canonical_request(
    method: str, path: str, timestamp: str, nonce: str, body: bytes, sign_type: str
) -> bytes:
    digest = hashlib.new(SIGN_TYPES[sign_type], body).hexdigest()
    return "\n".join((method.upper(), path, timestamp, nonce, digest)).encode()


def signature(
    secret: bytes, sign_type: str, method: str, path: str, timestamp: str, nonce: str, body: bytes
) -> str:
    message = canonical_request(method, path, timestamp, nonce, body, sign_type)
    return hmac.new(secret, message, SIGN_TYPES[sign_type]).hexdigest()


def signed_headers(
    hospital: str,
    secret: bytes,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    sign_type: str = "HMAC-SHA256",
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """What a HIS adds to a request (used by the demo, the benchmarks and the tests)."""
    timestamp = str(int(time.time() if now is None else now))
    nonce = nonce or secrets.token_urlsafe(18)
    return {
        HOSPITAL: hospital,
        TIMESTAMP: timestamp,
        NONCE: nonce,
        SIGNATURE: signature(secret, sign_type, method, path, timestamp, nonce, body),
    }


def check_fresh(timestamp: str, nonce: str, *, now: float, window_s: int) -> Refusal | None:
    """Why a timestamp/nonce pair is refused, or None."""
    if not _TIMESTAMP.match(timestamp) or abs(int(timestamp) - now) > window_s:
        return refusals.AUTH_TIMESTAMP
    if not _NONCE.match(nonce):
        return refusals.AUTH_NONCE
    return None


def matches(
    secrets_: list[bytes],
    sign_type: str,
    given: str,
    method: str,
    path: str,
    timestamp: str,
    nonce: str,
    body: bytes,
) -> bool:
    """Constant-time check against each valid secret (current, and previous during rotation)."""
    if not _HEX.match(given):  # compare_digest raises on non-ASCII text
        return False
    found = False
    for secret in secrets_:
        expected = signature(secret, sign_type, method, path, timestamp, nonce, body)
        found |= hmac.compare_digest(expected, given.lower())
    return found
