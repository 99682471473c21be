"""Session fixtures: a real Redis-protocol server, the real gRPC service, tokens and clients.

Nothing here is a fake: storage tests run against redis-server/valkey-server processes that
the suite starts itself, and gRPC tests call a server bound to a real 127.0.0.1 socket.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from leoflow_xcom.client import NO_RETRY, XComClient
from leoflow_xcom.server import app
from leoflow_xcom.settings import RedisSettings, ServeSettings
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.tokens import mint_token, write_signing_key
from tests.dag_data import publish_test_policies
from tests.deployment import Deployment, mark_standalone_only, started_deployment
from tests.fixture_types import ClientFor, Mint, StartService
from tests.redis_modes import (  # noqa: F401 (fixtures)
    _standalone_servers,
    redis_cluster,
    redis_sentinel,
    redis_target,
)
from tests.servers import PRIMARY_KIND, SERVER_KINDS, start_redis


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_standalone_only(items)


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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    server = start_redis(PRIMARY_KIND, tmp_path_factory.mktemp(f"{PRIMARY_KIND}-primary"))
    yield server
    server.stop()


@pytest.fixture(scope="session", params=SERVER_KINDS)
def any_redis_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisProcess]:
    server = start_redis(request.param, tmp_path_factory.mktemp(f"{request.param}-contract"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_deployment(request: pytest.FixtureRequest) -> Deployment:
    """The deployment of LEOFLOW_TEST_REDIS_MODE (tests/deployment.py), started once."""
    return started_deployment(request)


@pytest.fixture
def r(redis_deployment: Deployment) -> Iterator[redis.Redis]:
    """A raw client on the deployment of LEOFLOW_TEST_REDIS_MODE (by default the primary
    server), emptied before each test."""
    client = redis_deployment.client()
    redis_deployment.flushall(client)
    yield client
    client.close()  # not left to the garbage collector: an unclosed socket fails the session


@pytest.fixture(scope="session")
def signing_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "signing-key"
    write_signing_key(path)
    return path


@pytest.fixture(scope="session")
def signing_key(signing_key_file: Path) -> bytes:
    return signing_key_file.read_text().strip().encode()


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
        return mint_token(
            signing_key,
            dag_id,
            run_id,
            task_id,
            map_index,
            expires_in=expires_in,
            control_plane=control_plane,
            **extra,
        )

    return _mint


@pytest.fixture
def start_service(redis_deployment: Deployment, signing_key_file: Path) -> Iterator[StartService]:
    """Starts the real gRPC service in this process; every one started is stopped afterwards.

    start_service(redis_settings=None, **serve): Redis settings default to the deployment of
    LEOFLOW_TEST_REDIS_MODE (the primary server by default); `serve` overrides ServeSettings
    fields (defaults: a free 127.0.0.1 port, the suite's signing key, 16 workers). Policies
    are the caller's to publish.
    """
    started: list[app.RunningService] = []

    def _start_service(
        redis_settings: RedisSettings | None = None, **serve: object
    ) -> app.RunningService:
        fields: dict[str, object] = {
            "listen": "127.0.0.1:0",
            "signing_key_file": signing_key_file,
            "workers": 16,
            **serve,
        }
        running = app.start(
            ServeSettings(**fields),  # type: ignore[arg-type]
            redis_settings or redis_deployment.settings(),
        )
        started.append(running)
        return running

    yield _start_service
    for running in started:
        running.stop(0)  # a no-op for one the test already stopped


@pytest.fixture
def service(r: redis.Redis, start_service: StartService) -> app.RunningService:
    """The real gRPC service on a free 127.0.0.1 port, with the example and test policies."""
    publish_test_policies(r)
    return start_service()


@pytest.fixture
def target(service: app.RunningService) -> str:
    return f"127.0.0.1:{service.port}"


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
