"""The UI proxy as the product runs it: `leoflow-xcom ui` (gunicorn + uvicorn workers) in a
subprocess on 127.0.0.1 and a free port, against the suite's real Redis (the deployment of
LEOFLOW_TEST_REDIS_MODE: tests/deployment.py) as the read-only ACL user. Proxy-only fixtures
live here, beside the tests that use them."""

from __future__ import annotations

import base64
import dataclasses
import os
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from leoflow_xcom.store import acl
from leoflow_xcom.testing.ports import free_port
from leoflow_xcom.testing.redis_server import RedisProcess
from tests.deployment import Deployment, standalone
from tests.proxy.airflow import spec

BIN = Path(sys.executable).parent
# One pair per test session: re-running ACL SETUSER (as several tests do) must not change the
# password under the running proxy.
PROXY_REDIS_PASSWORD = secrets.token_urlsafe(16)
SERVICE_REDIS_PASSWORD = secrets.token_urlsafe(16)


@dataclasses.dataclass(frozen=True)
class Proxy:
    url: str
    user: str
    password: str
    token: str
    proc: subprocess.Popen[bytes]
    jwt_key: str  # signs the access tokens of POST /auth/token

    @property
    def basic(self) -> dict[str, str]:
        raw = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.basic, timeout=10)


def write_secret(directory: Path, name: str, value: str) -> Path:
    path = directory / name
    path.write_text(value)
    path.chmod(0o600)
    return path


def create_acl_users(server: RedisProcess | Deployment) -> None:
    """Only the service and proxy users: the suite's shared Redis keeps its default user. ACLs
    are per node: on a cluster or Sentinel group, every data node gets them."""
    nodes = server.nodes if isinstance(server, Deployment) else [server]
    users = acl.acl_users(
        service=SERVICE_REDIS_PASSWORD,
        proxy=PROXY_REDIS_PASSWORD,
        admin=secrets.token_urlsafe(16),
        healthcheck=secrets.token_urlsafe(16),
        replication=secrets.token_urlsafe(16),
        sentinel=secrets.token_urlsafe(16),
    )
    for node in nodes:
        with node.client() as admin:
            for name in (acl.SERVICE_USER, acl.PROXY_USER):
                admin.execute_command("ACL", "SETUSER", name, *users[name])


def start_proxy(
    server: RedisProcess | Deployment,
    directory: Path,
    *,
    verify: ssl.SSLContext | bool = True,
    **env_overrides: str,
) -> Proxy:
    """`verify`: what trusts the proxy's certificate when env_overrides turn HTTPS on."""
    deployment = server if isinstance(server, Deployment) else standalone(server)
    create_acl_users(deployment)
    user, password, token = "admin", secrets.token_urlsafe(24), secrets.token_urlsafe(32)
    jwt_key = secrets.token_urlsafe(48)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LEOFLOW_")},
        **deployment.env(),
        "LEOFLOW_UI_LISTEN": f"127.0.0.1:{port}",
        "LEOFLOW_UI_WORKERS": "2",
        "LEOFLOW_UI_USER": user,
        "LEOFLOW_UI_PASSWORD_FILE": str(write_secret(directory, "ui-password", password)),
        "LEOFLOW_UI_TOKEN_FILE": str(write_secret(directory, "ui-token", token)),
        "LEOFLOW_UI_JWT_KEY_FILE": str(write_secret(directory, "ui-jwt-key", jwt_key)),
        "LEOFLOW_UI_REDIS_USERNAME": acl.PROXY_USER,
        "LEOFLOW_UI_REDIS_PASSWORD_FILE": str(
            write_secret(directory, "redis-ui-password", PROXY_REDIS_PASSWORD)
        ),
        **env_overrides,
    }
    with open(directory / "proxy.log", "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [str(BIN / "leoflow-xcom"), "ui"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    scheme = "https" if "LEOFLOW_UI_TLS_CERT_FILE" in env_overrides else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"proxy exited: {(directory / 'proxy.log').read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1, verify=verify).status_code in (200, 503):
                return Proxy(url, user, password, token, proc, jwt_key)
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"proxy did not answer: {(directory / 'proxy.log').read_text()}")


def stop_proxy(proxy: Proxy) -> None:
    proxy.proc.terminate()
    try:
        proxy.proc.wait(15)
    except subprocess.TimeoutExpired:
        proxy.proc.kill()
        proxy.proc.wait(5)


@pytest.fixture(scope="session")
def proxy(
    redis_deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    started = start_proxy(redis_deployment, tmp_path_factory.mktemp("proxy"))
    yield started
    stop_proxy(started)


@pytest.fixture
def http(proxy: Proxy, r: redis.Redis) -> Iterator[httpx.Client]:
    """An authenticated client; depends on `r` so every test starts from an empty Redis. Every
    Airflow-path body it receives is checked against Airflow's own OpenAPI documents."""
    with proxy.client() as client:
        client.event_hooks["response"].append(spec.check_response)
        yield client
