"""How gunicorn runs the proxy: the worker class and the server hooks (`-c python:` this module).

- ProxyWorker: uvicorn without its `server: uvicorn` banner (nothing tells a scanner which
  server and version answer).
- on_exit: the master removes the Prometheus multiprocess directory `leoflow-xcom ui` made for
  this start, so restarts leave nothing behind in /tmp (a SIGKILLed master cannot, of course).
- child_exit: a dead worker's live gauges stop counting (prometheus_client's gunicorn recipe).
"""

from __future__ import annotations

import os
import shutil
from typing import Any, ClassVar

from prometheus_client import multiprocess
from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]

from leoflow_xcom.proxy.telemetry import MULTIPROC_ENV


class ProxyWorker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **UvicornWorker.CONFIG_KWARGS,
        "server_header": False,
    }


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
