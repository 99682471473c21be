"""A signing key file (generated, 0600, never printed) and task tokens minted with it."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from leoflow_xcom.core import limits, tokens


def write_signing_key(path: Path) -> bytes:
    """Generate a signing key into `path` (created 0600) and return it."""
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    path.chmod(0o600)  # also when the file existed with looser permissions
    return key.encode()


def mint_token(
    key: bytes,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int = limits.UNMAPPED,
    *,
    expires_in: int = 3600,
    control_plane: bool = False,
    **extra: str,
) -> str:
    """A task token valid from now for `expires_in` seconds (extra: logical_date, run_after)."""
    return tokens.mint(
        key,
        now=int(time.time()),
        expires_in=expires_in,
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        map_index=map_index,
        control_plane=control_plane,
        **extra,
    )
