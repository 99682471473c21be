"""Generated secrets: one file per secret, 0600 in a 0700 directory, never printed or logged.

Idempotent: an existing secret is kept as it is; only `rotate` replaces one, atomically (a
reader sees the old or the new value, never a half-written file).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import stat
from pathlib import Path
from typing import Final

SIGNING_KEY: Final = "signing-key"
REDIS_ADMIN_PASSWORD: Final = "redis-admin-password"
REDIS_XCOM_PASSWORD: Final = "redis-xcom-password"
REDIS_UI_PASSWORD: Final = "redis-xcom-ui-password"
UI_PASSWORD: Final = "ui-password"
UI_TOKEN: Final = "ui-token"
UI_JWT_KEY: Final = "ui-jwt-key"  # signs the proxy's `POST /auth/token` access tokens
# In the ACL directory, not here: the Redis container (another uid) reads it for its
# healthcheck. It grants PING and nothing else.
HEALTHCHECK_PASSWORD: Final = "redis-healthcheck-password"
# Also in the ACL directory: Redis nodes (`masterauth`) and Sentinels (`auth-pass`) read them.
# They grant a replica's and Sentinel's commands; whoever can read that directory runs a Redis
# node, which holds the data anyway.
REPLICATION_PASSWORD: Final = "redis-replication-password"
SENTINEL_PASSWORD: Final = "redis-sentinel-password"

NAMES: Final = (
    SIGNING_KEY,
    REDIS_ADMIN_PASSWORD,
    REDIS_XCOM_PASSWORD,
    REDIS_UI_PASSWORD,
    UI_PASSWORD,
    UI_TOKEN,
    UI_JWT_KEY,
    HEALTHCHECK_PASSWORD,
    REPLICATION_PASSWORD,
    SENTINEL_PASSWORD,
)
# The secrets that live in the ACL directory (read by Redis and Sentinel), not the secrets one.
ACL_DIR_NAMES: Final = (HEALTHCHECK_PASSWORD, REPLICATION_PASSWORD, SENTINEL_PASSWORD)
_NBYTES: Final = 48  # 384 bits of randomness, 64 URL-safe characters


class SecretError(Exception):
    """A secret file that exists but cannot be used; names the file, never the value."""


@dataclasses.dataclass(frozen=True)
class Secret:
    name: str
    path: Path
    value: str = dataclasses.field(repr=False)
    # The value before `rotate`, so a running Redis can still be reached with the old password.
    previous: str | None = dataclasses.field(default=None, repr=False)
    created: bool = False


def ensure_dir(path: Path, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    if stat.S_IMODE(path.stat().st_mode) != mode:
        path.chmod(mode)


def ensure_secret(directory: Path, name: str, *, rotate: bool = False, mode: int = 0o600) -> Secret:
    path = directory / name
    previous = _read(path) if path.exists() else None
    if previous is not None and not rotate:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            path.chmod(mode)
        return Secret(name, path, previous)
    value = secrets.token_urlsafe(_NBYTES)
    _write_atomically(path, value, mode)
    return Secret(name, path, value, previous=previous, created=previous is None)


def _read(path: Path) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None
    if not value:
        raise SecretError(
            f"secret file {path} is empty; delete it to generate a new one, or run "
            f"`leoflow-xcom init --rotate {path.name}`"
        )
    return value


def _write_atomically(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)  # the umask may have narrowed it
    os.replace(tmp, path)
    write_fsync_dir(path.parent)


def write_fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_file(path: Path, text: str) -> None:
    """Replace a secret file atomically, 0600 from its creation (TLS private keys)."""
    _write_atomically(path, text, 0o600)


def write_public_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace a non-secret file atomically (the ACL file: password hashes only)."""
    _write_atomically(path, text, mode)
