"""HTML responses: autoescaped templates, and the headers that make a page safe to render.

The Content-Security-Policy allows no script at all (the pages need none), styles and images
only from this proxy, forms only to it, and no framing: even markup that slipped past escaping
could run nothing and load nothing.
"""

from __future__ import annotations

import time
from typing import Any

import jinja2
from starlette.responses import HTMLResponse

from leoflow_xcom.proxy.ui import fmt, links

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# nosniff and no-store come with every proxy response (proxy/headers.py).
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "Referrer-Policy": "no-referrer"}

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("leoflow_xcom.proxy.ui", "templates"),
    autoescape=True,  # every template, whatever its name: values are hostile by default
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(size=fmt.size, moment=fmt.moment, duration=fmt.duration)
ENV.globals.update(links=links, WILDCARD=links.WILDCARD)


def page(name: str, started: float, status: int = 200, **context: Any) -> HTMLResponse:
    """Render `name`; Server-Timing reports the time since `started` (perf_counter)."""
    now_ms = int(time.time() * 1000)
    body = ENV.get_template(name).render(now_ms=now_ms, remaining=fmt.remaining, **context)
    elapsed = (time.perf_counter() - started) * 1000
    headers = {**SECURITY_HEADERS, "Server-Timing": f"app;dur={elapsed:.1f}"}
    return HTMLResponse(body, status_code=status, headers=headers)
