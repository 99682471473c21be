"""The grpc.aio servicer context as the handlers see it, and its request metadata."""

from __future__ import annotations

from typing import Any

import grpc.aio

Context = grpc.aio.ServicerContext[Any, Any]


def metadata_value(context: Context, name: str) -> str | None:
    """The first text value of request metadata `name` (lower-case), if any."""
    for key, value in context.invocation_metadata() or ():
        if key == name and isinstance(value, str):
            return value
    return None


def bearer_token(context: Context) -> str | None:
    value = metadata_value(context, "authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None
