"""Client configuration: small frozen values with module-level defaults (httpx style)."""

from __future__ import annotations

import dataclasses
import os
from typing import Final

import grpc

from leoflow_xcom.core import limits


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries apply to UNAVAILABLE only (service or store down), with capped backoff, and never
    outlive the call's deadline. Pushes are idempotent (same key, same value), so a retried push
    cannot duplicate anything."""

    max_attempts: int = 5
    initial_backoff: float = 0.05
    max_backoff: float = 1.0
    multiplier: float = 2.0

    def backoff(self, attempt: int) -> float:
        return min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))


NO_RETRY: Final = RetryPolicy(max_attempts=1)
DEFAULT_RETRY: Final = RetryPolicy()
# Every call has a deadline; this one unless the caller gives another.
DEFAULT_TIMEOUT: Final = 5.0

CHANNEL_OPTIONS: Final[list[tuple[str, int]]] = [
    ("grpc.max_send_message_length", limits.MAX_REQUEST_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", limits.MAX_RESPONSE_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # A restarted service is found again within ~0.1-1 s, not grpc's default 1-120 s backoff.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def tls_credentials(ca_file: str | os.PathLike[str]) -> grpc.ChannelCredentials:
    """TLS that trusts only this CA (ca.crt from `leoflow-xcom init`, LEOFLOW_INIT_TLS=on)."""
    with open(ca_file, "rb") as handle:
        return grpc.ssl_channel_credentials(root_certificates=handle.read())
