"""The client's settings from the environment: what a task's launcher sets for it.

Plain `os.environ` reads, no settings library: the SDK installs with gRPC and protobuf only.
The CLI's client commands read the same variables through this module, so both agree.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Final

import grpc

from leoflow_xcom.client._config import DEFAULT_TIMEOUT

ADDR_ENV: Final = "LEOFLOW_XCOM_ADDR"
TOKEN_ENV: Final = "LEOFLOW_XCOM_TOKEN"
TIMEOUT_ENV: Final = "LEOFLOW_XCOM_TIMEOUT"
TLS_CA_FILE_ENV: Final = "LEOFLOW_XCOM_TLS_CA_FILE"
TLS_SERVER_NAME_ENV: Final = "LEOFLOW_XCOM_TLS_SERVER_NAME"
DEFAULT_ADDR: Final = "127.0.0.1:50051"
# A deadline beyond this is a typo (ms for s), not a wish.
MAX_TIMEOUT: Final = 300.0


class ClientConfigError(ValueError):
    """A client setting (from the environment, or a target given to a client) is missing or
    wrong; the message names it."""


@dataclasses.dataclass(frozen=True, slots=True)
class ClientEnv:
    addr: str
    token: str | None
    timeout: float
    # Set: TLS trusting only this CA (ca.crt from `leoflow-xcom init`); unset: plaintext.
    tls_ca_file: str | None
    # The name to check the certificate against when `addr` is not one of its SANs.
    tls_server_name: str | None

    def require_token(self) -> str:
        if self.token is None:
            raise ClientConfigError(
                f"no token: set {TOKEN_ENV} (the task token the control plane minted)"
            )
        return self.token

    def credentials(self) -> grpc.ChannelCredentials | None:
        """TLS trusting the CA in LEOFLOW_XCOM_TLS_CA_FILE only, or None (plaintext)."""
        if self.tls_ca_file is None:
            return None
        try:
            with open(self.tls_ca_file, "rb") as handle:
                ca = handle.read()
        except OSError as exc:
            raise ClientConfigError(
                f"{TLS_CA_FILE_ENV}: cannot read {self.tls_ca_file}: {exc.strerror}"
            ) from None
        if b"-----BEGIN " not in ca:
            raise ClientConfigError(f"{TLS_CA_FILE_ENV}: {self.tls_ca_file} is not a PEM file")
        return grpc.ssl_channel_credentials(root_certificates=ca)


def read_env(environ: Mapping[str, str] | None = None) -> ClientEnv:
    """The client settings; empty variables count as unset."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    return ClientEnv(
        addr=get(ADDR_ENV) or DEFAULT_ADDR,
        token=get(TOKEN_ENV),
        timeout=_timeout(get(TIMEOUT_ENV)),
        tls_ca_file=get(TLS_CA_FILE_ENV),
        tls_server_name=get(TLS_SERVER_NAME_ENV),
    )


def _timeout(text: str | None) -> float:
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_TIMEOUT:
        raise ClientConfigError(
            f"{TIMEOUT_ENV}={text!r}: want seconds, more than 0 and at most {MAX_TIMEOUT:g}"
        )
    return value
