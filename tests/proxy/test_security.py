"""Read-only twice (405 on writes; a read-only Redis ACL user), and authentication."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import httpx
import pytest
import redis
import redis.exceptions

from leoflow_xcom.core.errors import StoreUnavailableError
from leoflow_xcom.core.model import ListFilter, XComRef
from leoflow_xcom.settings import SettingsError, UiSettings
from leoflow_xcom.store import acl
from leoflow_xcom.store.connection import connect
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.redis_binary import find_binary
from tests.dag_data import NASTY_DAG, publish_test_policies
from tests.deployment import Deployment, Throwaway
from tests.fixture_types import ClientFor, Mint, StartService
from tests.proxy.conftest import (
    BIN,
    PROXY_REDIS_PASSWORD,
    SERVICE_REDIS_PASSWORD,
    Proxy,
    create_acl_users,
    start_proxy,
    stop_proxy,
    write_secret,
)

# Valkey says "no permissions", Redis 7.0 "can't run this command" for a command in a script.
ACL_REFUSAL = "(?i)permission|can't run"
ENTRY = "/dags/test_dag/dagRuns/run_1/taskInstances/a/xcomEntries"
PATHS = [
    f"/api/v1{ENTRY}",
    f"/api/v1{ENTRY}/typed",
    f"/api/v2{ENTRY}",
    f"/api/v2{ENTRY}/k/with/slash",
    "/api/v1/dags",
    "/api/v2/unknown",
    "/health",
    "/openapi.json",
    "/",
]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
def test_every_write_method_on_every_path_is_405_with_allow(proxy: Proxy, method: str) -> None:
    with proxy.client() as client:
        for path in PATHS:
            resp = client.request(method, path, json={"value": 1})
            assert resp.status_code == 405, (method, path)
            assert resp.headers["allow"] == "GET, HEAD"
            if path.startswith("/api/v1"):
                body = resp.json()
                assert (body["status"], body["title"]) == (405, "Method Not Allowed")
                assert body["type"].endswith("#section/Errors/MethodNotAllowed")
            else:
                assert resp.json() == {"detail": "Method Not Allowed"}
    # Without credentials too: a write is refused before anything else looks at it.
    assert httpx.delete(f"{proxy.url}/api/v2{ENTRY}/typed").status_code == 405


def test_read_only_acl_user_cannot_write(
    proxy: Proxy, redis_deployment: Deployment, client_for: ClientFor, tmp_path: Path
) -> None:
    client_for(task_id="a").push("typed", {"rows": 3})
    create_acl_users(redis_deployment)
    settings = UiSettings(
        redis_username=acl.PROXY_USER,
        redis_password_file=write_secret(tmp_path, "pw", PROXY_REDIS_PASSWORD),
    )
    ui = connect(settings.redis(redis_deployment.settings()))  # as the proxy connects
    reader = XComReader(ui)
    assert reader.list("test_dag", "run_1", ListFilter()).total == 1
    with pytest.raises(redis.exceptions.NoPermissionError):
        ui.set("xcom:anything", "x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        ui.flushall()
    # Scripts run under the caller's ACL: the service's own push script cannot write for it.
    with pytest.raises(StoreUnavailableError, match="ACL user"):
        XComWriter(ui).push("test_dag", "run_1", XComRef("a", "typed"), b'"evil"', 60)
    with pytest.raises(redis.exceptions.ResponseError, match=ACL_REFUSAL):
        ui.eval("return 1", 0)
    sha = ui.script_load("return redis.call('DEL', KEYS[1])")
    with pytest.raises(redis.exceptions.ResponseError, match=ACL_REFUSAL):
        ui.evalsha(sha, 1, "xcom:{x:y}:i")
    assert reader.fetch("test_dag", "run_1", XComRef("a", "typed")) == b'{"rows":3}'
    acl.refuse_writable(ui)  # the start-up check passes for this user...
    with pytest.raises(SettingsError, match="may write") as info:
        acl.refuse_writable(redis_deployment.client())  # ...and refuses the default user
    assert type(info.value) is SettingsError  # an ACL user's rights, not a settings file
    ui.close()


def test_ui_refuses_to_start_without_the_read_only_user(
    redis_deployment: Deployment, tmp_path: Path
) -> None:
    env = {
        "PATH": str(BIN),
        **redis_deployment.env(),
        "LEOFLOW_UI_USER": "admin",
        "LEOFLOW_UI_PASSWORD_FILE": str(write_secret(tmp_path, "pw", "secret-pw")),
    }
    done = subprocess.run(
        [str(BIN / "leoflow-xcom"), "ui"], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert "LEOFLOW_UI_REDIS_USERNAME" in done.stderr
    assert "secret-pw" not in done.stderr + done.stdout


def test_service_runs_as_its_acl_user(
    redis_deployment: Deployment,
    r: redis.Redis,
    start_service: StartService,
    tmp_path: Path,
    mint: Mint,
) -> None:
    """The `service` rule of store/acl.py is enough for the whole gRPC service."""
    from leoflow_xcom.client import NO_RETRY, XComClient

    create_acl_users(redis_deployment)
    publish_test_policies(r)
    running = start_service(
        redis_deployment.settings(
            username=acl.SERVICE_USER,
            password_file=write_secret(tmp_path, "svc", SERVICE_REDIS_PASSWORD),
        ),
        workers=4,
    )
    target = f"127.0.0.1:{running.port}"
    with XComClient(target, mint(NASTY_DAG, "run", "t:1"), retry=NO_RETRY) as client:
        client.push("k", {"v": 1})
    with XComClient(target, mint(NASTY_DAG, "run", "reader"), retry=NO_RETRY) as client:
        assert client.pull("t:1", "k") == {"v": 1}
    with XComClient(target, mint(control_plane=True), retry=NO_RETRY) as client:
        client.clear(NASTY_DAG, "run")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_authentication(proxy: Proxy, r: redis.Redis) -> None:
    url = f"{proxy.url}/api/v2{ENTRY}"
    refused = [
        None,
        _basic(proxy.user, "wrong"),
        _basic("other", proxy.password),
        _basic(proxy.user, proxy.password + "x"),
        "Basic !!notbase64!!",
        "Basic " + base64.b64encode(proxy.user.encode()).decode(),  # no colon
        f"Bearer {proxy.token}x",
        f"Bearer {proxy.password}",
        f"Token {proxy.token}",
    ]
    for header in refused:
        resp = httpx.get(url, headers={"Authorization": header} if header else {})
        assert resp.status_code == 401, header
        assert resp.headers.get_list("www-authenticate") == [
            'Basic realm="leoflow-xcom", charset="UTF-8"',
            'Bearer realm="leoflow-xcom"',
        ]
        assert resp.json()["detail"].startswith("Authentication required")
    v1 = httpx.get(url.replace("/api/v2", "/api/v1"))
    assert v1.status_code == 401
    assert v1.json()["type"].endswith("#section/Errors/Unauthenticated")
    for header in (_basic(proxy.user, proxy.password), f"Bearer {proxy.token}"):
        assert httpx.get(url, headers={"Authorization": header}).status_code == 200
    # Open: probes and tooling need no credentials.
    health = httpx.get(f"{proxy.url}/health").json()
    assert (health["status"], health["redis"]) == ("healthy", "reachable")
    assert httpx.get(f"{proxy.url}/openapi.json").json()["openapi"].startswith("3.")


def test_redis_down_gives_503_and_unhealthy(tmp_path: Path) -> None:
    binary = find_binary("redis")
    assert binary is not None
    down = Throwaway(binary, tmp_path / "redis")
    proxy = start_proxy(down.deployment, tmp_path)
    try:
        down.stop()
        health = httpx.get(f"{proxy.url}/health", timeout=10)
        assert health.status_code == 503
        assert health.json()["status"] == "unhealthy"
        with proxy.client() as client:
            v1 = client.get(f"/api/v1{ENTRY}")
            v2 = client.get(f"/api/v2{ENTRY}/typed")
        assert v1.status_code == v2.status_code == 503
        assert "unavailable" in v1.json()["detail"] and "unavailable" in v2.json()["detail"]
    finally:
        stop_proxy(proxy)
        down.stop()
