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


def compose_config(*files: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    if shutil.which("docker") is None:
        pytest.fail(
            "no docker CLI: `make test` needs it for `docker compose config` (Debian: apt-get "
            "install docker.io; no engine needed)",
            pytrace=False,
        )
    args = ["docker", "compose", *(a for f in files for a in ("-f", f))]
    plain = {k: v for k, v in os.environ.items() if not k.startswith(("LEOFLOW_", "COMPOSE_"))}
    done = subprocess.run(
        [*args, "--profile", "loadtest", "config", "--format", "json"],
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


def test_hostnet_override_uses_only_the_host_network() -> None:
    config = compose_config("compose.yaml", "compose.hostnet.yaml", env=PORTS)
    assert not config.get("networks")
    for name, service in config["services"].items():
        assert service["network_mode"] == "host", name
        assert not service.get("networks"), name
        assert not service.get("ports"), name
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
