"""`leoflow-xcom`: the command-line entry point. Each command group lives in its own module.

Only the client commands' needs are imported here (argparse, gRPC through the SDK): the server
commands import their stack when they run, so an SDK-only install still starts the CLI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from leoflow_xcom import __version__
from leoflow_xcom.cli import dags, exit_codes, extras, health, init, serve, token, ui, values
from leoflow_xcom.cli.errors import CommandError
from leoflow_xcom.cli.exit_codes import ExitCode
from leoflow_xcom.client._env import ClientConfigError
from leoflow_xcom.core.errors import XComError
from leoflow_xcom.telemetry import logs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leoflow-xcom",
        description="Leoflow XCom: small typed payloads between tasks, in Redis, over gRPC.",
        epilog=exit_codes.HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", help="logging level (default LEOFLOW_LOG_LEVEL, else INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (serve, ui, token, values, dags, init, health):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        level = logs.level_from_env()
        if args.log_level is not None:
            level = logs.check_level(args.log_level, "--log-level")
        args.log_level = level
        logs.configure(level, logs.wants_json(logs.format_from_env()))
    except ValueError as exc:
        return _fail(f"bad logging settings: {exc}", ExitCode.ERROR)
    try:
        result: int = args.handler(args)
    except XComError as exc:
        return _fail(f"{exc.reason}: {exc.message}", exit_codes.for_error(exc))
    except CommandError as exc:
        return _fail(str(exc), exc.exit_code)
    except ClientConfigError as exc:
        return _fail(str(exc), ExitCode.ERROR)
    except ModuleNotFoundError as exc:
        missing = extras.missing_server_module(exc)
        if missing is None:
            raise
        return _fail(
            f"`{args.command}` needs the server extra (no module {missing!r}): "
            f"{extras.INSTALL_HINT}",
            ExitCode.ERROR,
        )
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        problem = _settings_problem(exc)
        if problem is None:
            raise
        return _fail(problem, ExitCode.ERROR)
    return result


def _fail(message: str, code: int) -> int:
    print(f"leoflow-xcom: {message}", file=sys.stderr)
    return int(code)


def _settings_problem(exc: Exception) -> str | None:
    """Bad server settings, as one line. Looked up only where the server commands already
    loaded pydantic and the settings module: importing them here would tie every command,
    the client ones too, to the [server] extra."""
    settings = sys.modules.get("leoflow_xcom.settings")
    if settings is not None and isinstance(exc, settings.SettingsError):
        return str(exc)
    pydantic = sys.modules.get("pydantic")
    if pydantic is None or not isinstance(exc, pydantic.ValidationError):
        return None
    parts = []
    for error in exc.errors():
        name = "_".join(str(p) for p in error["loc"]).upper()
        parts.append(f"{exc.title} {name}: {error['msg']}")
    return "bad settings: " + "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
