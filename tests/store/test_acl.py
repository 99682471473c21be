"""The ACL users of store/acl.py against real servers: each can do what its code does, no more."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.backoff
import redis.exceptions
import redis.retry

from leoflow_xcom.core.errors import StoreUnavailableError
from leoflow_xcom.core.model import ListFilter, Selector, XComRef
from leoflow_xcom.core.policies import policy_from_document
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store import acl
from leoflow_xcom.store.connection import StoreClient, connect
from leoflow_xcom.store.layout import ensure_layout, read_layout
from leoflow_xcom.store.reader import XComReader
from leoflow_xcom.store.registry import PolicyStore
from leoflow_xcom.store.runs import RunRegistry
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.redis_server import RedisProcess
from tests.dag_data import TEST_DAG
from tests.servers import SERVER_KINDS, start_redis

PASSWORDS = {
    "service": "svc-pw",
    "proxy": "ui-pw",
    "admin": "admin-pw",
    "healthcheck": "hc-pw",
    "replication": "repl-pw",
    "sentinel": "sentinel-pw",
}


@pytest.fixture(scope="module", params=SERVER_KINDS)
def acl_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisProcess]:
    directory = tmp_path_factory.mktemp(f"acl-{request.param}")
    # Starts open (the harness pings as default), then takes the appliance's users from a file.
    aclfile = directory / "users.acl"
    aclfile.write_text("user default on nopass ~* &* +@all\n")
    server = start_redis(request.param, directory / "data")
    server.stop()
    server.extra = ["--aclfile", str(aclfile)]
    server.start()
    aclfile.write_text(acl.acl_file_text(acl.acl_users(**PASSWORDS)))
    server.client().acl_load()
    yield server
    admin = server.client(username=acl.ADMIN_USER, password=PASSWORDS["admin"])
    admin.acl_setuser("default", enabled=True, nopass=True, keys=["*"], commands=["+@all"])
    server.stop()


def _as(server: RedisProcess, tmp_path: Path, user: str, password: str) -> StoreClient:
    secret = tmp_path / f"{user}.pw"
    secret.write_text(password)
    return connect(RedisSettings(url=server.url, username=user, password_file=secret))


def test_acl_file_holds_hashes_not_passwords() -> None:
    text = acl.acl_file_text(acl.acl_users(**PASSWORDS))
    for password in PASSWORDS.values():
        assert password not in text
        assert acl.password_hash(password) in text
    assert text.startswith("user default reset off resetpass")


def test_default_user_cannot_log_in(acl_server: RedisProcess) -> None:
    once = redis.retry.Retry(redis.backoff.NoBackoff(), 0)  # redis-py retries auth errors
    with pytest.raises(redis.exceptions.AuthenticationError):
        acl_server.client(retry=once).ping()
    for password in ("", "nopass", PASSWORDS["admin"]):
        with pytest.raises(redis.exceptions.AuthenticationError):
            acl_server.client(username="default", password=password, retry=once).ping()


def test_service_user_runs_the_whole_service(acl_server: RedisProcess, tmp_path: Path) -> None:
    client = _as(acl_server, tmp_path, acl.SERVICE_USER, PASSWORDS["service"])
    admin = acl_server.client(username=acl.ADMIN_USER, password=PASSWORDS["admin"])
    admin.flushall()
    admin.script_flush()
    admin.acl_log_reset()
    ensure_layout(client)
    store = PolicyStore(client)
    store.publish([policy_from_document(TEST_DAG, "tests")])
    assert "test_dag" in store.load()[1]
    writer, reader = XComWriter(client), XComReader(client)
    for index in range(3):
        writer.push("test_dag", "r1", XComRef("mapped", "out", index), b'{"n": 1}', 60)
    assert reader.fetch("test_dag", "r1", XComRef("mapped", "out", 0)) == b'{"n": 1}'
    batch = reader.fetch_many("test_dag", "r1", [Selector("mapped", "out", all_map_indexes=True)])
    assert len(batch) == 3
    assert reader.list("test_dag", "r1", ListFilter(limit=10)).total == 3
    assert RunRegistry(client).page(None, 0, 10) == [("test_dag", "r1")]
    assert writer.clear("test_dag", "r1", "mapped", 0) == 1
    assert writer.clear("test_dag", "r1") == 2
    assert RunRegistry(client).prune() == 0
    assert RunRegistry(client).page(None, 0, 10) == []
    # LEOFLOW_REDIS_MIN_REPLICA_ACKS: WAIT runs (this lone server has no replica to confirm).
    with pytest.raises(StoreUnavailableError, match="0 of the 1 Redis replicas"):
        XComWriter(client, 1).push("test_dag", "r2", XComRef("a", "k"), b"1", 60)
    assert writer.clear("test_dag", "r2") == 1
    store.remove(["test_dag"])
    # Nothing the service did was refused (redis-py's CLIENT SETINFO is refused and ignored).
    refused = {e["object"] for e in admin.acl_log() if e["username"] == acl.SERVICE_USER}
    assert refused <= {"client|setinfo"}
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.set("not-xcom", "1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.flushall()
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.config_get("*")


def test_proxy_user_reads_and_cannot_write(acl_server: RedisProcess, tmp_path: Path) -> None:
    admin = acl_server.client(username=acl.ADMIN_USER, password=PASSWORDS["admin"])
    admin.flushall()
    admin.script_flush()
    service = _as(acl_server, tmp_path, acl.SERVICE_USER, PASSWORDS["service"])
    ensure_layout(service)
    PolicyStore(service).publish([policy_from_document(TEST_DAG, "tests")])
    XComWriter(service).push("test_dag", "r1", XComRef("a", "typed", -1), b'{"rows": 1}', 60)
    admin.script_flush()  # the proxy must be able to (re)load the listing script itself

    proxy = _as(acl_server, tmp_path, acl.PROXY_USER, PASSWORDS["proxy"])
    reader = XComReader(proxy)
    read_layout(proxy)
    assert reader.fetch("test_dag", "r1", XComRef("a", "typed", -1)) == b'{"rows": 1}'
    assert reader.list("test_dag", "r1", ListFilter(limit=10)).total == 1
    assert RunRegistry(proxy).page("test_dag", 0, 10) == [("test_dag", "r1")]
    assert "test_dag" in PolicyStore(proxy).load()[1]
    with pytest.raises(StoreUnavailableError):
        XComWriter(proxy).push("test_dag", "r1", XComRef("a", "x", -1), b"1", 60)
    with pytest.raises(StoreUnavailableError):
        XComWriter(proxy).clear("test_dag", "r1")
    with pytest.raises(StoreUnavailableError):
        PolicyStore(proxy).publish([])
    for command in (("SET", "xcom:x", "1"), ("DEL", "xcom:layout"), ("FLUSHALL",), ("KEYS", "*")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            proxy.execute_command(*command)  # type: ignore[no-untyped-call]
    # No script can write for it either: EVAL is not allowed, EVAL_RO refuses writes.
    with pytest.raises(redis.exceptions.NoPermissionError):
        proxy.eval("return redis.call('SET', KEYS[1], '1')", 1, "xcom:x")
    with pytest.raises(redis.exceptions.ResponseError):
        sha = proxy.script_load("return redis.call('SET', KEYS[1], '1')")
        proxy.evalsha_ro(sha, 1, "xcom:x")
    assert admin.get("xcom:x") is None


def test_healthcheck_user_can_only_ping(acl_server: RedisProcess) -> None:
    client = acl_server.client(username=acl.HEALTHCHECK_USER, password=PASSWORDS["healthcheck"])
    assert client.ping()
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.get("xcom:layout")


def test_acknowledged_writes_survive_sigkill_with_these_users(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The AOF is replayed as the default user: with the appliance's users a killed Redis must
    come back with every push and policy (MULTI/EXEC and script effects included)."""
    for kind in SERVER_KINDS:
        directory = tmp_path / kind
        directory.mkdir()
        aclfile = directory / "users.acl"
        aclfile.write_text(acl.acl_file_text(acl.acl_users(**PASSWORDS)))
        server = RedisProcess(_binary(kind), directory / "data", "--aclfile", str(aclfile))
        admin = {"username": acl.ADMIN_USER, "password": PASSWORDS["admin"]}
        server.client = _authenticated(server.client, admin)  # type: ignore[method-assign]
        server.start()
        try:
            client = _as(server, tmp_path, acl.SERVICE_USER, PASSWORDS["service"])
            ensure_layout(client)
            PolicyStore(client).publish([policy_from_document(TEST_DAG, "tests")])
            writer = XComWriter(client)
            for index in range(50):
                writer.push("test_dag", "r1", XComRef("mapped", "out", index), b"[1]", 600)
            client.close()
            server.kill()
            server.start()
            after = _as(server, tmp_path, acl.SERVICE_USER, PASSWORDS["service"])
            reader = XComReader(after)
            assert reader.list("test_dag", "r1", ListFilter(limit=100)).total == 50, kind
            assert reader.fetch("test_dag", "r1", XComRef("mapped", "out", 49)) == b"[1]"
            assert "test_dag" in PolicyStore(after).load()[1], kind
            after.close()
        finally:
            server.stop()


def _binary(kind: str) -> str:
    from leoflow_xcom.testing.redis_binary import find_binary

    found = find_binary(kind)
    if found is None:
        pytest.fail(f"no {kind} server binary (`make test` installs it)", pytrace=False)
    return found


def _authenticated(make_client: Callable[..., redis.Redis], auth: dict[str, str]) -> Any:
    def client(**kwargs: object) -> redis.Redis:
        return make_client(**auth, **kwargs)

    return client
