"""The gRPC service's metrics endpoint and memory warning, started and stopped with it.

One CollectorRegistry per service (not the process-global one), so tests and the bench can run
several services in a process. Redis figures are read at scrape time by StoreCollector; call
figures are recorded by the CallObserver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry

from leoflow_xcom.server.observe import CallObserver
from leoflow_xcom.settings import ServeSettings
from leoflow_xcom.store.connection import StoreClient
from leoflow_xcom.telemetry.memory import MemoryWatch
from leoflow_xcom.telemetry.metrics import CallMetrics, StoreCollector, gauge_of, serve_metrics

log = logging.getLogger(__name__)

METRICS_PREFIX = "leoflow_xcom_grpc"


class Monitoring:
    def __init__(self, serve: ServeSettings, client: StoreClient) -> None:
        self._listen = serve.metrics_listen
        self.memory = MemoryWatch(client, serve.memory_warn_ratio)
        self.registry: CollectorRegistry | None = None
        self._http: WSGIServer | None = None
        metrics = None
        if self._listen:
            self.registry = CollectorRegistry()
            metrics = CallMetrics(self.registry, METRICS_PREFIX)
            self.registry.register(StoreCollector(client, serve.memory_warn_ratio))
        self.observer = CallObserver(metrics)

    @property
    def metrics_port(self) -> int | None:
        return int(self._http.server_port) if self._http is not None else None

    def start(
        self, open_sessions: Callable[[], int], unauthenticated: Callable[[], int] = lambda: 0
    ) -> None:
        self.memory.start()
        if self.registry is None:
            return
        gauge_of(
            self.registry,
            f"{METRICS_PREFIX}_open_sessions",
            "XComSession streams open on this replica",
            open_sessions,
        )
        gauge_of(
            self.registry,
            f"{METRICS_PREFIX}_unauthenticated_streams",
            "streams holding a thread without a valid token yet: pending sessions, reflection, "
            "calls waiting for their request message",
            unauthenticated,
        )
        try:
            self._http = serve_metrics(self._listen, self.registry)
        except (OSError, ValueError) as exc:
            # Metrics are for operators; a taken port must not stop XCom from serving tasks.
            log.error(
                "LEOFLOW_XCOM_METRICS_LISTEN=%s: cannot bind (%s); no /metrics", self._listen, exc
            )
            return
        log.info("metrics on port %d (/metrics)", self._http.server_port)

    def stop(self) -> None:
        self.memory.stop()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
