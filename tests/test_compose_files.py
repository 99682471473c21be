"""Static checks of the Compose files with the real `docker compose config` (no engine needed).

`make test` installs the Compose CLI plugin first (scripts/docker-engine.sh compose-plugin).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

from leoflow_xcom.testing.paths import ROOT

COMPOSE_DIR = ROOT / "compose"
PORTS = {
    "LEOFLOW_REDIS_PORT": "16379",
    "LEOFLOW_XCOM_PORT": "16051",
    "LEOFLOW_XCOM_PORT_2": "16052",
    "LEOFLOW_UI_PORT": "16080",
}


def compose_config(
    *files: str,
    env: dict[str, str] | None = None,
    env_files: tuple[str, ...] = (),
    profiles: tuple[str, ...] = ("loadtest",),
) -> dict[str, Any]:
    if shutil.which("docker") is None:
        pytest.fail(
            "no docker CLI: `make test` needs it for `docker compose config` (Debian: apt-get "
            "install docker.io; no engine needed)",
            pytrace=False,
        )
    args = ["docker", "compose", *(a for f in files for a in ("-f", f))]
    if env_files:  # as a user passes them: the pinned tags first, then the profile's file
        args += [a for f in (".env", *env_files) for a in ("--env-file", f)]
    plain = {k: v for k, v in os.environ.items() if not k.startswith(("LEOFLOW_", "COMPOSE_"))}
    done = subprocess.run(
        [*args, *(a for p in profiles for a in ("--profile", p)), "config", "--format", "json"],
        cwd=COMPOSE_DIR,
        env={**plain, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "is not a docker command" in done.stderr or "unknown command" in done.stderr:
        pytest.fail(
            "the Docker Compose v2 plugin is missing: run `bash scripts/docker-engine.sh "
            "compose-plugin` (`make test` does)",
            pytrace=False,
        )
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = json.loads(done.stdout)
    return config


def test_compose_yaml_for_users() -> None:
    config = compose_config("compose.yaml")
    services = config["services"]
    assert set(services) == {"redis", "xcom-init", "xcom-init-redis", "xcom", "xcom-ui", "locust"}
    assert config["networks"]["xcom"]["driver"] == "bridge"
    assert all("network_mode" not in s for s in services.values())
    assert services["locust"]["profiles"] == ["loadtest"]
    assert services["redis"]["image"].startswith("redis:")
    for name in ("redis", "xcom-init", "xcom", "xcom-ui"):
        assert "resources" in services[name]["deploy"], name
    assert services["xcom-init"]["restart"] == "no"
    for name in ("xcom", "xcom-ui"):
        assert services[name]["restart"] == "unless-stopped"
        depends = services[name]["depends_on"]
        assert depends["xcom-init-redis"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
        assert services[name]["healthcheck"]["test"]
    assert services["redis"]["depends_on"]["xcom-init"]["condition"] == (
        "service_completed_successfully"
    )
    # No secret in the file: services only get paths of secret files.
    for service in services.values():
        for name in service.get("environment") or {}:
            assert "PASSWORD" not in name or name.endswith("_FILE"), name
            assert "TOKEN" not in name or name.endswith("_FILE"), name


def test_redis_image_has_the_2025_lua_fixes() -> None:
    # 7.4.6 fixed CVE-2025-49844 and its siblings in the Lua engine the push script runs in.
    for image in (
        compose_config("compose.yaml")["services"]["redis"]["image"],
        *(
            line.split("=", 1)[1]
            for line in (COMPOSE_DIR / ".env").read_text().splitlines()
            if line.startswith("LEOFLOW_REDIS_IMAGE=")
        ),
    ):
        name, _, tag = image.partition(":")
        version = tuple(int(part) for part in tag.split("@")[0].split("-")[0].split("."))
        assert name == "redis" and version >= (7, 4, 6), image


def test_every_image_is_overridable() -> None:
    env = {
        "LEOFLOW_XCOM_IMAGE": "registry.example/xcom:9",
        "LEOFLOW_REDIS_IMAGE": "registry.example/redis:9",
        "LEOFLOW_LOCUST_IMAGE": "registry.example/locust:9",
    }
    services = compose_config("compose.yaml", env=env)["services"]
    assert {s["image"] for s in services.values()} == set(env.values())


def _only_host_network(config: dict[str, Any]) -> dict[str, Any]:
    """Every service on the host network, with no networks and no published ports; the
    services."""
    assert not config.get("networks")
    services: dict[str, Any] = config["services"]
    for name, service in services.items():
        assert service["network_mode"] == "host", name
        assert not service.get("networks") and not service.get("ports"), name
    return services


def test_hostnet_override_uses_only_the_host_network() -> None:
    config = compose_config("compose.yaml", "compose.hostnet.yaml", env=PORTS)
    _only_host_network(config)
    redis = config["services"]["redis"]
    assert redis["command"][-4:] == ["--bind", "127.0.0.1", "--port", "16379"]
    xcom = config["services"]["xcom"]["environment"]
    assert xcom["LEOFLOW_XCOM_LISTEN"] == "127.0.0.1:16051"
    assert xcom["LEOFLOW_XCOM_METRICS_LISTEN"] == "127.0.0.1:0"  # loopback, a free port


def test_hostnet_override_runs_two_replicas_on_distinct_ports() -> None:
    for files in (("compose.hostnet.yaml",), ("compose.hostnet.yaml", "compose.engine20.yaml")):
        services = compose_config("compose.yaml", *files, env=PORTS)["services"]
        first, second = services["xcom"], services["xcom-2"]
        assert second["image"] == first["image"] and second["command"] == first["command"]
        assert second["environment"]["LEOFLOW_XCOM_LISTEN"] == "127.0.0.1:16052"
        assert second["environment"]["LEOFLOW_XCOM_ADDR"] == "127.0.0.1:16052"
        assert second["environment"]["LEOFLOW_XCOM_METRICS_LISTEN"] == "127.0.0.1:0"
        assert second["environment"]["LEOFLOW_REDIS_URL"] == "redis://127.0.0.1:16379/0"
        # The same service otherwise: identity, secrets, limits, hardening, start order.
        for name in ("LEOFLOW_REDIS_USERNAME", "LEOFLOW_XCOM_SIGNING_KEY_FILE"):
            assert second["environment"][name] == first["environment"][name]
        for field in ("volumes", "deploy", "read_only", "cap_drop", "restart", "depends_on"):
            assert second[field] == first[field], field
        # Any engine takes it: no start_interval (compose.engine20.yaml does not reach it).
        assert "start_interval" not in second["healthcheck"]
    with pytest.raises(AssertionError, match="second replica"):
        compose_config(
            "compose.yaml",
            "compose.hostnet.yaml",
            env={k: v for k, v in PORTS.items() if k != "LEOFLOW_XCOM_PORT_2"},
        )


def test_the_service_scales_on_the_bridge_network() -> None:
    """`docker compose up --scale xcom=N`: no fixed name, a host port range, and clients in
    the network address every replica through Docker's DNS."""
    services = compose_config("compose.yaml")["services"]
    assert all("container_name" not in s for s in services.values())
    (published,) = services["xcom"]["ports"]
    assert published["target"] == 50051 and published["host_ip"] == "127.0.0.1"
    low, _, high = published["published"].partition("-")
    assert int(high) - int(low) + 1 >= 3, published
    assert services["locust"]["environment"]["LEOFLOW_XCOM_ADDR"] == "dns:///xcom:50051"
    # Each replica's worker processes follow its CPU limit (LEOFLOW_XCOM_PROCESSES unset).
    assert "LEOFLOW_XCOM_PROCESSES" not in services["xcom"]["environment"]
    assert float(services["xcom"]["deploy"]["resources"]["limits"]["cpus"]) >= 1


