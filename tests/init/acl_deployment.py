"""A small deployment of LEOFLOW_TEST_REDIS_MODE whose nodes start as Compose starts them after
`leoflow-xcom init --stage prepare`: init's ACL file (default user off) and its
`replication.conf`, so a replica links only as the replication user and init's apply stage has
real nodes to set up. Standalone: one Redis; cluster: one primary and its replica; Sentinel: a
primary, a replica and one Sentinel logging in as init's Sentinel user.

The launchers' own calls (readiness, cluster creation) log in as the admin user, reading its
password file at each call, so they keep working after `init --rotate`.
"""

from __future__ import annotations

from pathlib import Path

import redis

from leoflow_xcom.init import job, secrets
from leoflow_xcom.store import acl
from leoflow_xcom.testing.cluster import LocalCluster
from leoflow_xcom.testing.redis_server import RedisProcess
from leoflow_xcom.testing.sentinel import LocalSentinelGroup
from tests.deployment import TEST_REDIS_MODE, cluster, sentinel, standalone


class AclDeployment:
    def __init__(self, binary: str, directory: Path, acl_dir: Path, secrets_dir: Path) -> None:
        self._admin_password = secrets_dir / secrets.REDIS_ADMIN_PASSWORD
        node_args = (
            "--aclfile",
            str(acl_dir / job.ACL_FILE_NAME),
            "--include",
            str(acl_dir / job.REPLICATION_CONF_NAME),
        )
        self._group: RedisProcess | LocalCluster | LocalSentinelGroup
        if TEST_REDIS_MODE == "cluster":
            group = LocalCluster(binary, directory, primaries=1, replicas=1, use_cli=False)
            self._login(group.nodes, node_args)
            self._group = group.start()
            self.deployment = cluster(group)
        elif TEST_REDIS_MODE == "sentinel":
            ha = LocalSentinelGroup(binary, directory, replicas=1, sentinels=1)
            self._login(ha.servers, node_args)
            password = (acl_dir / secrets.SENTINEL_PASSWORD).read_text()
            for one in ha.sentinels:
                with (one.directory / "sentinel.conf").open("a") as conf:
                    conf.write(f"sentinel auth-user {ha.master} {acl.SENTINEL_USER}\n")
                    conf.write(f"sentinel auth-pass {ha.master} {password}\n")
            self._group = ha.start()
            self.deployment = sentinel(ha)
        else:
            server = RedisProcess(binary, directory / "standalone")
            self._login([server], node_args)
            self._group = server.start()
            self.deployment = standalone(server)

    def _login(self, nodes: list[RedisProcess], node_args: tuple[str, ...]) -> None:
        for node in nodes:
            node.extra += node_args
            _as_admin(node, self._admin_password)

    @property
    def nodes(self) -> list[RedisProcess]:
        return self.deployment.nodes

    def stop(self) -> None:
        self._group.stop()


def _as_admin(node: RedisProcess, password_file: Path) -> None:
    plain = node.client

    def admin_client(**kwargs: object) -> redis.Redis:
        return plain(username=acl.ADMIN_USER, password=password_file.read_text(), **kwargs)

    node.client = admin_client  # type: ignore[method-assign]
