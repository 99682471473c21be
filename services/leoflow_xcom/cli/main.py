"""`leoflow-xcom`: the command-line entry point. Each command group lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from leoflow_xcom import __version__
from leoflow_xcom.cli import dags, health, init, serve, token, ui, values
from leoflow_xcom.cli.errors import CommandError
from leoflow_xcom.core.errors import XComError
from leoflow_xcom.settings import LogSettings, SettingsFileError
from leoflow_xcom.telemetry import logs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leoflow-xcom",
        description="Leoflow XCom: small typed payloads between tasks, in Redis, over gRPC.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (serve, ui, token, values, dags, init, health):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        logs.configure(args.log_level, logs.wants_json(LogSettings().format))
    except (ValueError, ValidationError) as exc:
        print(f"leoflow-xcom: bad logging settings: {exc}", file=sys.stderr)
        return 1
    try:
        result: int = args.handler(args)
    except XComError as exc:
        print(f"leoflow-xcom: {exc.reason}: {exc.message}", file=sys.stderr)
        return 1
    except (CommandError, SettingsFileError) as exc:
        print(f"leoflow-xcom: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        print(f"leoflow-xcom: bad settings: {_settings_problem(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result


def _settings_problem(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        name = "_".join(str(p) for p in error["loc"]).upper()
        parts.append(f"{exc.title} {name}: {error['msg']}")
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
