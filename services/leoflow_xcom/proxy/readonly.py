"""The proxy is read-only: every method but GET and HEAD answers 405 on every path.

Outermost layer, before authentication: a write is refused the same way with or without
credentials, and no route handler ever sees one. The one exception is POST on the login path
(`/auth/token`, when enabled), which issues a token and writes nothing.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from leoflow_xcom.proxy import problems

_READS = frozenset({"GET", "HEAD"})


class ReadOnlyMiddleware:
    def __init__(self, app: ASGIApp, login_path: str | None = None) -> None:
        self._app = app
        self._login_path = login_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _READS:
            await self._app(scope, receive, send)
            return
        path = scope["path"]
        if path == self._login_path:
            if scope["method"] == "POST":
                await self._app(scope, receive, send)
                return
            response = problems.v2_detail(405, "Method Not Allowed", {"Allow": "GET, POST"})
            await response(scope, receive, send)
            return
        if path.startswith(problems.V1_PREFIX + "/") or path == problems.V1_PREFIX:
            detail = "The method is not allowed for the requested URL."
        else:
            detail = "Method Not Allowed"
        response = problems.for_path(path, 405, detail, {"Allow": problems.ALLOWED_METHODS})
        await response(scope, receive, send)