HEALTHCHECKED = ("redis", "xcom", "xcom-ui")


def seconds(duration: str) -> float:
    """Compose's normalised durations: 1m0s, 30s, 1.5s."""
    minutes, _, rest = duration.rpartition("m")
    return float(minutes or 0) * 60 + float(rest.rstrip("s") or 0)


def test_healthchecks_probe_fast_while_starting_and_calmly_after() -> None:
    services = compose_config("compose.yaml")["services"]
    for name in HEALTHCHECKED:
        check = services[name]["healthcheck"]
        assert seconds(check["start_interval"]) <= 1, name
        assert seconds(check["start_period"]) >= 30, name
        assert seconds(check["interval"]) >= 30, name


def test_engine20_overlay_drops_start_interval_and_keeps_start_period() -> None:
    services = compose_config("compose.yaml", "compose.engine20.yaml")["services"]
    for name in HEALTHCHECKED:
        check = services[name]["healthcheck"]
        assert "start_interval" not in check, name
        assert seconds(check["interval"]) <= 2 and check["start_period"], name


def test_hostnet_override_requires_ports() -> None:
    with pytest.raises(AssertionError, match="choose a free port"):
        compose_config("compose.yaml", "compose.hostnet.yaml")


def test_tls_overlay_turns_tls_on_and_default_stays_plaintext() -> None:
    plain = compose_config("compose.yaml")["services"]
    for name in ("xcom", "xcom-ui"):
        assert not any("TLS" in k for k in plain[name]["environment"]), name
    tls = compose_config("compose.yaml", "compose.tls.yaml")["services"]
    assert tls["xcom-init"]["environment"]["LEOFLOW_INIT_TLS"] == "on"
    assert tls["xcom-init-redis"]["environment"].get("LEOFLOW_INIT_TLS") is None
    secrets_dir = "/var/lib/leoflow/secrets"
    assert tls["xcom"]["environment"]["LEOFLOW_XCOM_TLS_CERT_FILE"] == f"{secrets_dir}/server.crt"
    assert tls["xcom"]["environment"]["LEOFLOW_XCOM_TLS_CA_FILE"] == f"{secrets_dir}/ca.crt"
    assert tls["xcom-ui"]["environment"]["LEOFLOW_UI_TLS_KEY_FILE"] == f"{secrets_dir}/server.key"
    assert tls["xcom-ui"]["environment"]["UI_HEALTH_URL"].startswith("https://127.0.0.1:")
    assert "ca.crt" in " ".join(tls["xcom-ui"]["healthcheck"]["test"])


