"""The gRPC service's metrics endpoint and memory warning, started and stopped with it.

One CollectorRegistry per service (not the process-global one), so tests and the bench can run
several services in a process. Redis figures are read at scrape time by StoreCollector; call
figures are recorded by the CallObserver.

A worker process of a multi-process replica (server/supervisor.py) serves no endpoint and
watches no memory: its figures go to prometheus_client's multiprocess files, which the parent
sums on scrape next to the Redis figures, once per replica. Gauges read at scrape time cannot
cross processes, so a worker copies its stream counts into `livesum` gauges every second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge

from leoflow_xcom.server.observe import CallObserver
from leoflow_xcom.settings import ServeSettings
from leoflow_xcom.store.connection import StoreClient
from leoflow_xcom.telemetry.memory import MemoryWatch
from leoflow_xcom.telemetry.metrics import CallMetrics, StoreCollector, gauge_of, serve_metrics

log = logging.getLogger(__name__)

METRICS_PREFIX = "leoflow_xcom_grpc"


GAUGE_SYNC_SECONDS = 1.0


class Monitoring:
    def __init__(
        self, serve: ServeSettings, client: StoreClient, worker: int | None = None
    ) -> None:
        self._listen = serve.metrics_listen
        self._worker = worker
        self.memory = MemoryWatch(client, serve.memory_warn_ratio)
        self.registry: CollectorRegistry | None = None
        self._http: WSGIServer | None = None
        self._stop = threading.Event()
        self._sync: threading.Thread | None = None
        metrics = None
        worker_calls = None
        if self._listen:
            self.registry = CollectorRegistry()
            metrics = CallMetrics(self.registry, METRICS_PREFIX)
            if worker is None:
                self.registry.register(StoreCollector(client, serve.memory_warn_ratio))
            else:
                worker_calls = Counter(
                    f"{METRICS_PREFIX}_worker_calls",
                    "Calls answered by each worker process of the replica",
                    ["worker"],
                    registry=self.registry,
                ).labels(str(worker))
        self.observer = CallObserver(metrics, worker_calls)

    @property
    def metrics_port(self) -> int | None:
        return int(self._http.server_port) if self._http is not None else None

    def start(
        self, open_sessions: Callable[[], int], unauthenticated: Callable[[], int] = lambda: 0
    ) -> None:
        if self._worker is not None:
            if self.registry is not None:
                self._start_gauge_sync(open_sessions, unauthenticated)
            return
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

    def _start_gauge_sync(
        self, open_sessions: Callable[[], int], unauthenticated: Callable[[], int]
    ) -> None:
        assert self.registry is not None
        sessions = Gauge(
            f"{METRICS_PREFIX}_open_sessions",
            "XComSession streams open on this replica",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        pending = Gauge(
            f"{METRICS_PREFIX}_unauthenticated_streams",
            "streams holding a thread without a valid token yet",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

        def sync() -> None:
            while True:
                sessions.set(open_sessions())
                pending.set(unauthenticated())
                if self._stop.wait(GAUGE_SYNC_SECONDS):
                    return

        self._sync = threading.Thread(target=sync, name="gauge-sync", daemon=True)
        self._sync.start()

    def stop(self) -> None:
        self._stop.set()
        if self._sync is not None:
            self._sync.join(timeout=5)
        self.memory.stop()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
