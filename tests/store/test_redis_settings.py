"""LEOFLOW_REDIS_MODE / _NODES / _SENTINEL_MASTER: every bad combination fails at start with a
message naming the variables and what to do."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from leoflow_xcom.settings import RedisSettings


def test_standalone_is_the_default_and_needs_no_nodes() -> None:
    settings = RedisSettings()
    assert settings.mode == "standalone"
    assert settings.node_addresses() == []
    assert settings.sentinel_master == "leoflow"
    assert settings.min_replica_acks == 0


def test_nodes_parse_with_ipv6_and_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEOFLOW_REDIS_MODE", "cluster")
    monkeypatch.setenv("LEOFLOW_REDIS_NODES", "redis-1:7000, [::1]:7001,")
    assert RedisSettings().node_addresses() == [("redis-1", 7000), ("::1", 7001)]


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"LEOFLOW_REDIS_NODES": "a:1"}, "set LEOFLOW_REDIS_MODE=cluster"),
        ({"LEOFLOW_REDIS_MODE": "cluster"}, "needs LEOFLOW_REDIS_NODES"),
        ({"LEOFLOW_REDIS_MODE": "sentinel"}, "Sentinel addresses"),
        ({"LEOFLOW_REDIS_MODE": "cluster", "LEOFLOW_REDIS_NODES": "a"}, "is not host:port"),
        ({"LEOFLOW_REDIS_MODE": "cluster", "LEOFLOW_REDIS_NODES": "a:0"}, "is not host:port"),
        ({"LEOFLOW_REDIS_MODE": "sentinel", "LEOFLOW_REDIS_NODES": ":26379"}, "host:port"),
        (
            {
                "LEOFLOW_REDIS_MODE": "cluster",
                "LEOFLOW_REDIS_NODES": "a:1",
                "LEOFLOW_REDIS_URL": "redis://x:6379/3",
            },
            "only database 0",
        ),
        ({"LEOFLOW_REDIS_MODE": "replicated"}, "standalone"),
        ({"LEOFLOW_REDIS_MIN_REPLICA_ACKS": "-1"}, "min_replica_acks"),
    ],
)
def test_bad_combinations_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], says: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=says.replace("(", r"\(")):
        RedisSettings()


def test_tls_follows_the_url_scheme_in_every_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEOFLOW_REDIS_MODE", "sentinel")
    monkeypatch.setenv("LEOFLOW_REDIS_NODES", "s1:26379")
    assert not RedisSettings().tls
    monkeypatch.setenv("LEOFLOW_REDIS_URL", "rediss://ignored:6379/0")
    assert RedisSettings().tls
