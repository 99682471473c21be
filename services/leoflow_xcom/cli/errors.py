"""Errors a command reports as one line on stderr with exit code 1."""

from __future__ import annotations


class CommandError(Exception):
    """A failure the user can act on: bad arguments, unreadable files, missing settings."""
