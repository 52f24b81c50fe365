"""The `/ops` page and its static assets (gateway/ops_static)."""

from __future__ import annotations

import re
from importlib import resources

from aiohttp import web

from gateway import params, refusals
from gateway.errors import BadQuery, http_error
from gateway.ops.scope import Refused, reader

_STATIC = resources.files("gateway") / "ops_static"


async def get_page(request: web.Request) -> web.StreamResponse:
    try:
        reader(request)
    except Refused as refused:
        return refused.response
    return web.Response(
        body=(_STATIC / "index.html").read_bytes(),
        content_type="text/html",
        charset="utf-8",
        headers=_PAGE_HEADERS,
    )


_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_ASSET = re.compile(rf"[A-Za-z0-9_-]{{1,64}}(?:{'|'.join(map(re.escape, _TYPES))})")


async def get_static(request: web.Request) -> web.StreamResponse:
    try:
        name = params.code(request.match_info["name"], "name", _ASSET, "an asset name")
    except BadQuery:
        name = None
    if name is None:
        return http_error(refusals.HTTP404)
    suffix = name[name.rfind(".") :]
    asset = _STATIC / name
    if not asset.is_file():
        return http_error(refusals.HTTP404)
    return web.Response(
        body=asset.read_bytes(),
        content_type=_TYPES[suffix],
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )
