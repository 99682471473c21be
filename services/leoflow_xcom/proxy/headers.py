"""Headers every proxy response carries, errors included.

    X-Content-Type-Options: nosniff   a browser never guesses a JSON body into HTML or script
    Cache-Control: no-store           XCom metadata and values stay out of shared and disk caches

Outermost layer. It also answers an unhandled exception itself (a 500 in the generation's
shape, with these headers) before Starlette's last-resort handler would, which bypasses every
middleware; the exception still propagates so the server logs it with its traceback.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leoflow_xcom.proxy import problems

HEADERS = (("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"))


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS:
                    headers[name] = value
            await send(message)

        try:
            await self._app(scope, receive, send_with_headers)
        except Exception:
            if not started:
                response = problems.for_path(scope["path"], 500, "Internal Server Error")
                await response(scope, receive, send_with_headers)
            raise
