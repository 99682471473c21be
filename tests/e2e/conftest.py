"""The Compose appliance on a real Docker engine (`make compose-test` starts one).

Stacks run with compose/compose.hostnet.yaml on free 127.0.0.1 ports, through testcontainers'
DockerCompose driving the real `docker compose` (Ryuk off: its image cannot be pulled here).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from testcontainers.compose import DockerCompose

from leoflow_xcom import __version__
from leoflow_xcom.core import tokens
from leoflow_xcom.testing.paths import ROOT
from leoflow_xcom.testing.ports import free_port

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

COMPOSE_DIR = ROOT / "compose"
XCOM_IMAGE = os.environ.get("LEOFLOW_E2E_XCOM_IMAGE", f"leoflow/xcom:{__version__}")
REDIS_IMAGE = os.environ.get("LEOFLOW_E2E_REDIS_IMAGE", "leoflow/redis-standin:dev")


def _run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (port + 10000) is free too."""
    found: list[int] = []
    while len(found) < count:
        port = free_port()
        if port + 10000 < 65536 and port not in found:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            found.append(port)
    return found


def engine_overlays() -> list[str]:
    """compose.engine20.yaml where the engine predates healthcheck start_interval (API 1.44,
    Docker 25): Compose refuses that field there."""
    out = _run(["docker", "version", "--format", "{{.Server.APIVersion}}"])
    major, _, minor = out.stdout.strip().partition(".")
    if out.returncode == 0 and (int(major), int(minor)) < (1, 44):
        return ["compose.engine20.yaml"]
    return []


@pytest.fixture(scope="session")
def engine() -> None:
    if shutil.which("docker") is None:
        pytest.fail("no docker CLI: run `make compose-test`, which installs one", pytrace=False)
    if _run(["docker", "info"], timeout=15).returncode != 0:
        pytest.fail(
            "no Docker engine answers: run `make compose-test` (scripts/docker-engine.sh up "
            "starts one)",
            pytrace=False,
        )
    for image in (XCOM_IMAGE, REDIS_IMAGE):
        if _run(["docker", "image", "inspect", image]).returncode != 0:
            pytest.fail(f"image {image} missing: `make compose-test` builds it", pytrace=False)


class Stack:
    """One Compose project on free loopback ports, with its own env file and volumes."""

    def __init__(
        self,
        workdir: Path,
        dags_dir: Path | None = None,
        *,
        overlays: tuple[str, ...] = (),
        env_files: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        """`env_files`: compose/ env files layered after compose/.env, as a user passes them
        (`--env-file compose/.env --env-file compose/sentinel.env`); `env` wins over both."""
        self.project = f"lxe2e-{uuid.uuid4().hex[:8]}"
        self.redis_port, self.xcom_port, self.ui_port = free_port(), free_port(), free_port()
        self.xcom_port_2 = free_port()  # the second replica, `xcom-2` (compose.hostnet.yaml)
        self.env_file = workdir / f"{self.project}.env"
        extra = {
            **(env or {}),
            "COMPOSE_PROJECT_NAME": self.project,
            "LEOFLOW_XCOM_IMAGE": XCOM_IMAGE,
            "LEOFLOW_REDIS_IMAGE_TEST": REDIS_IMAGE,
            "LEOFLOW_REDIS_PORT": str(self.redis_port),
            "LEOFLOW_XCOM_PORT": str(self.xcom_port),
            "LEOFLOW_XCOM_PORT_2": str(self.xcom_port_2),
            "LEOFLOW_UI_PORT": str(self.ui_port),
        }
        if dags_dir is not None:
            extra["LEOFLOW_DAGS_DIR"] = str(dags_dir)
        pins = [
            line
            for name in (".env", *env_files)
            for line in (COMPOSE_DIR / name).read_text().splitlines()
            if line.split("=", 1)[0] not in extra
        ]
        self.env_file.write_text("\n".join(pins + [f"{k}={v}" for k, v in extra.items()]) + "\n")
        self.files = ["compose.yaml", "compose.hostnet.yaml", *overlays, *engine_overlays()]
        self.compose = DockerCompose(
            context=str(COMPOSE_DIR),
            compose_file_name=self.files,
            env_file=str(self.env_file),
            wait=True,
        )

    @property
    def base_command(self) -> list[str]:
        return list(self.compose.compose_command_property)

    def up(self) -> float:
        started = time.monotonic()
        self.compose.start()
        return time.monotonic() - started

    def compose_run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.base_command, *args],
            cwd=COMPOSE_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def exec(self, service: str, *command: str, env: dict[str, str] | None = None) -> str:
        flags = [item for k, v in (env or {}).items() for item in ("-e", f"{k}={v}")]
        done = self.compose_run("exec", "-T", *flags, service, *command)
        if done.returncode != 0:
            # stderr only: stdout may hold a token or value
            raise AssertionError(f"{service} {command[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def read_secret(self, name: str) -> str:
        return self.exec("xcom", "cat", f"/var/lib/leoflow/secrets/{name}").strip()

    def token(self, run: str, task: str, dag: str = "etl_daily") -> str:
        """A task token for `dag`/`run`/`task`, signed with the stack's generated key."""
        return tokens.mint(
            self.read_secret("signing-key").encode(),
            now=int(time.time()),
            expires_in=600,
            dag_id=dag,
            run_id=run,
            task_id=task,
            map_index=-1,
            control_plane=False,
        )

    def container_state(self, service: str) -> dict[str, object]:
        found = self.compose_run("ps", "-a", "-q", service)
        ids = found.stdout.split()
        assert ids, f"no container for {service}"
        out = _run(["docker", "inspect", "-f", "{{json .State}}", ids[0]])
        import json

        state: dict[str, object] = json.loads(out.stdout)
        return state

    def down(self, volumes: bool) -> None:
        done = self.compose_run("down", *(["-v"] if volumes else []), timeout=120)
        assert done.returncode == 0, done.stderr

    def leftovers(self) -> tuple[list[str], list[str]]:
        label = f"label=com.docker.compose.project={self.project}"
        containers = _run(["docker", "ps", "-a", "-q", "--filter", label]).stdout.split()
        volumes = _run(["docker", "volume", "ls", "-q", "--filter", label]).stdout.split()
        return containers, volumes


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # Readable by the containers' non-root users (pytest's tmp dirs are 0700).
    path = Path(tempfile.mkdtemp(prefix="leoflow-e2e-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
