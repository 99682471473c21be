"""The service as the bench runs it: `leoflow-xcom serve` plus the bench-only echo service.

python -m bench.server   (settings from the same LEOFLOW_* variables as `serve`; one process)

The echo's handlers run on the product's grpc.aio server and event loop (app.start's
extra_handlers). Its composite floor talks to Redis through the product's asyncio client
(store/pipelined.py), built the way the service's is; it connects on first use, on that loop.
"""

from __future__ import annotations

import logging

from bench import echo
from leoflow_xcom.server.app import run_until_signal, start
from leoflow_xcom.settings import RedisSettings, ServeSettings
from leoflow_xcom.store.pipelined import PipelinedRedis


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    serve = ServeSettings()  # type: ignore[call-arg,unused-ignore]
    redis_settings = RedisSettings()
    # The pipelined client serves standalone and Sentinel; on a cluster there is no composite
    # floor (the bench's cluster section does not use it).
    redis = None if redis_settings.mode == "cluster" else PipelinedRedis(redis_settings)
    running = start(serve, redis_settings, extra_handlers=[echo.handler(redis)])
    print(f"bench-server: serving on port {running.port}", flush=True)
    run_until_signal(running, serve.drain_seconds)


if __name__ == "__main__":
    main()
