"""What the sync and asyncio client classes share: constructor, from_env and docstrings.

Each public method's docstring is written once, on the sync client; the asyncio client's
methods take it with `same_doc` (tests/client/test_api_parity.py checks both APIs match).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self, TypeVar

import grpc

from leoflow_xcom.client._config import DEFAULT_RETRY, DEFAULT_TIMEOUT, RetryPolicy
from leoflow_xcom.client._core import ClientCore, Transport
from leoflow_xcom.client._env import read_env

_F = TypeVar("_F", bound=Callable[..., Any])


class ClientBase:
    """The constructor and from_env, written once for both clients; each shell opens its own
    channel, stub and session transport in `_open`."""

    def __init__(
        self,
        target: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        credentials: grpc.ChannelCredentials | None = None,
        tls_server_name: str | None = None,
        transport: Transport = "session",
    ) -> None:
        """A client bound to one task token.

        `target`: host:port, a comma-separated list host:port,host:port (several replicas), or
        a gRPC URI such as dns:///name:port; with several addresses, sessions are spread over
        them round_robin and move to the others when one dies. `timeout`: each call's deadline
        in seconds unless the call gives its own. `retry`: how UNAVAILABLE is retried within
        that deadline. `credentials` (see tls_credentials) and `tls_server_name`: TLS, and the
        name to verify when the target is not in the certificate. `transport`: "session" (one
        long-lived stream for push and pull) or "unary"."""
        self._core = ClientCore(token, timeout, retry, transport)
        self._open(target, credentials, tls_server_name)

    def _open(
        self, target: str, credentials: grpc.ChannelCredentials | None, tls_server_name: str | None
    ) -> None:
        raise NotImplementedError

    @classmethod
    def from_env(
        cls, *, retry: RetryPolicy = DEFAULT_RETRY, transport: Transport = "session"
    ) -> Self:
        """A client configured the way the CLI is: address from LEOFLOW_XCOM_ADDR (default
        127.0.0.1:50051; any target the constructor takes, such as dns:///name:port or
        host:port,host:port), token from LEOFLOW_XCOM_TOKEN (required), deadline from
        LEOFLOW_XCOM_TIMEOUT (seconds, default 5), TLS when LEOFLOW_XCOM_TLS_CA_FILE is set
        (LEOFLOW_XCOM_TLS_SERVER_NAME: the name to verify). A missing or bad variable raises
        ClientConfigError naming it."""
        env = read_env()
        return cls(
            env.addr,
            env.require_token(),
            timeout=env.timeout,
            retry=retry,
            credentials=env.credentials(),
            tls_server_name=env.tls_server_name,
            transport=transport,
        )


def same_doc(original: Callable[..., Any]) -> Callable[[_F], _F]:
    """Give a method the docstring of its twin on the other client."""

    def apply(method: _F) -> _F:
        method.__doc__ = original.__doc__
        return method

    return apply
