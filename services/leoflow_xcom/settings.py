"""Process settings from the environment (pydantic-settings), one class per process kind.

Read once in the CLI entry point and passed down; the core never reads the environment.
Secrets are read from `*_FILE` paths into SecretStr and never logged. A bad value fails at
start and names the variable.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsFileError(ValueError):
    pass


def read_pem_file(path: Path, variable: str) -> bytes:
    """A certificate or key for TLS; the error names the file, never its content."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SettingsFileError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    if b"-----BEGIN " not in data:
        raise SettingsFileError(f"{variable}: {path} is not a PEM file")
    return data


def tls_pair(
    cert_file: Path | None, key_file: Path | None, prefix: str
) -> tuple[bytes, bytes] | None:
    """(certificate chain, private key) when both files are set, None when neither is."""
    if cert_file is None and key_file is None:
        return None
    if cert_file is None or key_file is None:
        raise SettingsFileError(
            f"{prefix}TLS_CERT_FILE and {prefix}TLS_KEY_FILE must be set together "
            "(both for TLS, neither for plaintext)"
        )
    return (
        read_pem_file(cert_file, f"{prefix}TLS_CERT_FILE"),
        read_pem_file(key_file, f"{prefix}TLS_KEY_FILE"),
    )


def read_secret_file(path: Path, variable: str) -> SecretStr:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsFileError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    if not text:
        raise SettingsFileError(f"{variable}: {path} is empty")
    return SecretStr(text)


class RedisSettings(BaseSettings):
    """How to reach Redis. LEOFLOW_REDIS_URL carries no password: it comes from a file."""

    model_config = SettingsConfigDict(env_prefix="LEOFLOW_REDIS_", extra="ignore")

    url: str = "redis://127.0.0.1:6379/0"
    username: str | None = None
    password_file: Path | None = None
    # Bounded everywhere: a dead or stalled Redis gives an error, never a hang.
    socket_timeout: float = Field(default=0.5, gt=0, le=30)
    connect_timeout: float = Field(default=0.5, gt=0, le=30)
    max_connections: int = Field(default=64, ge=1, le=10_000)

    def password(self) -> SecretStr | None:
        if self.password_file is None:
            return None
        return read_secret_file(self.password_file, "LEOFLOW_REDIS_PASSWORD_FILE")


class ServeSettings(BaseSettings):
    """The gRPC XCom service (`leoflow-xcom serve`)."""

    model_config = SettingsConfigDict(env_prefix="LEOFLOW_XCOM_", extra="ignore")

    listen: str = "127.0.0.1:50051"
    signing_key_file: Path
    # Handler threads. Each open session stream holds one for its lifetime, so this bounds
    # open sessions plus in-flight unary calls.
    workers: int = Field(default=128, ge=2, le=4096)
    # Open session streams per replica; default: three quarters of the workers, so unary calls
    # (and health checks) always find a thread. Beyond it the SDK falls back to unary calls.
    max_sessions: int | None = Field(default=None, ge=1, le=4096)
    drain_seconds: float = Field(default=10.0, ge=0, le=300)
    policy_refresh_seconds: float = Field(default=0.5, gt=0, le=60)
    # Redis may still be starting or replaying its AOF: wait this long for it at startup.
    startup_timeout_seconds: float = Field(default=30.0, ge=0, le=600)
    # Prometheus /metrics as host:port (port 0 picks one); empty disables it.
    metrics_listen: str = "127.0.0.1:9464"
    # Redis used_memory / maxmemory at which metrics and logs warn (pushes fail at 1.0).
    memory_warn_ratio: float = Field(default=0.8, gt=0, le=1)
    # Both set: gRPC over TLS on `listen` (e.g. server.crt / server.key from `init`).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    def signing_key(self) -> bytes:
        return (
            read_secret_file(self.signing_key_file, "LEOFLOW_XCOM_SIGNING_KEY_FILE")
            .get_secret_value()
            .encode("utf-8")
        )

    def tls(self) -> tuple[bytes, bytes] | None:
        return tls_pair(self.tls_cert_file, self.tls_key_file, "LEOFLOW_XCOM_")

    @model_validator(mode="after")
    def _sessions_leave_threads(self) -> ServeSettings:
        if self.max_sessions is not None and self.max_sessions >= self.workers:
            raise ValueError(
                "LEOFLOW_XCOM_MAX_SESSIONS must be below LEOFLOW_XCOM_WORKERS: each session "
                "holds a thread, and unary calls need some"
            )
        return self

    @property
    def session_limit(self) -> int:
        return self.max_sessions if self.max_sessions is not None else self.workers * 3 // 4


