"""`leoflow-xcom push | fetch | ls | clear`: the service's calls from a shell.

Address from LEOFLOW_XCOM_ADDR, token from LEOFLOW_XCOM_TOKEN; TLS with LEOFLOW_XCOM_TLS_CA_FILE
(and LEOFLOW_XCOM_TLS_SERVER_NAME when the address is not in the certificate).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys

from leoflow_xcom.cli.errors import CommandError
from leoflow_xcom.client import XComClient
from leoflow_xcom.client._env import read_env


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    push = commands.add_parser("push", help="push a JSON value as this task's XCom KEY")
    push.add_argument("key")
    push.add_argument("value", help="JSON text, @FILE to read a file, or - for stdin")
    push.set_defaults(handler=run_push)

    fetch = commands.add_parser("fetch", help="print the JSON value of TASK's XCom KEY")
    fetch.add_argument("task")
    fetch.add_argument("key")
    fetch.add_argument("--map-index", type=int, default=None, help="default -1 (unmapped)")
    fetch.set_defaults(handler=run_fetch)

    ls = commands.add_parser("ls", help="list XComs of the token's run (metadata only)")
    ls.add_argument("--task", help="only this task")
    ls.add_argument("--map-index", type=int, help="only this map index")
    ls.add_argument("--key", help="only this key")
    ls.add_argument("--dag", help="DAG (control-plane tokens)")
    ls.add_argument("--run", help="run (control-plane tokens)")
    ls.add_argument("--limit", type=int, default=0, help="page size (default 100, max 1000)")
    ls.add_argument("--offset", type=int, default=0)
    ls.add_argument("--json", action="store_true", help="print JSON lines")
    ls.set_defaults(handler=run_ls)

    clear = commands.add_parser(
        "clear",
        help="delete XComs (control-plane token), or old runs straight in Redis (--older-than)",
        description="With --run: through the service, with a control-plane token. With "
        "--older-than: an operator's emergency path straight to Redis (LEOFLOW_REDIS_*), "
        "clearing every run of the DAG whose newest XCom was pushed longer ago than DURATION, "
        "in bounded batches; it works when Redis is full (maxmemory).",
    )
    clear.add_argument("--dag", required=True)
    which = clear.add_mutually_exclusive_group(required=True)
    which.add_argument("--run")
    which.add_argument(
        "--older-than", metavar="DURATION", help="e.g. 2d, 12h, 90m (runs judged by DAG TTL)"
    )
    clear.add_argument("--task", help="only this task (default: the whole run)")
    group = clear.add_mutually_exclusive_group()
    group.add_argument("--map-index", type=int, help="task instance map index (default -1)")
    group.add_argument("--all-map-indexes", action="store_true")
    clear.set_defaults(handler=run_clear)


def _client() -> XComClient:
    env = read_env()
    if env.token is None:
        raise CommandError("no token: set LEOFLOW_XCOM_TOKEN (mint one with `leoflow-xcom token`)")
    return XComClient.from_env()


def _read_value(arg: str) -> bytes:
    if arg == "-":
        return sys.stdin.buffer.read()
    if arg.startswith("@"):
        try:
            with open(arg[1:], "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise CommandError(f"cannot read {arg[1:]}: {exc.strerror}") from None
    return arg.encode("utf-8")


def run_push(args: argparse.Namespace) -> int:
    data = _read_value(args.value).strip()
    with _client() as client:
        result = client.push_json(args.key, data)
    expires = datetime.datetime.fromtimestamp(result.expires_at_ms / 1000, datetime.UTC)
    print(f"pushed {args.key!r}: {result.size_bytes} bytes, expires {expires.isoformat()}")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    with _client() as client:
        data = client.pull_json(args.task, args.key, args.map_index)
    sys.stdout.write(data.decode("utf-8") + "\n")
    return 0


def run_ls(args: argparse.Namespace) -> int:
    with _client() as client:
        result = client.list(
            task_id=args.task,
            map_index=args.map_index,
            key=args.key,
            dag_id=args.dag,
            run_id=args.run,
            limit=args.limit,
            offset=args.offset,
        )
    for e in result.entries:
        if args.json:
            print(json.dumps(dataclasses.asdict(e), ensure_ascii=False))
        else:
            pushed = datetime.datetime.fromtimestamp(e.pushed_at_ms / 1000, datetime.UTC)
            print(f"{e.task_id}\t{e.map_index}\t{e.key}\t{e.size_bytes}\t{pushed.isoformat()}")
    if not args.json:
        print(f"# {len(result.entries)} of {result.total_entries}", file=sys.stderr)
    return 0


def run_clear(args: argparse.Namespace) -> int:
    if args.older_than is not None:
        if args.task is not None or args.map_index is not None or args.all_map_indexes:
            raise CommandError("--older-than clears whole runs: drop --task/--map-index")
        from leoflow_xcom.cli.sweep import clear_older_than

        return clear_older_than(args.dag, args.older_than)
    with _client() as client:
        deleted = client.clear(
            args.dag,
            args.run,
            task_id=args.task,
            map_index=args.map_index,
            all_map_indexes=args.all_map_indexes,
        )
    print(f"cleared {deleted} XCom(s)")
    return 0
