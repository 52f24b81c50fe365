"""Request signing between a hospital HIS and the gateway (pure: no I/O).

A request is signed with HMAC over five lines — method, path (with query), timestamp, nonce
and the hex digest of the body — using the hospital's registered algorithm: HMAC-SHA256, or
HMAC-SM3 (the national spec recommends SM2/SM3 for `signtype`), where the body digest uses
the same hash. `docs/upload-format.md` ("Signing a request") specifies it byte for byte, with
a worked example a test recomputes. Headers:

    X-Dipgw-Hospital:  H44010000001
    X-Dipgw-Timestamp: 1795484000            (Unix seconds; accepted within ±300 s)
    X-Dipgw-Nonce:     16–64 characters [A-Za-z0-9_-], single use
    X-Dipgw-Signature: hex HMAC (either case)

A refused request is told which part failed (`check_headers`, `check_fresh`, `mismatch`):
an integrator compares the server's canonical string with theirs by its SHA-256, which
reveals nothing the request did not carry (never the secret or the expected signature).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from contracts import shown
from gateway import refusals
from gateway.refusals import Refusal

HOSPITAL = "X-Dipgw-Hospital"
TIMESTAMP = "X-Dipgw-Timestamp"
NONCE = "X-Dipgw-Nonce"
SIGNATURE = "X-Dipgw-Signature"
HEADERS = (HOSPITAL, TIMESTAMP, NONCE, SIGNATURE)
CANONICAL_SHAPE = "METHOD\\npath?query\\ntimestamp\\nnonce\\nhex(digest(body))"
"""The canonical string's lines as refusals name them (`\\n` is one LF byte, none at the end)."""

SIGN_TYPES = {"HMAC-SHA256": "sha256", "HMAC-SM3": "sm3"}
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# Unix seconds in ASCII digits: `str.isdigit` also takes "²" and other scripts' digits, and
# int() refuses more than 4,300 digits; both were 500s before any credential was checked.
_TIMESTAMP = re.compile(r"^[0-9]{1,12}\Z")
_HEX = re.compile(r"^[0-9A-Fa-f]{1,128}\Z")


def canonical_request(
    method: str, path: str, timestamp: str, nonce: str, body: bytes, sign_type: str
) -> bytes:
    """The string to sign, UTF-8: the five lines joined by LF, no LF at the end; the body's
    digest in lowercase hex, with the hash of the hospital's algorithm."""
    digest = hashlib.new(SIGN_TYPES[sign_type], body).hexdigest()
    return _canonical(method, path, timestamp, nonce, digest)


def _canonical(method: str, path: str, timestamp: str, nonce: str, digest: str) -> bytes:
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


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a signed request is refused: the catalogue entry and its template values."""

    refusal: Refusal
    values: dict[str, object] = field(default_factory=dict)
    header: str | None = None  # the header at fault when not the entry's own field


def check_headers(headers: Mapping[str, str]) -> Refused | None:
    """The signing headers missing (or empty), named, or None."""
    missing = [name for name in HEADERS if not headers.get(name)]
    if not missing:
        return None
    return Refused(refusals.AUTH_HEADER_MISSING, {"names": ", ".join(missing)}, missing[0])


def _moment(unix: int) -> str:
    """A Unix time as people read it (+08:00), or a dash past the calendar's years."""
    try:
        return shown(datetime.fromtimestamp(unix, UTC))
    except (OverflowError, OSError, ValueError):
        return "-"


def check_fresh(timestamp: str, nonce: str, *, now: float, window_s: int) -> Refused | None:
    """Why a timestamp/nonce pair is refused (with the server's time to compare), or None."""
    server = {"server_time": _moment(int(now)), "server_unix": int(now), "window": window_s}
    if not _TIMESTAMP.match(timestamp):
        return Refused(refusals.AUTH_TIMESTAMP_FORMAT, server)
    given = int(timestamp)
    if abs(given - now) > window_s:
        values = {**server, "given": given, "given_time": _moment(given)}
        return Refused(refusals.AUTH_TIMESTAMP, {**values, "skew": f"{given - int(now):+d}"})
    if not _NONCE.match(nonce):
        return Refused(refusals.AUTH_NONCE, {"length": len(nonce)})
    return None


def mismatch(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> Refused:
    """A signature that does not verify, with the server's canonical string to compare: its
    SHA-256 (lowercase hex) and its last line, the body digest.

    The same answer whether the hospital is unknown or its key differs: it is built from the
    request alone, for both body digests (SHA-256 and SM3), so it does not even tell which
    algorithm a registered code uses."""
    values: dict[str, object] = {
        "shape": CANONICAL_SHAPE,
        "path": path if len(path) <= 200 else path[:200] + "…",
    }
    for algorithm, suffix in (("sha256", ""), ("sm3", "_sm3")):
        digest = hashlib.new(algorithm, body).hexdigest()
        canonical = _canonical(method, path, timestamp, nonce, digest)
        values["canonical_sha256" + suffix] = hashlib.sha256(canonical).hexdigest()
        values["body" + (suffix or "_sha256")] = digest
    return Refused(refusals.AUTH_SIGNATURE, values)


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
