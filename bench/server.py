"""The service as the bench runs it: `leoflow-xcom serve` plus the bench-only echo service.

python -m bench.server   (settings from the same LEOFLOW_* variables as `serve`)
"""

from __future__ import annotations

import logging

from bench import echo
from leoflow_xcom.server.app import run_until_signal, start
from leoflow_xcom.settings import RedisSettings, ServeSettings
from leoflow_xcom.store.connection import connect


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    serve = ServeSettings()  # type: ignore[call-arg,unused-ignore]
    redis_settings = RedisSettings()
    store = connect(redis_settings)  # the echo's own client, built the way the service's is
    running = start(serve, redis_settings, extra_handlers=[echo.handler(store)])
    print(f"bench-server: serving on port {running.port}", flush=True)
    run_until_signal(running, serve.drain_seconds)


if __name__ == "__main__":
    main()
