#!/usr/bin/env python3
"""Sign a request to dipgw with HMAC-SHA256, using only Python's standard library (3.8+).

    python3 Sign.py SECRET HOSPITAL METHOD PATH BODY_FILE [TIMESTAMP [NONCE [BASE_URL]]]

TIMESTAMP and NONCE: "-" (or left out) for the current time and a fresh random nonce.
BASE_URL (e.g. https://dipgw.example.gov.cn): also send the request and print the answer.
Prints the SHA-256 of the canonical string (compare it with the one a 401 answer shows)
and the four headers. The canonical string is specified in docs/upload-format.md.
"""

import hashlib
import hmac
import secrets
import sys
import time
import urllib.error
import urllib.request


def canonical_string(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """Five lines joined by LF (no LF at the end), UTF-8; the body digest in lowercase hex."""
    lines = [method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()]
    return "\n".join(lines).encode("utf-8")


def signed_headers(secret: str, hospital: str, method: str, path: str, body: bytes,
                   timestamp: str = "-", nonce: str = "-") -> dict:
    timestamp = str(int(time.time())) if timestamp == "-" else timestamp
    nonce = secrets.token_urlsafe(18) if nonce == "-" else nonce  # 24 of [A-Za-z0-9_-]
    canonical = canonical_string(method, path, timestamp, nonce, body)
    signature = hmac.new(secret.encode("utf-8"), canonical, hashlib.sha256).hexdigest()
    return {
        "X-Dipgw-Hospital": hospital,
        "X-Dipgw-Timestamp": timestamp,
        "X-Dipgw-Nonce": nonce,
        "X-Dipgw-Signature": signature,
    }


def main(argv: list) -> int:
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    secret, hospital, method, path, body_file = argv[:5]
    timestamp, nonce = (argv[5:] + ["-", "-"])[:2]
    base_url = argv[7] if len(argv) > 7 else ""
    with open(body_file, "rb") as f:
        body = f.read()
    headers = signed_headers(secret, hospital, method, path, body, timestamp, nonce)
    canonical = canonical_string(method, path, headers["X-Dipgw-Timestamp"],
                                 headers["X-Dipgw-Nonce"], body)
    print("canonical-sha256:", hashlib.sha256(canonical).hexdigest())
    for name, value in headers.items():
        print(f"{name}: {value}")
    if base_url:
        request = urllib.request.Request(
            base_url.rstrip("/") + path, data=body if body else None, method=method.upper(),
            headers={**headers, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                status, text = answer.status, answer.read()
        except urllib.error.HTTPError as refused:  # 4xx/5xx: the answer says why
            status, text = refused.code, refused.read()
        print("status:", status)
        print(text.decode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
