"""`leoflow-xcom serve` with several worker processes: the parent that supervises them.

The sync grpcio server does Python work on one core per process, so a replica runs
LEOFLOW_XCOM_PROCESSES workers (server/worker.py), each a whole service bound to the same port
with SO_REUSEPORT (server/reuseport.py). This parent loads no grpc and holds no gRPC object:
workers are started with `spawn`, fresh interpreters, as gRPC's multiprocessing example
requires of anything created before them.

The parent:
- restarts a worker that dies, after a backoff that doubles with each death in a row;
- gives up, draining the others and exiting 1, when a worker dies MAX_FAILURES times in a row
  without having served STABLE_SECONDS (a crash loop: a bad setting, Redis unreachable at
  start beyond LEOFLOW_XCOM_STARTUP_TIMEOUT_SECONDS);
- forwards SIGTERM/SIGINT to every worker, which drain within LEOFLOW_XCOM_DRAIN_SECONDS, and
  exits 0 when all of them did;
- serves /metrics once for the replica: the workers' multiprocess files summed, the Redis
  figures, and its own restart count.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from leoflow_xcom.server import reuseport, worker
from leoflow_xcom.settings import RedisSettings, ServeSettings
from leoflow_xcom.store.connection import connect
from leoflow_xcom.telemetry.memory import MemoryWatch
from leoflow_xcom.telemetry.metrics import StoreCollector, serve_metrics

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PREFIX = "leoflow_xcom_grpc"

FIRST_BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 10.0
# A worker that served this long had a healthy start: its next death starts a new count.
STABLE_SECONDS = 30.0
MAX_FAILURES = 4
# Beyond the drain: how long a worker may take to act on SIGTERM (it may still be starting).
STOP_MARGIN_SECONDS = 10.0
POLL_SECONDS = 0.2


@dataclasses.dataclass
class Slot:
    index: int
    process: BaseProcess | None = None
    ready: Connection | None = None
    started: float = 0.0
    served_since: float | None = None
    failures: int = 0  # deaths in a row without STABLE_SECONDS of service
    restart_at: float | None = None
    last_exit: int | None = None


class Supervisor:
    def __init__(
        self,
        serve: ServeSettings,
        redis_settings: RedisSettings,
        processes: int,
        log_level: str,
        json_logs: bool,
    ) -> None:
        self._serve = serve
        self._redis = redis_settings
        self._log = (log_level, json_logs)
        self._slots = [Slot(i) for i in range(processes)]
        self._context = multiprocessing.get_context("spawn")
        self._stopping = False
        self.restarts = 0

    @property
    def processes(self) -> int:
        return len(self._slots)

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self, on_ready: Callable[[int], None]) -> int:
        """Serve until SIGTERM/SIGINT (0) or a crash loop (1). `on_ready(port)` once every
        worker serves the first time."""
        reservation, listen = reuseport.reserve(self._serve.listen)
        port = reuseport.split_listen(listen)[1]
        metrics_dir = tempfile.mkdtemp(prefix="leoflow-xcom-metrics-")
        # Inherited by the spawned workers, read by prometheus_client when they import it.
        os.environ[MULTIPROC_ENV] = metrics_dir
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        per_process = self._serve.for_processes(len(self._slots)).model_copy(
            update={"listen": listen}
        )
        http, memory = self._start_metrics(metrics_dir)
        announced = False
        try:
            for slot in self._slots:
                self._spawn(slot, per_process)
            while not self._stopping:
                if self._supervise(per_process) is not None:
                    return 1
                if not announced and all(s.served_since is not None for s in self._slots):
                    announced = True
                    on_ready(port)
            return self._stop_all()
        finally:
            if self._stopping is False:
                self._stop_all()
            if http is not None:
                http.shutdown()
                http.server_close()
            if memory is not None:
                memory.stop()
            reservation.close()
            shutil.rmtree(metrics_dir, ignore_errors=True)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self._stopping:
            log.info("%s: draining %d workers", signal.Signals(signum).name, len(self._slots))
        self._stopping = True

    def _spawn(self, slot: Slot, settings: ServeSettings) -> None:
        receive, send = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=worker.main,
            args=(slot.index, settings, self._redis, send, *self._log),
            name=f"xcom-worker-{slot.index}",
        )
        process.start()
        send.close()  # the child holds its end; ours closing lets EOF mean "died"
        slot.process, slot.ready = process, receive
        slot.started, slot.served_since, slot.restart_at = time.monotonic(), None, None
        log.info("worker %d started (pid %s)", slot.index, process.pid)

    def _supervise(self, settings: ServeSettings) -> Slot | None:
        """One round: note ready workers, reap dead ones, restart due ones. Returns the slot
        that crash-looped, if any."""
        waitables: list[object] = []
        for slot in self._slots:
            if slot.process is not None:
                waitables.append(slot.process.sentinel)
                if slot.ready is not None:
                    waitables.append(slot.ready)
        wait(waitables, timeout=POLL_SECONDS)  # type: ignore[arg-type]
        now = time.monotonic()
        for slot in self._slots:
            if slot.ready is not None and slot.ready.poll():
                try:
                    slot.ready.recv_bytes()
                    slot.served_since = now
                    log.info("worker %d serving", slot.index)
                except EOFError:
                    pass  # died before serving: reaped below
                slot.ready.close()
                slot.ready = None
            process = slot.process
            if process is not None and not process.is_alive() and not self._stopping:
                if self._reap(slot, process, now):
                    return slot
            if slot.process is None and slot.restart_at is not None and now >= slot.restart_at:
                if not self._stopping:
                    self._spawn(slot, settings)
                    self.restarts += 1
        return None

    def _reap(self, slot: Slot, process: BaseProcess, now: float) -> bool:
        """A worker died: schedule its restart. True when it keeps dying."""
        process.join()
        assert process.pid is not None
        # Its live gauges leave the sums; its counters stay.
        mark_process_dead(process.pid)  # type: ignore[no-untyped-call]
        if slot.ready is not None:
            slot.ready.close()
            slot.ready = None
        served = now - slot.served_since if slot.served_since is not None else None
        slot.failures = 1 if served is not None and served >= STABLE_SECONDS else slot.failures + 1
        slot.process, slot.last_exit = None, process.exitcode
        if slot.failures >= MAX_FAILURES:
            log.error(
                "worker %d keeps dying: %d deaths in a row, none after serving %.0f s (last exit "
                "code %s); giving up, see its error above",
                slot.index,
                slot.failures,
                STABLE_SECONDS,
                process.exitcode,
            )
            self._stopping = True
            self._stop_all()
            return True
        backoff = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (slot.failures - 1))
        slot.restart_at = now + backoff
        log.warning(
            "worker %d (pid %s) died with exit code %s after %s; restarting in %.2f s",
            slot.index,
            process.pid,
            process.exitcode,
            f"serving {served:.1f} s" if served is not None else "never serving",
            backoff,
        )
        return False

    def _stop_all(self) -> int:
        """SIGTERM every worker, wait for their drains, SIGKILL what outlives them. 0 when
        every worker exited cleanly."""
        alive = [s.process for s in self._slots if s.process is not None]
        for process in alive:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._serve.drain_seconds + STOP_MARGIN_SECONDS
        code = 0
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker pid %s did not stop in time: killing it", process.pid)
                process.kill()
                process.join()
            # -SIGTERM: stopped before it could install its handler, so before it served.
            if process.exitcode not in (0, -signal.SIGTERM):
                log.error("worker pid %s exited with code %s", process.pid, process.exitcode)
                code = 1
        for slot in self._slots:
            slot.process = None
        if code == 0:
            log.info("all workers drained and stopped")
        return code

    # -- metrics -----------------------------------------------------------------------------

    def _start_metrics(self, metrics_dir: str) -> tuple[WSGIServer | None, MemoryWatch | None]:
        if not self._serve.metrics_listen:
            return None, None
        client = connect(self._redis)
        memory = MemoryWatch(client, self._serve.memory_warn_ratio)
        memory.start()
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
        registry.register(StoreCollector(client, self._serve.memory_warn_ratio))
        registry.register(_SupervisorCollector(self))
        try:
            http = serve_metrics(self._serve.metrics_listen, registry)
        except (OSError, ValueError) as exc:
            # As in a single process: metrics must not stop XCom from serving tasks.
            log.error(
                "LEOFLOW_XCOM_METRICS_LISTEN=%s: cannot bind (%s); no /metrics",
                self._serve.metrics_listen,
                exc,
            )
            return None, memory
        log.info("metrics on port %d (/metrics)", http.server_port)
        return http, memory


class _SupervisorCollector(Collector):
    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        restarts = CounterMetricFamily(
            f"{METRICS_PREFIX}_worker_restarts", "Worker processes restarted after dying"
        )
        restarts.add_metric([], self._supervisor.restarts)
        yield restarts
        processes = GaugeMetricFamily(
            f"{METRICS_PREFIX}_processes",
            "Worker processes of this replica (LEOFLOW_XCOM_PROCESSES)",
        )
        processes.add_metric([], self._supervisor.processes)
        yield processes
