"""Answers for what aiohttp's HTTP parser refuses before any handler (and so any middleware)
runs: a malformed request line or header, a line over the parser's limit, non-HTTP bytes.

aiohttp answers those in plain text that echoes the offending bytes (a header may carry an
ID number) and logs them with a traceback. Here they get the documented error shape, the
reason header, the request counter (route ``unparsed``) and one log line naming only the
parser's error class.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from adapters.runtime.logs import get_logger
from adapters.runtime.metrics import HTTP_REQUESTS
from gateway import refusals
from gateway.errors import http_error

__all__ = ["MAX_LINE_BYTES", "GatewayRunner"]

log = get_logger("dipgw.http")

MAX_LINE_BYTES = 8190
"""aiohttp's limit of a request line and of each header (its default, stated here to name
it in the answer)."""


class _Handler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # an answer is under way: the connection is lost
            raise ConnectionError("the answer had begun; the connection is closed")
        if isinstance(exc, LineTooLong):
            response = http_error(refusals.HTTP431, limit=MAX_LINE_BYTES)
        elif status < 500:
            response = http_error(refusals.HTTP400)
        else:  # a handler's exception that escaped every middleware (there should be none)
            response = http_error(refusals.SYS500)
        log.warning(
            "http.unparsed",
            status=response.status,
            error=type(exc).__name__ if exc is not None else None,
            remote=request.remote,
        )
        HTTP_REQUESTS.labels("unparsed", str(response.status)).inc()
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """`web.AppRunner` whose connections answer parser refusals in the error shape."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return _Server(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )
