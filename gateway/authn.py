"""Authentication: who is calling, decided once per request before any handler runs.

Hospitals sign requests (HMAC-SHA256 or HMAC-SM3, see `gateway.signing`) or present a client
certificate naming them (mTLS); city bureaus and ops present a bearer token. Failures answer
401/403 with a reason code and never say whether another hospital exists.

A refused signed request is told which part failed, in this order: a signing header missing
(named), the timestamp (with the server's time, +08:00, and the window), the nonce's format,
then the signature, where an unknown hospital and a wrong key get one answer (the SHA-256 of
the server's canonical string, built from the request alone), and last a reused nonce.
Hospital codes are public (the national 定点医药机构 list) but whether one is registered here
is not told before its key is proven.
"""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from adapters.runtime import stages
from adapters.runtime.logs import get_logger
from gateway import params, refusals, signing
from gateway.accounts import Principal, Registry
from gateway.errors import NonceReused, http_error
from gateway.refusals import Refusal

log = get_logger("dipgw.auth")

REGISTRY = web.AppKey("registry", Registry)
WINDOW = web.AppKey("auth_window_s", int)
PRINCIPAL = web.RequestKey("principal", Principal)
DEFERRED_NONCE = web.RequestKey("deferred_nonce", tuple)

_NO_SECRET = secrets.token_bytes(32)  # stands in for an unknown hospital's secret
PUBLIC = frozenset({"/healthz", "/readyz", "/openapi.json", "/asyncapi.json", "/docs"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _unauthorised(refusal: Refusal) -> web.Response:
    return http_error(refusal, headers={"WWW-Authenticate": "DIPGW-HMAC"})


def _refused(why: signing.Refused) -> web.Response:
    return http_error(
        why.refusal, field=why.header, headers={"WWW-Authenticate": "DIPGW-HMAC"}, **why.values
    )


def _cert_common_name(request: web.Request) -> str | None:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    cert = ssl_object.getpeercert()
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


async def _hospital_by_signature(request: web.Request) -> Principal | web.Response:
    registry = request.app[REGISTRY]
    headers = request.headers
    code = headers.get(signing.HOSPITAL, "")
    given = headers.get(signing.SIGNATURE, "")
    timestamp = headers.get(signing.TIMESTAMP, "")
    nonce = headers.get(signing.NONCE, "")
    missing = signing.check_headers(headers)
    if missing is not None:
        return _refused(missing)
    window = request.app[WINDOW]
    stale = signing.check_fresh(timestamp, nonce, now=time.time(), window_s=window)
    if stale is not None:
        return _refused(stale)
    hospital = await registry.hospital(code) if signing_code_ok(code) else None
    body = await request.read()
    # An unknown hospital costs the same work as a known one (the body read and signed), so
    # the answer's time does not tell whether a code is registered.
    secrets_, sign_type = (
        (list(hospital.secrets), hospital.sign_type)
        if hospital is not None
        else ([_NO_SECRET], "HMAC-SHA256")
    )
    verified = signing.matches(
        secrets_, sign_type, given, request.method, request.path_qs, timestamp, nonce, body
    )
    if hospital is None or not verified:
        # The same answer for an unknown hospital and a wrong signature.
        return _refused(signing.mismatch(request.method, request.path_qs, timestamp, nonce, body))
    if hospital.status != "active":
        return http_error(refusals.AUTH_DISABLED)
    if request.method == "POST":
        # An upload records its nonce with the receipt reservation, in one round trip
        # (see `consume_deferred_nonce` and gateway.ingest); anything else records it now.
        request[DEFERRED_NONCE] = (hospital.code, nonce)
    elif not await registry.use_nonce(hospital.code, nonce):
        return nonce_reused()
    return Principal(role="hospital", fixmedins_code=hospital.code, admdvs=hospital.admdvs)


def nonce_reused() -> web.Response:
    return _unauthorised(refusals.AUTH_NONCE_REUSED)


async def consume_deferred_nonce(request: web.Request) -> None:
    """Record an upload's nonce when no reservation did; raises NonceReused on a replay."""
    deferred = request.pop(DEFERRED_NONCE, None)
    if deferred is not None and not await request.app[REGISTRY].use_nonce(*deferred):
        raise NonceReused


def signing_code_ok(code: str) -> bool:
    return params.HOSPITAL.fullmatch(code) is not None


async def _principal(request: web.Request) -> Principal | web.Response:
    registry = request.app[REGISTRY]
    if signing.SIGNATURE in request.headers:
        return await _hospital_by_signature(request)
    common_name = _cert_common_name(request)
    if common_name is not None:
        hospital = await registry.hospital_by_cert_subject(common_name)
        if hospital is None:
            return _unauthorised(refusals.AUTH_CERT)
        if hospital.status != "active":
            return http_error(refusals.AUTH_DISABLED)
        return Principal(role="hospital", fixmedins_code=hospital.code, admdvs=hospital.admdvs)
    authorization = params.header(request.headers.get("Authorization"), "Authorization") or ""
    if authorization.startswith("Bearer "):
        principal = await registry.check_token(authorization[len("Bearer ") :].strip())
        if principal == "expired":
            return _unauthorised(refusals.AUTH_TOKEN_EXPIRED)
        if not isinstance(principal, Principal):
            return _unauthorised(refusals.AUTH_TOKEN)
        return principal
    partly_signed = signing.check_headers(request.headers)
    if partly_signed is not None and any(request.headers.get(h) for h in signing.HEADERS):
        return _refused(partly_signed)  # some signing headers, but not the signature
    return _unauthorised(refusals.AUTH_MISSING)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC or request.path.startswith("/ops/static/"):
        return await handler(request)
    found = await _principal(request)
    stages.stage_done("auth")
    if isinstance(found, web.Response):
        log.info("auth.refused", reason=found.headers.get("X-Dipgw-Reason"), path=request.path)
        return found
    request[PRINCIPAL] = found
    structlog.contextvars.bind_contextvars(
        principal=found.fixmedins_code or f"{found.role}:{found.admdvs or '*'}"
    )
    return await handler(request)


def principal_of(request: web.Request) -> Principal:
    principal = request.get(PRINCIPAL)
    assert isinstance(principal, Principal)
    return principal


def require_hospital(request: web.Request) -> Principal | web.Response:
    principal = principal_of(request)
    if principal.role != "hospital":
        return http_error(
            refusals.FORBIDDEN_ROLE,
            allowed="定点医疗机构",
            action="上传",
            allowed_en="hospitals",
            action_en="upload",
        )
    return principal
