"""`leoflow-xcom serve`: run the gRPC XCom service until SIGTERM, then drain."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the gRPC XCom service",
        description="Run the gRPC XCom service. Settings: LEOFLOW_XCOM_LISTEN, "
        "LEOFLOW_XCOM_SIGNING_KEY_FILE, LEOFLOW_XCOM_WORKERS, LEOFLOW_XCOM_DRAIN_SECONDS, "
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
    from leoflow_xcom.server.app import run_until_signal, start
    from leoflow_xcom.settings import RedisSettings, ServeSettings

    overrides = {"listen": args.listen} if args.listen else {}
    serve = ServeSettings(**overrides)
    running = start(serve, RedisSettings())
    print(f"leoflow-xcom: serving on port {running.port}", flush=True)
    run_until_signal(running, serve.drain_seconds)
    return 0
