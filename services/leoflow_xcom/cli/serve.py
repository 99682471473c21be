"""`leoflow-xcom serve`: run the gRPC XCom service until SIGTERM, then drain."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from leoflow_xcom.cli.errors import CommandError

if TYPE_CHECKING:
    from leoflow_xcom.settings import RedisSettings, ServeSettings

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the gRPC XCom service",
        description="Run the gRPC XCom service. Settings: LEOFLOW_XCOM_LISTEN, "
        "LEOFLOW_XCOM_SIGNING_KEY_FILE, LEOFLOW_XCOM_PROCESSES (default: the usable CPUs), "
        "LEOFLOW_XCOM_WORKERS, LEOFLOW_XCOM_DRAIN_SECONDS, "
        "LEOFLOW_XCOM_METRICS_LISTEN, LEOFLOW_XCOM_MEMORY_WARN_RATIO, LEOFLOW_XCOM_TLS_CERT_FILE, "
        "LEOFLOW_XCOM_TLS_KEY_FILE (both: TLS), LEOFLOW_LOG_FORMAT, "
        "LEOFLOW_REDIS_URL, LEOFLOW_REDIS_USERNAME, LEOFLOW_REDIS_PASSWORD_FILE, "
        "LEOFLOW_REDIS_MODE (standalone|cluster|sentinel), LEOFLOW_REDIS_NODES, "
        "LEOFLOW_REDIS_SENTINEL_MASTER, LEOFLOW_REDIS_MIN_REPLICA_ACKS.",
    )
    parser.add_argument("--listen", help="address to bind (default LEOFLOW_XCOM_LISTEN)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so client-only commands do not load the server stack.
    from leoflow_xcom.server import cpus, reuseport
    from leoflow_xcom.settings import RedisSettings, ServeSettings
    from leoflow_xcom.telemetry import logs

    overrides = {"listen": args.listen} if args.listen else {}
    serve = ServeSettings(**overrides)
    processes = serve.processes or cpus.usable_cpus()
    if processes > 1:
        # Checked before anything starts: files the workers would each fail on, once here.
        serve.tls()
        serve.signing_key()
        from leoflow_xcom.server.supervisor import Supervisor

        supervisor = Supervisor(
            serve,
            RedisSettings(),
            processes,
            args.log_level,
            logs.wants_json(logs.format_from_env()),
        )
        try:
            return supervisor.run(_announce)
        except reuseport.BindError as exc:
            raise CommandError(str(exc)) from None
        except reuseport.ReusePortUnavailableError as exc:
            if serve.processes is not None:
                raise CommandError(
                    f"LEOFLOW_XCOM_PROCESSES={processes} needs SO_REUSEPORT to share the port: "
                    f"{exc}; set LEOFLOW_XCOM_PROCESSES=1 and run one replica per core instead"
                ) from None
            log.warning("one process instead of %d: %s", processes, exc)
    return _single(serve, RedisSettings())


def _single(serve: ServeSettings, redis_settings: RedisSettings) -> int:
    from leoflow_xcom.server.app import run_until_signal, start

    running = start(serve, redis_settings)
    run_until_signal(running, serve.drain_seconds, ready=lambda: _announce(running.port))
    return 0


def _announce(port: int) -> None:
    print(f"leoflow-xcom: serving on port {port}", flush=True)
