"""Exit codes of `leoflow-xcom`, one per class of failure, so scripts can branch without
parsing stderr. 2 stays argparse's (bad command line)."""

from __future__ import annotations

import enum

from leoflow_xcom.core.errors import StatusCode, XComError


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1  # anything else: settings, files, a missing extra, an unexpected failure
    USAGE = 2  # argparse: a bad command line
    NOT_FOUND = 3  # XCOM_NOT_FOUND
    DENIED = 4  # XCOM_FORBIDDEN, TOKEN_INVALID
    INVALID = 5  # XCOM_TOO_LARGE, XCOM_INVALID_JSON, XCOM_SCHEMA_MISMATCH, INVALID_REQUEST
    UNAVAILABLE = 6  # service or store unreachable, or the deadline passed: try again later


_BY_STATUS = {
    StatusCode.NOT_FOUND: ExitCode.NOT_FOUND,
    StatusCode.PERMISSION_DENIED: ExitCode.DENIED,
    StatusCode.UNAUTHENTICATED: ExitCode.DENIED,
    StatusCode.INVALID_ARGUMENT: ExitCode.INVALID,
    StatusCode.UNAVAILABLE: ExitCode.UNAVAILABLE,
    StatusCode.DEADLINE_EXCEEDED: ExitCode.UNAVAILABLE,
}


def for_error(error: XComError) -> ExitCode:
    """By the error's gRPC code (an XComRpcError, with no XCom reason, carries the call's)."""
    return _BY_STATUS.get(error.code, ExitCode.ERROR)


HELP = """\
exit codes:
  0  success
  1  any other failure (bad settings, unreadable file, missing extra, ...)
  2  bad command line
  3  not found (XCOM_NOT_FOUND: never pushed, expired or cleared)
  4  forbidden or unauthenticated (XCOM_FORBIDDEN, TOKEN_INVALID)
  5  invalid value or request (XCOM_TOO_LARGE, XCOM_INVALID_JSON, XCOM_SCHEMA_MISMATCH,
     INVALID_REQUEST)
  6  unavailable (service or Redis unreachable, deadline exceeded): try again later
"""
