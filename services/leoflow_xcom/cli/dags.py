"""`leoflow-xcom dags apply | validate | ls`: DAG XCom policies."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from leoflow_xcom.cli.errors import CommandError

if TYPE_CHECKING:
    from leoflow_xcom.core.policies import DagPolicy


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dags = commands.add_parser("dags", help="DAG XCom policies")
    sub = dags.add_subparsers(dest="dags_command", required=True, metavar="SUBCOMMAND")
    apply = sub.add_parser(
        "apply",
        help="validate PATH (a file or a directory of *.json) and publish it to Redis",
        description="Validates every file first; one bad file rejects the whole apply and "
        "changes nothing. Running servers pick the change up within about a second.",
    )
    apply.add_argument("path", type=Path)
    apply.add_argument(
        "--prune",
        action="store_true",
        help="also remove published policies of DAGs not in PATH (their pushes are then "
        "refused with DAG_NOT_REGISTERED; stored values stay readable until their TTL)",
    )
    apply.set_defaults(handler=run_apply)
    rm = sub.add_parser(
        "rm",
        help="remove the published policies of these DAGs",
        description="Pushes of a removed DAG are refused with DAG_NOT_REGISTERED; values already "
        "stored stay readable until their TTL (clear them with `leoflow-xcom clear`).",
    )
    rm.add_argument("dag_ids", nargs="+", metavar="DAG")
    rm.set_defaults(handler=run_rm)
    validate = sub.add_parser("validate", help="validate PATH without touching Redis")
    validate.add_argument("path", type=Path)
    validate.set_defaults(handler=run_validate)
    ls = sub.add_parser("ls", help="list the policies published in Redis")
    ls.set_defaults(handler=run_ls)


def load_policies(path: Path) -> list[DagPolicy]:
    """Read and validate a policy file or every *.json in a directory (sorted)."""
    from leoflow_xcom.init.dag_files import PolicyFileError, load_policy_files

    try:
        return load_policy_files(path)
    except PolicyFileError as exc:
        raise CommandError(str(exc)) from None


def run_validate(args: argparse.Namespace) -> int:
    policies = load_policies(args.path)
    print(f"{len(policies)} DAG policies valid: {', '.join(p.dag_id for p in policies)}")
    return 0


def run_apply(args: argparse.Namespace) -> int:
    from leoflow_xcom.settings import RedisSettings
    from leoflow_xcom.store.connection import connect
    from leoflow_xcom.store.layout import ensure_layout
    from leoflow_xcom.store.registry import PolicyStore

    policies = load_policies(args.path)
    client = connect(RedisSettings())
    ensure_layout(client)
    store = PolicyStore(client)
    stale: list[str] = []
    if args.prune:
        _, published = store.load_ids()
        stale = sorted(published - {p.dag_id for p in policies})
    revision = store.publish(policies, remove=stale)
    print(
        f"applied {len(policies)} DAG policies (revision {revision}): "
        f"{', '.join(p.dag_id for p in policies)}"
    )
    if stale:
        print(f"removed {len(stale)} DAG policies not in {args.path}: {', '.join(stale)}")
    return 0


def run_rm(args: argparse.Namespace) -> int:
    from leoflow_xcom.settings import RedisSettings
    from leoflow_xcom.store.connection import connect
    from leoflow_xcom.store.registry import PolicyStore

    store = PolicyStore(connect(RedisSettings()))
    _, published = store.load_ids()
    missing = sorted(set(args.dag_ids) - published)
    if missing:
        raise CommandError(
            f"no published policy for {', '.join(map(repr, missing))}: nothing was removed "
            f"(`leoflow-xcom dags ls` lists them)"
        )
    revision = store.remove(args.dag_ids)
    print(f"removed {len(args.dag_ids)} DAG policies (revision {revision})")
    return 0


def run_ls(args: argparse.Namespace) -> int:
    from leoflow_xcom.settings import RedisSettings
    from leoflow_xcom.store.connection import connect
    from leoflow_xcom.store.registry import PolicyStore

    revision, policies = PolicyStore(connect(RedisSettings())).load()
    for dag_id, policy in sorted(policies.items()):
        tasks = ", ".join(t.task_id for t in policy.tasks)
        print(f"{dag_id}\tttl={policy.xcom_ttl}s\ttasks: {tasks}")
    print(f"# revision {revision}")
    return 0
