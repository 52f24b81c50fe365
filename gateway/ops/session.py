"""The `/ops` session: the browser logs in once with its bearer token (`POST /ops/login`, a form,
so the token is never in a URL or an access log); the token is kept in an HttpOnly,
SameSite=Strict cookie that `session_cookie`, a middleware, turns back into the
`Authorization` header before authentication runs."""

from __future__ import annotations

from aiohttp import web

from gateway import params, refusals
from gateway.authn import REGISTRY, Handler
from gateway.errors import BadQuery, http_error
from gateway.ops.scope import READERS

COOKIE = "dipgw_ops"
_TOKEN_CHARS = 1024  # issued tokens are ~50 characters


_LOGIN_FORM = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>dipgw 运维登录</title><link rel="stylesheet" href="/ops/static/ops.css"></head>
<body class="login"><form method="post" action="/ops/login">
<h1>dipgw 数据质量监控</h1><p>{message}</p>
<label>运维令牌 / ops token<input type="password" name="token" autocomplete="off" required></label>
<button type="submit">登录</button></form></body></html>"""


async def _login(request: web.Request, secure: bool) -> web.StreamResponse:
    """GET: the form. POST: check the token; a good one becomes the session cookie."""
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if request.method in ("GET", "HEAD"):
        return web.Response(
            text=_LOGIN_FORM.format(message="请输入令牌（dipgw tokens issue --role ops）"),
            content_type="text/html",
            headers=headers,
        )
    if request.method != "POST":
        return http_error(refusals.HTTP405)
    try:
        form = await request.post()
    except ValueError:
        return http_error(refusals.BAD_FORM)
    try:  # a token no one could have been issued gets the answer of a wrong one
        token = params.header(str(form.get("token", "")).strip(), "token", max_chars=_TOKEN_CHARS)
    except BadQuery:
        token = None
    principal = await request.app[REGISTRY].token(token) if token else None
    if principal is None or principal.role not in READERS:
        return web.Response(
            status=401,
            text=_LOGIN_FORM.format(message="令牌无效 / token invalid or revoked"),
            content_type="text/html",
            headers=headers,
        )
    response = web.Response(status=303, headers={**headers, "Location": "/ops"})
    response.set_cookie(
        COOKIE,
        token,
        max_age=12 * 3600,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )
    return response


async def post_logout(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=303, headers={"Location": "/ops/login"})
    response.del_cookie(COOKIE, path="/")
    return response


@web.middleware
async def session_cookie(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The `/ops` session: login form, and the cookie presented as a bearer token."""
    path = request.path
    if not (path == "/ops" or path.startswith(("/ops/", "/v1/quality/"))):
        return await handler(request)
    if path.startswith("/ops/static/"):
        return await handler(request)
    if path == "/ops/login":
        return await _login(request, secure=request.secure)
    try:
        token = params.header(request.cookies.get(COOKIE), "Cookie", max_chars=_TOKEN_CHARS)
    except BadQuery as exc:  # not a cookie this gateway set: refused, and cleared
        response = exc.response()
        response.del_cookie(COOKIE, path="/")
        return response
    if "Authorization" not in request.headers and token:
        request = request.clone(headers={**request.headers, "Authorization": f"Bearer {token}"})
    elif "Authorization" not in request.headers and path == "/ops":
        return web.Response(status=303, headers={"Location": "/ops/login"})
    response = await handler(request)
    if path == "/ops" and response.status == 401:  # a revoked token: log in again
        response = web.Response(status=303, headers={"Location": "/ops/login"})
        response.del_cookie(COOKIE, path="/")
    return response
