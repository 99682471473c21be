"""init's admin steps report a Redis that went away as AdminError naming the step, through the
store's one translation, never as a raw redis-py exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store import admin
from leoflow_xcom.store.connection import connect
from leoflow_xcom.testing.redis_binary import find_binary
from leoflow_xcom.testing.redis_server import RedisProcess
from tests.servers import PRIMARY_KIND


def test_a_stopped_redis_is_an_admin_error_naming_the_step(tmp_path: Path) -> None:
    binary = find_binary(PRIMARY_KIND)
    assert binary is not None, f"no {PRIMARY_KIND} binary (make test installs it)"
    server = RedisProcess(binary, tmp_path).start()
    client = connect(RedisSettings(url=server.url))
    try:
        assert client.ping()
        server.stop()  # Redis goes away between init's steps
        with pytest.raises(admin.AdminError, match=r"loading the ACL file: .*cannot connect"):
            admin.load_acl_file(client)
        with pytest.raises(admin.AdminError, match=r"checking the ACL users: .*cannot connect"):
            admin.check_users(client, ["xcom-admin"])
    finally:
        client.close()
        server.stop()
