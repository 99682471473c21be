"""Prometheus metrics shared by the gRPC service and the UI proxy.

Call metrics are recorded by each transport's error-mapping layer (one place per transport);
Redis gauges are read at scrape time, never on the hot path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from leoflow_xcom.core import limits
from leoflow_xcom.core.errors import XComError
from leoflow_xcom.store.connection import StoreClient
from leoflow_xcom.store.stats import read_stats

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5)
SIZE_BUCKETS = (100, 1024, 4096, 16_384, 65_536, 131_072, limits.MAX_VALUE_BYTES, 1 << 20)


class CallMetrics:
    """Calls, latency, payload sizes and refusals of one transport.

    Label children are bound once per (method, code) and cached: `labels()` hashes and locks
    on every call, and the hot path should pay only for the increments themselves.
    """

    def __init__(
        self, registry: CollectorRegistry, prefix: str, labels: tuple[str, str] = ("method", "code")
    ) -> None:
        # labels: what a call is and how it ended (gRPC method and code, HTTP route and status)
        self.calls = Counter(
            f"{prefix}_calls",
            f"Calls by {labels[0]} and {labels[1]}",
            labels,
            registry=registry,
        )
        self.latency = Histogram(
            f"{prefix}_call_seconds",
            f"Call latency by {labels[0]} and {labels[1]}",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.payload = Histogram(
            f"{prefix}_payload_bytes",
            "Sizes of pushed and fetched values",
            ["method"],
            buckets=SIZE_BUCKETS,
            registry=registry,
        )
        self.rejections = Counter(
            f"{prefix}_rejections",
            "Refused calls by ErrorInfo reason",
            ["reason"],
            registry=registry,
        )
        self._bound: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._payload_bound: dict[str, Histogram] = {}

    def observe(self, method: str, code: str, seconds: float) -> None:
        bound = self._bound.get((method, code))
        if bound is None:  # a racing first call binds twice: harmless, same children
            bound = (self.calls.labels(method, code), self.latency.labels(method, code))
            self._bound[(method, code)] = bound
        bound[0].inc()
        bound[1].observe(seconds)

    def payload_size(self, method: str, size: int) -> None:
        child = self._payload_bound.get(method)
        if child is None:
            child = self._payload_bound[method] = self.payload.labels(method)
        child.observe(size)

    def rejected(self, error: XComError) -> None:
        self.rejections.labels(error.reason).inc()


def gauge_of(registry: CollectorRegistry, name: str, doc: str, read: Callable[[], float]) -> None:
    """A gauge read at scrape time from `read`."""
    Gauge(name, doc, registry=registry).set_function(read)


class StoreCollector(Collector):
    """Redis memory against maxmemory, keys and AOF health, read when Prometheus scrapes."""

    def __init__(self, client: StoreClient, warn_ratio: float) -> None:
        self._client = client
        self._warn_ratio = warn_ratio

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("leoflow_xcom_redis_up", "1 if Redis answered the scrape")
        try:
            stats = read_stats(self._client)
        except XComError as exc:
            log.warning("metrics: cannot read Redis stats: %s", exc.message)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, doc, value in (
            ("redis_used_memory_bytes", "Redis used_memory", stats.used_memory),
            ("redis_maxmemory_bytes", "Redis maxmemory (0: unlimited)", stats.maxmemory),
            ("redis_memory_ratio", "used_memory / maxmemory", stats.memory_ratio),
            (
                "redis_memory_warning",
                f"1 when memory use passes {self._warn_ratio:.0%}",
                int(stats.memory_warning(self._warn_ratio)),
            ),
            ("redis_keys", "keys in Redis", stats.keys),
            ("redis_aof_enabled", "1 when AOF persistence is on", int(stats.aof_enabled)),
            (
                "redis_aof_last_write_ok",
                "1 when the last AOF write succeeded",
                int(stats.aof_last_write_ok),
            ),
        ):
            gauge = GaugeMetricFamily(f"leoflow_xcom_{name}", doc)
            gauge.add_metric([], value)
            yield gauge


def serve_metrics(listen: str, registry: CollectorRegistry) -> WSGIServer:
    """Expose /metrics on `host:port` (port 0 picks one) in a daemon thread; `.server_port`
    is the bound port, `.shutdown()` stops it."""
    host, _, port = listen.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host or "0.0.0.0", registry=registry)
    return server
