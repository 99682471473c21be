"""`leoflow-xcom ui`: the read-only HTTP proxy, as gunicorn with uvicorn workers.

Checks the settings, the credentials and that Redis refuses this user a write, then execs
gunicorn (it becomes the process: signals and exit codes are gunicorn's).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import TYPE_CHECKING

from leoflow_xcom.telemetry import logs

if TYPE_CHECKING:
    from leoflow_xcom.settings import UiSettings

APP = "leoflow_xcom.proxy.app:from_env()"
# Worker class and server hooks (no Server banner; the metrics directory removed on exit).
SERVING = "leoflow_xcom.proxy.serving"
# gunicorn's and uvicorn's own lines (start, workers, errors) in our format: proxy/gunicorn_log.py.
LOGGER_CLASS = "leoflow_xcom.proxy.gunicorn_log.Logger"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "ui",
        help="run the read-only Airflow-compatible HTTP proxy",
        description="Run the read-only UI proxy (gunicorn + uvicorn workers). Settings: "
        "LEOFLOW_UI_LISTEN, LEOFLOW_UI_WORKERS, LEOFLOW_UI_TIMEOUT, LEOFLOW_UI_GRACEFUL_TIMEOUT, "
        "LEOFLOW_UI_KEEPALIVE, LEOFLOW_UI_USER, LEOFLOW_UI_PASSWORD_FILE, LEOFLOW_UI_TOKEN_FILE, "
        "LEOFLOW_UI_REDIS_USERNAME, LEOFLOW_UI_REDIS_PASSWORD_FILE, LEOFLOW_UI_TLS_CERT_FILE, "
        "LEOFLOW_UI_TLS_KEY_FILE (both: HTTPS), LEOFLOW_UI_JWT_KEY_FILE and "
        "LEOFLOW_UI_JWT_EXPIRATION (POST /auth/token), LEOFLOW_REDIS_URL.",
    )
    parser.add_argument("--listen", help="address to bind (default LEOFLOW_UI_LISTEN)")
    parser.set_defaults(handler=run)


def gunicorn_argv(settings: UiSettings) -> list[str]:
    tls: list[str] = []
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        tls = ["--certfile", str(settings.tls_cert_file), "--keyfile", str(settings.tls_key_file)]
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        settings.listen,
        "--workers",
        str(settings.workers),
        "--config",
        f"python:{SERVING}",
        "--worker-class",
        f"{SERVING}.ProxyWorker",
        "--timeout",
        str(settings.timeout),
        "--graceful-timeout",
        str(settings.graceful_timeout),
        "--keep-alive",
        str(settings.keepalive),
        "--logger-class",
        LOGGER_CLASS,
        # Fail at start, in the master, on bad settings, not in a restart loop of workers.
        "--preload",
        *tls,
        APP,
    ]


def run(args: argparse.Namespace) -> int:
    # Imported here so other commands do not load Starlette.
    from leoflow_xcom.proxy.app import credentials
    from leoflow_xcom.proxy.startup import check_store
    from leoflow_xcom.proxy.telemetry import MULTIPROC_ENV
    from leoflow_xcom.settings import RedisSettings, UiSettings

    overrides = {"listen": args.listen} if args.listen else {}
    settings = UiSettings(**overrides)
    credentials(settings)  # refuses to start without any
    tls = settings.tls()  # both files or neither, readable: checked before gunicorn starts
    check_store(settings, RedisSettings())
    if args.listen:
        os.environ["LEOFLOW_UI_LISTEN"] = args.listen
    # `--log-level` reaches the gunicorn workers (proxy/app.py) through the environment.
    os.environ[logs.LEVEL_ENV] = args.log_level
    # Fresh per start: the workers' metric files (proxy/telemetry.py); stale ones would add
    # a previous run's counts.
    os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="leoflow-ui-metrics-")
    argv = gunicorn_argv(settings)
    scheme = "https" if tls else "http"
    print(f"leoflow-xcom: UI proxy on {scheme}://{settings.listen}", flush=True)
    os.execv(argv[0], argv)
    return 0  # not reached
