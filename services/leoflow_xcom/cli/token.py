"""`leoflow-xcom token`: mint a task (or control-plane) token with the shared signing key."""

from __future__ import annotations

import argparse
import time

from leoflow_xcom.cli.errors import CommandError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "token",
        help="mint a task token (signing key from LEOFLOW_XCOM_SIGNING_KEY_FILE)",
        description="Print a signed task token. Tasks send it as `authorization: Bearer ...`.",
    )
    parser.add_argument("--dag", help="dag_id")
    parser.add_argument("--run", help="run_id")
    parser.add_argument("--task", help="task_id")
    parser.add_argument("--map-index", type=int, default=-1, help="map index (default -1)")
    parser.add_argument("--expires-in", default="1h", help="lifetime, e.g. 90s, 15m, 1h, 2d")
    parser.add_argument(
        "--control-plane", action="store_true", help="a control-plane token (ClearXComs, any run)"
    )
    parser.add_argument("--logical-date", help="the run's logical date (ISO 8601), for the UI")
    parser.add_argument("--run-after", help="the run's run_after (ISO 8601), for the UI")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Minting is the control plane's job: it needs the [server] extra (PyJWT, settings).
    from leoflow_xcom.core import ids, tokens
    from leoflow_xcom.core.policies import parse_duration
    from leoflow_xcom.settings import TokenSettings

    try:
        expires_in = parse_duration(args.expires_in)
    except ValueError as exc:
        raise CommandError(f"--expires-in: {exc}") from None
    if expires_in <= 0:
        raise CommandError("--expires-in must be positive")
    settings = TokenSettings()
    if expires_in > settings.max_token_lifetime:
        raise CommandError(
            f"--expires-in {args.expires_in} is {expires_in} s; the service accepts tokens of at "
            f"most {settings.max_token_lifetime} s (LEOFLOW_XCOM_MAX_TOKEN_LIFETIME)"
        )
    if not args.control_plane:
        missing = [f"--{n}" for n in ("dag", "run", "task") if not getattr(args, n)]
        if missing:
            raise CommandError(f"missing {', '.join(missing)} (or use --control-plane)")
        ids.check_id("dag_id", args.dag)
        ids.check_id("run_id", args.run)
        ids.check_id("task_id", args.task)
        ids.check_map_index(args.map_index)
    key = settings.signing_key()
    print(
        tokens.mint(
            key,
            now=int(time.time()),
            expires_in=expires_in,
            dag_id=args.dag or "",
            run_id=args.run or "",
            task_id=args.task or "",
            map_index=args.map_index,
            control_plane=args.control_plane,
            logical_date=args.logical_date,
            run_after=args.run_after,
        )
    )
    return 0
