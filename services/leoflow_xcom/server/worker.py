"""One worker process of a multi-process replica (server/supervisor.py starts it with spawn).

It is a whole service of its own: gRPC server on the shared port (SO_REUSEPORT), event loop,
stream guard, Redis pool, health. It tells the parent once it serves, drains on SIGTERM like a
single-process service, and drains too when the parent disappears (SIGKILL of the parent must
not leave workers serving without supervision).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import Connection, wait

from leoflow_xcom.core.errors import XComError
from leoflow_xcom.settings import RedisSettings, ServeSettings, SettingsFileError
from leoflow_xcom.telemetry import logs

log = logging.getLogger(__name__)

READY = b"ready"


def _drain_when_parent_goes() -> None:
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        log.warning("the supervising process is gone: draining")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(
    index: int,
    serve: ServeSettings,
    redis_settings: RedisSettings,
    ready: Connection,
    log_level: str,
    json_logs: bool,
) -> None:
    """The spawned process's entry point; exits 0 after a drain, 1 when it cannot serve."""
    # First: a SIGTERM while the worker still starts must stop it after the start, cleanly.
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    logs.configure(log_level, json_logs)
    # Imported here, in the child: the parent never loads grpc.
    from leoflow_xcom.server.app import start

    _drain_when_parent_goes()
    try:
        running = start(serve, redis_settings, worker=index)
    except XComError as exc:
        log.error("worker %d cannot start: %s: %s", index, exc.reason, exc.message)
        raise SystemExit(1) from None
    except (SettingsFileError, RuntimeError, OSError) as exc:
        log.error("worker %d cannot start: %s", index, exc)
        raise SystemExit(1) from None
    ready.send_bytes(READY)
    ready.close()
    stop.wait()
    log.info("worker %d draining in-flight calls (up to %.1f s)", index, serve.drain_seconds)
    running.stop(serve.drain_seconds)
