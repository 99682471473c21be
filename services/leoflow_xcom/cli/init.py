"""`leoflow-xcom init`: validate config and DAG policies, generate secrets, set up Redis."""

from __future__ import annotations

import argparse
from pathlib import Path

from leoflow_xcom.cli.errors import CommandError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "init",
        help="validate config and DAG policies, generate secrets, write Redis ACL users",
        description="Runs before the services (Compose: the xcom-init job). Stage `prepare` "
        "validates the DAG policies, generates missing secrets (never rotates one unless "
        "--rotate NAME) and writes the Redis ACL file; stage `apply` waits for Redis, loads the "
        "ACL users, checks the data layout and publishes the policies. Settings: "
        "LEOFLOW_INIT_SECRETS_DIR, LEOFLOW_INIT_ACL_DIR, LEOFLOW_INIT_DAGS, "
        "LEOFLOW_INIT_REDIS_WAIT_SECONDS, LEOFLOW_INIT_TLS (on: also a private CA and a server "
        "certificate, ca.crt/server.crt/server.key), LEOFLOW_INIT_TLS_HOSTS, LEOFLOW_REDIS_URL.",
    )
    parser.add_argument(
        "--stage", choices=("all", "prepare", "apply"), default="all", help="default: all"
    )
    parser.add_argument(
        "--rotate",
        action="append",
        default=[],
        metavar="NAME",
        help="replace this secret with a new random one (repeatable); `tls`: a new CA and "
        "server certificate",
    )
    parser.add_argument("--dags", type=Path, help="DAG policy file or directory")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from leoflow_xcom.init import job
    from leoflow_xcom.settings import InitSettings, RedisSettings

    overrides = {"dags": args.dags} if args.dags else {}
    settings = InitSettings(**overrides)
    try:
        if args.stage == "apply":
            prepared = job.load_existing(settings)
        else:
            prepared = job.prepare(settings, rotate=args.rotate)
        if args.stage != "prepare":
            job.apply(settings, RedisSettings(), prepared)
    except job.InitError as exc:
        raise CommandError(f"init failed: {exc}") from None
    stage = {"all": "done", "prepare": "prepared", "apply": "applied"}[args.stage]
    print(f"leoflow-xcom init: {stage} ({len(prepared.policies)} DAG policies)", flush=True)
    return 0
