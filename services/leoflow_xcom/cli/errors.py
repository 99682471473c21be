"""Errors a command reports as one line on stderr, with an exit code (cli/exit_codes.py)."""

from __future__ import annotations

from leoflow_xcom.cli.exit_codes import ExitCode


class CommandError(Exception):
    """A failure the user can act on: bad arguments, unreadable files, missing settings."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code