class TokenSettings(BaseSettings):
    """`leoflow-xcom token`: where the signing key is."""

    model_config = SettingsConfigDict(env_prefix="LEOFLOW_XCOM_", extra="ignore")

    signing_key_file: Path

    def signing_key(self) -> bytes:
        return (
            read_secret_file(self.signing_key_file, "LEOFLOW_XCOM_SIGNING_KEY_FILE")
            .get_secret_value()
            .encode("utf-8")
        )


class UiSettings(BaseSettings):
    """The read-only HTTP proxy for the UI (`leoflow-xcom ui`).

    Redis is reached at LEOFLOW_REDIS_URL like the service, but as its own read-only ACL user:
    LEOFLOW_UI_REDIS_USERNAME / LEOFLOW_UI_REDIS_PASSWORD_FILE (see store/acl.py).
    """

    model_config = SettingsConfigDict(env_prefix="LEOFLOW_UI_", extra="ignore")

    listen: str = "127.0.0.1:8080"
    workers: int = Field(default=2, ge=1, le=64)
    # gunicorn: a worker silent this long is restarted; shutdown waits this long for requests.
    timeout: int = Field(default=30, ge=1, le=600)
    graceful_timeout: int = Field(default=10, ge=0, le=300)
    keepalive: int = Field(default=5, ge=0, le=300)
    # Basic auth: user plus password file; Bearer: token file. At least one must be set.
    user: str | None = None
    password_file: Path | None = None
    token_file: Path | None = None
    redis_username: str | None = None
    redis_password_file: Path | None = None
    memory_warn_ratio: float = Field(default=0.8, gt=0, le=1)
    # Both set: HTTPS on `listen` (gunicorn --certfile/--keyfile).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    def tls(self) -> tuple[bytes, bytes] | None:
        return tls_pair(self.tls_cert_file, self.tls_key_file, "LEOFLOW_UI_")

    def password(self) -> SecretStr | None:
        if self.password_file is None:
            return None
        return read_secret_file(self.password_file, "LEOFLOW_UI_PASSWORD_FILE")

    def token(self) -> SecretStr | None:
        if self.token_file is None:
            return None
        return read_secret_file(self.token_file, "LEOFLOW_UI_TOKEN_FILE")

    def redis(self, base: RedisSettings) -> RedisSettings:
        """`base` (where Redis is) with the proxy's own read-only identity."""
        if not self.redis_username or self.redis_password_file is None:
            raise SettingsFileError(
                "LEOFLOW_UI_REDIS_USERNAME and LEOFLOW_UI_REDIS_PASSWORD_FILE must name the "
                "read-only Redis ACL user of the proxy (user `xcom-ui`, written by the init step)"
            )
        read_secret_file(self.redis_password_file, "LEOFLOW_UI_REDIS_PASSWORD_FILE")
        return base.model_copy(
            update={"username": self.redis_username, "password_file": self.redis_password_file}
        )


class InitSettings(BaseSettings):
    """`leoflow-xcom init`: where secrets, the Redis ACL file and the DAG policies live."""

    model_config = SettingsConfigDict(env_prefix="LEOFLOW_INIT_", extra="ignore")

    secrets_dir: Path = Path("/var/lib/leoflow/secrets")
    acl_dir: Path = Path("/var/lib/leoflow/acl")
    dags: Path = Path("/etc/leoflow/dags")
    # Bounded: a Redis that never comes up fails the job instead of hanging the stack start.
    redis_wait_seconds: float = Field(default=60.0, gt=0, le=600)
    # Generate a private CA and a server certificate (off: the services speak plaintext).
    tls: bool = False
    # Subject alternative names of the server certificate; IP addresses become IP SANs.
    tls_hosts: str = "localhost,127.0.0.1,xcom,xcom-ui"