def test_locust_service_runs_the_image_paced_scenario_without_flags() -> None:
    locust = compose_config("compose.yaml")["services"]["locust"]
    command = locust["command"]
    assert command[:3] == ["locust", "-f", "/app/loadtest/locustfile.py"]
    assert "--host" not in command  # the target comes from LEOFLOW_XCOM_ADDR
    assert {"SessionHotPathUser", "UnaryHotPathUser"} <= set(command)
    assert locust["environment"]["LEOFLOW_XCOM_ADDR"] == "dns:///xcom:50051"
    # The scenarios and the DAG policies come from the image, not from the checkout.
    assert [v["target"] for v in locust.get("volumes", [])] == ["/var/lib/leoflow/secrets"]


# Redis Cluster and Sentinel profiles (compose/cluster.env, compose/sentinel.env).
CLUSTER_NODES = [f"redis-node-{i}" for i in range(1, 7)]
HA_NODES = [f"redis-ha-{i}" for i in range(1, 4)]
SENTINELS = [f"redis-sentinel-{i}" for i in range(1, 4)]
CLIENTS = ("xcom-init", "xcom-init-redis", "xcom", "xcom-ui")


def _arg(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_default_profile_stays_standalone() -> None:
    services = compose_config("compose.yaml")["services"]
    assert not set(services) & {*CLUSTER_NODES, *HA_NODES, *SENTINELS, "redis-cluster-create"}
    for name in CLIENTS:
        env = services[name]["environment"]
        assert env["LEOFLOW_REDIS_MODE"] == "standalone", name
        assert env["LEOFLOW_REDIS_NODES"] == "", name
        assert env["LEOFLOW_REDIS_URL"] == "redis://redis:6379/0", name


def test_cluster_profile_three_primaries_three_replicas_and_a_create_job() -> None:
    config = compose_config("compose.yaml", env_files=("cluster.env",), profiles=())
    services = config["services"]
    redis_image = services["redis"]["image"]
    assert set(CLUSTER_NODES) | {"redis-cluster-create"} <= set(services)
    assert not set(services) & {*HA_NODES, *SENTINELS}
    for name in CLUSTER_NODES:
        node = services[name]
        command = node["command"]
        assert node["image"] == redis_image and node["profiles"] == ["cluster"], name
        assert _arg(command, "--cluster-enabled") == "yes", name
        assert _arg(command, "--aclfile") == "/etc/leoflow/acl/users.acl", name
        assert _arg(command, "--include") == "/etc/leoflow/acl/replication.conf", name
        assert _arg(command, "--cluster-announce-hostname") == name, name
        assert "cluster_state:ok" in " ".join(node["healthcheck"]["test"]), name
        assert node["depends_on"]["xcom-init"]["condition"] == "service_completed_successfully"
        assert {v["target"] for v in node["volumes"]} == {
            "/usr/local/etc/redis/redis.conf",
            "/data",
            "/etc/leoflow/acl",
        }
    create = services["redis-cluster-create"]
    assert create["restart"] == "no" and create["image"] == redis_image
    assert set(create["depends_on"]) == set(CLUSTER_NODES)
    script = create["command"][0]
    # Idempotent: an existing cluster is left alone; otherwise one replica per primary.
    assert "cluster_known_nodes:6" in script and "--cluster-replicas 1" in script
    assert create["environment"]["CLUSTER_NODES"].split() == [f"{n}:6379" for n in CLUSTER_NODES]
    for name in CLIENTS:
        env = services[name]["environment"]
        assert env["LEOFLOW_REDIS_MODE"] == "cluster", name
        assert env["LEOFLOW_REDIS_NODES"].split(",") == [f"{n}:6379" for n in CLUSTER_NODES[:3]]
    apply = services["xcom-init-redis"]["depends_on"]
    assert apply["redis-cluster-create"]["condition"] == "service_completed_successfully"
    for name in ("xcom", "xcom-ui"):
        depends = services[name]["depends_on"]
        assert depends["xcom-init-redis"]["condition"] == "service_completed_successfully"
    assert {f"redis-node-{i}-data" for i in range(1, 7)} <= set(config["volumes"])


def test_sentinel_profile_one_primary_two_replicas_three_sentinels() -> None:
    services = compose_config("compose.yaml", env_files=("sentinel.env",), profiles=())["services"]
    assert not set(services) & {*CLUSTER_NODES, "redis-cluster-create"}
    primary, *replicas = (services[n] for n in HA_NODES)
    assert "PRIMARY_HOST" not in primary["environment"]
    for replica in replicas:
        env = replica["environment"]
        assert (env["PRIMARY_HOST"], env["PRIMARY_PORT"]) == ("redis-ha-1", "6379")
    for name in HA_NODES:
        node = services[name]
        command = node["command"]
        # Sentinel saves roles (CONFIG REWRITE) in the node's own file on its volume, written on
        # first start with the first role only; nothing role-related on the command line.
        assert node["entrypoint"][:2] == ["sh", "-c"] and node["user"] == "redis", name
        script = node["entrypoint"][2].replace("$$", "$")
        assert 'umask 077\nconf=/data/redis.conf\nif [ ! -e "$conf" ]' in script, name
        assert "replicaof ${PRIMARY_HOST} ${PRIMARY_PORT}" in script, name
        assert 'exec redis-server "$conf" "$@"' in script, name
        assert "--replicaof" not in command and "replicaof" not in " ".join(command), name
        includes = [command[i + 1] for i, arg in enumerate(command) if arg == "--include"]
        assert includes == ["/usr/local/etc/redis/redis.conf", "/etc/leoflow/acl/replication.conf"]
        assert _arg(command, "--aclfile") == "/etc/leoflow/acl/users.acl", name
        assert node["profiles"] == ["sentinel"]
    for name in SENTINELS:
        sentinel = services[name]
        # `config` keeps Compose's `$$` escapes: the shell sees `${MASTER}`; quorum 2 of 3.
        script = sentinel["command"][0].replace("$$", "$")
        assert "sentinel monitor ${MASTER} ${PRIMARY_HOST} ${PRIMARY_PORT} 2" in script
        assert "auth-user ${MASTER} xcom-sentinel" in script
        assert sentinel["environment"]["MASTER"] == "leoflow"
        assert sentinel["environment"]["SENTINEL_ANNOUNCE"] == name
        assert sentinel["user"] == "redis"
    for name in CLIENTS:
        env = services[name]["environment"]
        assert env["LEOFLOW_REDIS_MODE"] == "sentinel", name
        assert env["LEOFLOW_REDIS_NODES"].split(",") == [f"{n}:26379" for n in SENTINELS]
        assert env["LEOFLOW_REDIS_SENTINEL_MASTER"] == "leoflow", name
    apply = services["xcom-init-redis"]["depends_on"]
    assert all(apply[n]["condition"] == "service_healthy" for n in SENTINELS)
    # Two replicas: WAIT 1 loses no acknowledged push in a failover and keeps pushes available.
    assert services["xcom"]["environment"]["LEOFLOW_REDIS_MIN_REPLICA_ACKS"] == "1"


def test_replica_acks_stay_off_outside_the_sentinel_profile() -> None:
    for env_files in ((), ("cluster.env",)):
        services = compose_config("compose.yaml", env_files=env_files, profiles=())["services"]
        assert services["xcom"]["environment"]["LEOFLOW_REDIS_MIN_REPLICA_ACKS"] == "0"


def test_profile_healthchecks_probe_fast_while_starting_and_engine20_drops_it() -> None:
    names = [*CLUSTER_NODES, *HA_NODES, *SENTINELS]
    profiles = ("cluster", "sentinel")
    services = compose_config("compose.yaml", profiles=profiles)["services"]
    old = compose_config("compose.yaml", "compose.engine20.yaml", profiles=profiles)["services"]
    for name in names:
        assert seconds(services[name]["healthcheck"]["start_interval"]) <= 1, name
        assert seconds(services[name]["healthcheck"]["interval"]) >= 30, name
        assert "start_interval" not in old[name]["healthcheck"], name
        assert seconds(old[name]["healthcheck"]["interval"]) <= 2, name


CLUSTER_PORTS = {f"LEOFLOW_REDIS_NODE_{i}_PORT": str(17000 + i) for i in range(1, 7)}


def test_hostnet_cluster_override_uses_only_the_host_network() -> None:
    config = compose_config(
        "compose.yaml",
        "compose.hostnet.yaml",
        "compose.hostnet.cluster.yaml",
        env={**PORTS, **CLUSTER_PORTS},
        env_files=("cluster.env",),
        profiles=(),
    )
    services = _only_host_network(config)
    for i, name in enumerate(CLUSTER_NODES, start=1):
        command = services[name]["command"]
        assert command[-4:] == ["--bind", "127.0.0.1", "--port", str(17000 + i)], name
        assert services[name]["environment"]["REDIS_PORT"] == str(17000 + i)
    nodes = services["redis-cluster-create"]["environment"]["CLUSTER_NODES"].split()
    assert nodes == [f"127.0.0.1:{17000 + i}" for i in range(1, 7)]
    with pytest.raises(AssertionError, match=r"choose a free port for redis-node-\d"):
        compose_config(
            "compose.yaml",
            "compose.hostnet.yaml",
            "compose.hostnet.cluster.yaml",
            env=PORTS,
            env_files=("cluster.env",),
            profiles=(),
        )


SENTINEL_PORTS = {
    **{f"LEOFLOW_REDIS_HA_{i}_PORT": str(18000 + i) for i in range(1, 4)},
    **{f"LEOFLOW_REDIS_SENTINEL_{i}_PORT": str(18100 + i) for i in range(1, 4)},
}


def test_hostnet_sentinel_override_uses_only_the_host_network() -> None:
    files = ("compose.yaml", "compose.hostnet.yaml", "compose.hostnet.sentinel.yaml")
    config = compose_config(
        *files, env={**PORTS, **SENTINEL_PORTS}, env_files=("sentinel.env",), profiles=()
    )
    services = _only_host_network(config)
    for i, name in enumerate(HA_NODES, start=1):
        command = services[name]["command"]
        assert _arg(command, "--port") == services[name]["environment"]["REDIS_PORT"], name
        assert _arg(command, "--port") == str(18000 + i) and _arg(command, "--bind") == "127.0.0.1"
        assert "--replicaof" not in command, name
        env = services[name]["environment"]
        first_role = (env.get("PRIMARY_HOST"), env.get("PRIMARY_PORT"))
        assert first_role == ((None, None) if i == 1 else ("127.0.0.1", "18001")), name
        assert services[name]["entrypoint"][:2] == ["sh", "-c"], name
    for i, name in enumerate(SENTINELS, start=1):
        env = services[name]["environment"]
        assert env["SENTINEL_PORT"] == str(18100 + i) and env["SENTINEL_BIND"] == "127.0.0.1"
        assert (env["PRIMARY_HOST"], env["PRIMARY_PORT"]) == ("127.0.0.1", "18001"), name
    with pytest.raises(AssertionError, match=r"choose a free port for redis-(ha|sentinel)-\d"):
        compose_config(*files, env=PORTS, env_files=("sentinel.env",), profiles=())
