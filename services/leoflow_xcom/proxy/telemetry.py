"""Request ids, an access log line and Prometheus metrics for every proxy request.

Outermost layer, so refusals (405, 401) are counted and carry an `X-Request-Id` too.

gunicorn runs several worker processes and a scrape reaches one of them, so the proxy uses
prometheus_client's multiprocess mode: `leoflow-xcom ui` points PROMETHEUS_MULTIPROC_DIR at a
fresh directory before gunicorn starts, each worker writes its counters there, and /metrics
(any worker) sums them all. Without that variable (tests, `create_app` in a tool) the
process's own figures are served.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leoflow_xcom.telemetry import logs
from leoflow_xcom.telemetry.metrics import CallMetrics

log = logging.getLogger("leoflow_xcom.ui.access")

METRICS_PREFIX = "leoflow_xcom_ui"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def route_template(scope: Scope) -> str:
    """`/api/v2/dags/{dag_id}/...`, not the concrete path: bounded label values. Requests
    refused before routing (read-only, auth) or matching nothing are `unrouted`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unrouted"
    return str(scope.get("root_path", "")) + path


class TelemetryMiddleware:
    def __init__(self, app: ASGIApp, metrics: CallMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        rid = logs.accept_request_id(Headers(scope=scope).get(logs.REQUEST_ID_HEADER))
        reset = logs.request_id.set(rid)
        started = time.perf_counter()
        status = 500  # if the app fails before answering, the server answers 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message).append("X-Request-Id", rid)
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            self._metrics.observe(route, str(status), seconds)
            log.info(
                "%s %s %d",
                scope["method"],
                route,
                status,
                extra={
                    "method": f"{scope['method']} {route}",
                    "code": status,
                    "duration_ms": round(seconds * 1000, 3),
                },
            )
            logs.request_id.reset(reset)


def metrics_endpoint(own: CollectorRegistry, store: Collector) -> Callable[[Request], Response]:
    """GET /metrics (behind the proxy's auth): request figures plus the Redis collector."""

    def metrics(request: Request) -> Response:
        registry = CollectorRegistry()
        if os.environ.get(MULTIPROC_ENV):
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Forward(own))
        registry.register(store)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()
