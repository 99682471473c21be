"""`leoflow-xcom health`: ask a service over grpc.health.v1 whether it serves (healthchecks)."""

from __future__ import annotations

import argparse

from leoflow_xcom.cli.errors import CommandError
from leoflow_xcom.cli.exit_codes import ExitCode


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "health",
        help="exit 0 if the gRPC service at LEOFLOW_XCOM_ADDR reports SERVING",
        description="Calls grpc.health.v1.Health/Check; for container healthchecks. Over TLS "
        "with LEOFLOW_XCOM_TLS_CA_FILE (and LEOFLOW_XCOM_TLS_SERVER_NAME).",
    )
    parser.add_argument("--addr", help="host:port or any SDK target (default LEOFLOW_XCOM_ADDR)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds (default 2)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from leoflow_xcom.client._channel import open_channel
    from leoflow_xcom.client._env import read_env

    env = read_env()
    addr = args.addr or env.addr
    with open_channel(addr, env.credentials(), env.tls_server_name) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=args.timeout
            )
        except grpc.RpcError as exc:
            code = exc.code()
            unreachable = code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            raise CommandError(
                f"{addr}: health check failed: {code.name}",
                ExitCode.UNAVAILABLE if unreachable else ExitCode.ERROR,
            ) from None
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise CommandError(f"{addr}: {status}")
    print(f"{addr}: {status}")
    return 0
