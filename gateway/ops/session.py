"""The `/ops` session: the browser logs in once with its bearer token (`POST /ops/login`, a form,
so the token is never in a URL or an access log) and gets a session of its own
(`Registry.open_session`: short-lived, revoked by logging out or by revoking the token), kept in
an HttpOnly, SameSite=Strict cookie — `Secure` when the request came over HTTPS, directly or
through a proxy that says so (`X-Forwarded-Proto`) — that `session_cookie`, a middleware,
turns into the `Authorization` header before authentication runs. The long-lived token never
sits in the browser.

The login form is protected against cross-site posting: a POST from another origin is refused
(`Origin`), and the form must carry the random value the form's own page set in a cookie
(double submit), which another site can neither read nor set. The page's actions
(`POST /v1/ops/…`, a replay) are refused from another origin too, and with the session cookie
only when they carry `X-Dipgw-Ops: 1`, a header a cross-site form cannot send."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from aiohttp import web

from gateway import params, refusals
from gateway.authn import REGISTRY, Handler
from gateway.errors import BadQuery, http_error
from gateway.ops.scope import READERS

COOKIE = "dipgw_ops"
CSRF_COOKIE = "dipgw_csrf"
SESSION_LIFETIME = timedelta(hours=8)  # a working day; then log in again
ACTION_HEADER = "X-Dipgw-Ops"  # the page's actions (POST /v1/ops/…) carry it: "1"
_TOKEN_CHARS = 1024  # issued tokens are ~50 characters


_LOGIN_FORM = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>dipgw 运维登录</title><link rel="stylesheet" href="/ops/static/ops.css"></head>
<body class="login"><form method="post" action="/ops/login">
<h1>dipgw 数据质量监控</h1><p>{message}</p>
<input type="hidden" name="csrf" value="{csrf}">
<label>运维令牌 / ops token<input type="password" name="token" autocomplete="off" required></label>
<button type="submit">登录</button></form></body></html>"""


def _secure(request: web.Request) -> bool:
    # Trusting the header can only add the Secure flag: at worst a client that lies about it
    # loses its own session over plain HTTP.
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def _form(message: str, status: int, secure: bool) -> web.Response:
    """The login form, with a fresh double-submit value in the form and in a cookie."""
    csrf = secrets.token_urlsafe(24)
    response = web.Response(
        status=status,
        text=_LOGIN_FORM.format(message=message, csrf=csrf),
        content_type="text/html",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )
    response.set_cookie(
        CSRF_COOKIE, csrf, path="/ops/login", httponly=True, samesite="Strict", secure=secure
    )
    return response


def same_origin(request: web.Request) -> bool:
    """No `Origin` (an old browser, a script) passes here; the double submit still holds."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    scheme = "https" if _secure(request) else "http"
    return origin in (f"{scheme}://{request.host}", f"{request.scheme}://{request.host}")


async def _login(request: web.Request) -> web.StreamResponse:
    """GET: the form. POST: check the token; a good one opens a session (the cookie)."""
    secure = _secure(request)
    if request.method in ("GET", "HEAD"):
        return _form("请输入令牌（dipgw tokens issue --role ops）", 200, secure)
    if request.method != "POST":  # as aiohttp answers an unrouted method: with Allow
        return http_error(refusals.HTTP405, headers={"Allow": "GET, HEAD, POST"})
    if not same_origin(request):
        return http_error(refusals.FORBIDDEN_CSRF)
    try:
        form = await request.post()
    except ValueError:
        return http_error(refusals.BAD_FORM)
    expected = request.cookies.get(CSRF_COOKIE, "")
    given = str(form.get("csrf", ""))
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        return http_error(refusals.FORBIDDEN_CSRF)
    try:  # a token no one could have been issued gets the answer of a wrong one
        token = params.header(str(form.get("token", "")).strip(), "token", max_chars=_TOKEN_CHARS)
    except BadQuery:
        token = None
    registry = request.app[REGISTRY]
    principal = await registry.token(token) if token else None
    session = None
    if principal is not None and principal.role in READERS and token is not None:
        session = await registry.open_session(token, SESSION_LIFETIME)
    if session is None:
        return _form("令牌无效 / token invalid or revoked", 401, secure)
    response = web.Response(
        status=303,
        headers={"Cache-Control": "no-store", "Location": "/ops"},
    )
    response.set_cookie(
        COOKIE,
        session,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )
    response.del_cookie(CSRF_COOKIE, path="/ops/login")
    return response


async def post_logout(request: web.Request) -> web.StreamResponse:
    """Ends the session on the server, not only in this browser."""
    if not same_origin(request):
        return http_error(refusals.FORBIDDEN_CSRF)
    session = request.cookies.get(COOKIE)
    if session:
        await request.app[REGISTRY].close_session(session)
    response = web.Response(status=303, headers={"Location": "/ops/login"})
    response.del_cookie(COOKIE, path="/")
    return response


_SESSION_PREFIXES = (
    "/ops/",
    "/v1/quality/",
    "/v1/ops/",
    "/v1/settlement/",
    "/v1/simulations",
    "/v1/special-reviews",
)
"""The paths the /ops page reads with its session (the settlement card's links included)."""
_ACTING_PREFIXES = ("/v1/ops/", "/v1/special-reviews")
"""Where a session's POST changes something: only from the page's script (its header)."""


@web.middleware
async def session_cookie(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The `/ops` session: login form, and the cookie presented as a bearer token."""
    path = request.path
    if not (path == "/ops" or path.startswith(_SESSION_PREFIXES)):
        return await handler(request)
    if path.startswith("/ops/static/"):
        return await handler(request)
    if path == "/ops/login":
        return await _login(request)
    try:
        token = params.header(request.cookies.get(COOKIE), "Cookie", max_chars=_TOKEN_CHARS)
    except BadQuery as exc:  # not a cookie this gateway set: refused, and cleared
        response = exc.response()
        response.del_cookie(COOKIE, path="/")
        return response
    if "Authorization" not in request.headers and token:
        acting = request.method not in ("GET", "HEAD") and path.startswith(_ACTING_PREFIXES)
        if acting and request.headers.get(ACTION_HEADER) != "1":
            # A form another site posts cannot set a header; the page's script does.
            return http_error(refusals.FORBIDDEN_CSRF)
        request = request.clone(headers={**request.headers, "Authorization": f"Bearer {token}"})
    elif "Authorization" not in request.headers and path == "/ops":
        return web.Response(status=303, headers={"Location": "/ops/login"})
    response = await handler(request)
    if path == "/ops" and response.status == 401:  # a revoked token: log in again
        response = web.Response(status=303, headers={"Location": "/ops/login"})
        response.del_cookie(COOKIE, path="/")
    return response
