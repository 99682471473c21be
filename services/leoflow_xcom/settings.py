"""Process settings from the environment (pydantic-settings), one class per process kind.

Read once in the CLI entry point and passed down; the core never reads the environment.
Secrets are read from `*_FILE` paths into SecretStr and never logged. A bad value fails at
start and names the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from leoflow_xcom.core import limits
from leoflow_xcom.core.quotas import Quota


class SettingsError(ValueError):
    """A setting is missing, inconsistent or unusable; the message names the variable and
    what to do. The CLI prints it as one line."""


class SettingsFileError(SettingsError):
    """A file a setting names cannot be used: unreadable, empty, not PEM, too short a key."""


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
        raise SettingsError(
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


def token_lifetime(value: object, variable: str) -> int:
    """Seconds from `7d`, `12h`, `3600`...; bounded so a typo cannot mint near-eternal tokens."""
    from leoflow_xcom.core.policies import parse_duration  # lazily: it loads jsonschema

    if not isinstance(value, int | str) or isinstance(value, bool):
        raise ValueError(f"{variable}: a duration such as 7d, 12h or 3600 is required")
    seconds = parse_duration(value)
    if not 60 <= seconds <= limits.MAX_TOKEN_LIFETIME_CEILING_SECONDS:
        raise ValueError(
            f"{variable}: {seconds} s is outside 60..{limits.MAX_TOKEN_LIFETIME_CEILING_SECONDS} s"
        )
    return seconds


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
    # standalone: one Redis at `url`. cluster: Redis Cluster, `nodes` are seed nodes (any
    # reachable one is enough; the client learns the rest). sentinel: `nodes` are the Sentinel
    # addresses, which name the primary of `sentinel_master`. See docs/operations.md.
    mode: Literal["standalone", "cluster", "sentinel"] = "standalone"
    nodes: str = ""
    sentinel_master: str = Field(default="leoflow", min_length=1)
    # A push is acknowledged only once this many replicas confirmed it (WAIT on the same
    # connection right after the write); 0 = as soon as the primary has it.
    min_replica_acks: int = Field(default=0, ge=0, le=16)

    def password(self) -> SecretStr | None:
        if self.password_file is None:
            return None
        return read_secret_file(self.password_file, "LEOFLOW_REDIS_PASSWORD_FILE")

    @property
    def tls(self) -> bool:
        """TLS to every Redis node (and Sentinel): the URL's `rediss://` scheme, as in
        standalone mode."""
        return urlsplit(self.url).scheme == "rediss"

    @property
    def wait_timeout_ms(self) -> int:
        """WAIT's own timeout: below the socket timeout, so Redis answers before the client
        gives up on the connection."""
        return max(1, int(self.socket_timeout * 1000 * 0.8))

    def node_addresses(self) -> list[tuple[str, int]]:
        """LEOFLOW_REDIS_NODES as (host, port) pairs; `[::1]:6379` for IPv6."""
        found = []
        for item in (part.strip() for part in self.nodes.split(",")):
            if not item:
                continue
            host, sep, port = item.rpartition(":")
            host = host.removeprefix("[").removesuffix("]")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    f"LEOFLOW_REDIS_NODES: {item!r} is not host:port (e.g. "
                    "redis-1:6379,redis-2:6379; [::1]:6379 for IPv6)"
                )
            found.append((host, int(port)))
        return found

    @model_validator(mode="after")
    def _mode_fits(self) -> RedisSettings:
        nodes = self.node_addresses()
        if self.mode == "standalone":
            if nodes:
                raise ValueError(
                    "LEOFLOW_REDIS_NODES is set but LEOFLOW_REDIS_MODE is standalone (the "
                    "default), which uses LEOFLOW_REDIS_URL only: set LEOFLOW_REDIS_MODE=cluster "
                    "or sentinel, or unset LEOFLOW_REDIS_NODES"
                )
            return self
        if not nodes:
            what = "seed nodes of the cluster" if self.mode == "cluster" else "Sentinel addresses"
            raise ValueError(
                f"LEOFLOW_REDIS_MODE={self.mode} needs LEOFLOW_REDIS_NODES: the {what} as "
                "host:port[,host:port...]"
            )
        path = urlsplit(self.url).path.strip("/")
        if self.mode == "cluster" and path not in ("", "0"):
            raise ValueError(
                f"LEOFLOW_REDIS_URL selects database {path}, but Redis Cluster has only "
                "database 0: drop the database from the URL (its scheme still chooses TLS)"
            )
        return self


class SigningKeySettings(BaseSettings):
    """The token signing key and the longest token lifetime: what `serve` and `token` share."""

    model_config = SettingsConfigDict(env_prefix="LEOFLOW_XCOM_", extra="ignore")

    signing_key_file: Path
    # Tokens whose lifetime (exp - iat) is longer are refused by the service; `token
    # --expires-in` refuses them first.
    max_token_lifetime: int = limits.DEFAULT_MAX_TOKEN_LIFETIME_SECONDS

    @field_validator("max_token_lifetime", mode="before")
    @classmethod
    def _lifetime(cls, value: object) -> int:
        return token_lifetime(value, "LEOFLOW_XCOM_MAX_TOKEN_LIFETIME")

    def signing_key(self) -> bytes:
        return (
            read_secret_file(self.signing_key_file, "LEOFLOW_XCOM_SIGNING_KEY_FILE")
            .get_secret_value()
            .encode("utf-8")
        )


class ServeSettings(SigningKeySettings):
    """The gRPC XCom service (`leoflow-xcom serve`)."""

    model_config = SettingsConfigDict(env_prefix="LEOFLOW_XCOM_", extra="ignore")

    listen: str = "127.0.0.1:50051"
    # Worker processes sharing `listen` (SO_REUSEPORT), each with its own event loop and Redis
    # connections; unset: the CPUs this process may use (server/cpus.py). 1: one process, no
    # parent.
    processes: int | None = Field(default=None, ge=1, le=1024)
    # Calls each process serves at once, in units of 8 (gRPC's `maximum_concurrent_rpcs` is
    # 8x this; beyond it a call is refused at once with RESOURCE_EXHAUSTED). The stream pools
    # below are sized from it, and together must stay below it.
    workers: int = Field(default=128, ge=2, le=4096)
    # Open session streams per replica, split evenly over its processes; default: three
    # quarters of each process's threads, so unary calls (and health checks) always find one.
    # Beyond it the SDK falls back to unary calls.
    max_sessions: int | None = Field(default=None, ge=1, le=4096)
    # Streams without a valid token yet (sessions before their first valid item, server
    # reflection) share this small pool, per replica, split like max_sessions; default: an
    # eighth of each process's threads.
    max_unauthenticated_streams: int | None = Field(default=None, ge=1, le=4096)
    # A session must show a valid token this soon after opening; a reflection stream is closed
    # after this long without a request.
    stream_auth_seconds: float = Field(default=5.0, gt=0, le=300)
    # A session with a valid token is closed after this long without an item (the SDK reopens
    # one on its next call).
    session_idle_seconds: float = Field(default=300.0, gt=0, le=86_400)
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
    # XCom quotas for DAGs whose policy does not set them (0 = no limit); see core/quotas.py.
    quota_run_bytes: int = Field(default=limits.DEFAULT_QUOTA_RUN_BYTES, ge=0)
    quota_run_count: int = Field(default=limits.DEFAULT_QUOTA_RUN_COUNT, ge=0)
    quota_task_instance_bytes: int = Field(default=limits.DEFAULT_QUOTA_TASK_INSTANCE_BYTES, ge=0)
    quota_task_instance_count: int = Field(default=limits.DEFAULT_QUOTA_TASK_INSTANCE_COUNT, ge=0)

    def quota_defaults(self) -> Quota:
        return Quota(
            self.quota_run_bytes,
            self.quota_run_count,
            self.quota_task_instance_bytes,
            self.quota_task_instance_count,
        )

    def tls(self) -> tuple[bytes, bytes] | None:
        return tls_pair(self.tls_cert_file, self.tls_key_file, "LEOFLOW_XCOM_")

    @model_validator(mode="after")
    def _sessions_leave_threads(self) -> ServeSettings:
        # Checked for one process when LEOFLOW_XCOM_PROCESSES is unset, so whether a setting
        # is accepted never depends on the machine's CPU count.
        share = self.for_processes(self.processes or 1)
        if share.session_limit + share.unauthenticated_stream_limit >= self.workers:
            raise ValueError(
                f"LEOFLOW_XCOM_MAX_SESSIONS ({share.session_limit}) plus "
                f"LEOFLOW_XCOM_MAX_UNAUTHENTICATED_STREAMS ({share.unauthenticated_stream_limit})"
                f", per process of {self.processes or 1}, must be below LEOFLOW_XCOM_WORKERS "
                f"({self.workers}): unary calls and health checks must always find room beside "
                "the open streams"
            )
        return self

    def for_processes(self, processes: int) -> ServeSettings:
        """What each of `processes` worker processes runs with: an even share (rounded up) of
        the replica's explicit stream limits; the defaults already count per process."""

        def share(limit: int | None) -> int | None:
            return None if limit is None else -(-limit // processes)

        if processes == 1:
            return self
        return self.model_copy(
            update={
                "processes": 1,
                "max_sessions": share(self.max_sessions),
                "max_unauthenticated_streams": share(self.max_unauthenticated_streams),
            }
        )

    @property
    def session_limit(self) -> int:
        if self.max_sessions is not None:
            return self.max_sessions
        # Three quarters of the workers, leaving room beside the untrusted pool.
        return max(
            0, min(self.workers * 3 // 4, self.workers - self.unauthenticated_stream_limit - 1)
        )

    @property
    def unauthenticated_stream_limit(self) -> int:
        if self.max_unauthenticated_streams is not None:
            return self.max_unauthenticated_streams
        return max(1, self.workers // 8)


class TokenSettings(SigningKeySettings):
    """`leoflow-xcom token`: where the signing key is, and the longest lifetime to mint."""


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
    # Airflow 3's login, `POST /auth/token` (with Basic's user and password): the HS256 key of
    # the access tokens it issues, and their lifetime in seconds (Airflow's default: a day).
    jwt_key_file: Path | None = None
    jwt_expiration: int = Field(default=86_400, ge=60, le=7 * 86_400)

    def tls(self) -> tuple[bytes, bytes] | None:
        return tls_pair(self.tls_cert_file, self.tls_key_file, "LEOFLOW_UI_")

    def jwt_key(self) -> bytes | None:
        if self.jwt_key_file is None:
            return None
        key = read_secret_file(self.jwt_key_file, "LEOFLOW_UI_JWT_KEY_FILE").get_secret_value()
        if len(key.encode("utf-8")) < 32:
            raise SettingsFileError(
                f"LEOFLOW_UI_JWT_KEY_FILE: {self.jwt_key_file} holds fewer than 32 bytes; an "
                "HS256 key needs at least 256 bits (`leoflow-xcom init` generates one)"
            )
        return key.encode("utf-8")

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
            raise SettingsError(
                "LEOFLOW_UI_REDIS_USERNAME and LEOFLOW_UI_REDIS_PASSWORD_FILE must name the "
                "read-only Redis ACL user of the proxy (user `xcom-ui`, written by the init step)"
            )
        read_secret_file(self.redis_password_file, "LEOFLOW_UI_REDIS_PASSWORD_FILE")
        return base.model_copy(
            update={"username": self.redis_username, "password_file": self.redis_password_file}
        )


class InitSettings(BaseSettings):
    """`leoflow-xcom init`: where secrets, the Redis ACL file and the DAG policies live."""

    @property
    def acl_modes(self) -> tuple[int, int]:
        """(directory, file) modes of the ACL directory and what it holds."""
        return (0o700, 0o600) if self.acl_private else (0o755, 0o644)

    model_config = SettingsConfigDict(env_prefix="LEOFLOW_INIT_", extra="ignore")

    secrets_dir: Path = Path("/var/lib/leoflow/secrets")
    acl_dir: Path = Path("/var/lib/leoflow/acl")
    dags: Path = Path("/etc/leoflow/dags")
    # Bounded: a Redis that never comes up fails the job instead of hanging the stack start.
    redis_wait_seconds: float = Field(default=60.0, gt=0, le=600)
    # On: the ACL directory is 0700 and its files 0600, for a Redis running as the init job's
    # own user (`make run`). Off (Compose): 0755/0644, because Redis reads them as another uid.
    acl_private: bool = False
    # Generate a private CA and a server certificate (off: the services speak plaintext).
    tls: bool = False
    # Subject alternative names of the server certificate; IP addresses become IP SANs.
    tls_hosts: str = "localhost,127.0.0.1,xcom,xcom-ui"
