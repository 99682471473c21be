"""`leoflow-xcom init` end to end on a real Redis started with the ACL file the job writes: one
node, or (LEOFLOW_TEST_REDIS_MODE, `make cluster-test`) a cluster or a Sentinel group whose
every node init must set up."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.backoff
import redis.retry

from leoflow_xcom.cli.main import main
from leoflow_xcom.core import keys
from leoflow_xcom.core.model import XComRef
from leoflow_xcom.init import secrets
from leoflow_xcom.store import acl
from leoflow_xcom.store.connection import StoreClient, connect
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.paths import ROOT
from leoflow_xcom.testing.redis_binary import find_binary
from tests.init.acl_deployment import AclDeployment
from tests.servers import PRIMARY_KIND

NO_RETRY = redis.retry.Retry(redis.backoff.NoBackoff(), 0)  # redis-py retries auth errors


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    found = {"secrets": tmp_path / "secrets", "acl": tmp_path / "acl", "dags": tmp_path / "dags"}
    found["dags"].mkdir()
    for policy in (ROOT / "config" / "dags").glob("*.json"):
        (found["dags"] / policy.name).write_bytes(policy.read_bytes())
    monkeypatch.setenv("LEOFLOW_INIT_SECRETS_DIR", str(found["secrets"]))
    monkeypatch.setenv("LEOFLOW_INIT_ACL_DIR", str(found["acl"]))
    monkeypatch.setenv("LEOFLOW_INIT_DAGS", str(found["dags"]))
    monkeypatch.setenv("LEOFLOW_INIT_REDIS_WAIT_SECONDS", "10")
    return found


@pytest.fixture
def acl_redis(dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[AclDeployment]:
    """LEOFLOW_TEST_REDIS_MODE's Redis started as Compose and `make run` start it: after
    prepare, with its ACL file; the LEOFLOW_REDIS_* variables point init at it."""
    assert main(["init", "--stage", "prepare"]) == 0
    binary = find_binary(PRIMARY_KIND)
    assert binary, f"no {PRIMARY_KIND} server binary: `make test` installs it"
    made = AclDeployment(binary, dirs["acl"].parent / "redis", dirs["acl"], dirs["secrets"])
    for name, value in made.deployment.env().items():
        monkeypatch.setenv(name, value)
    yield made
    made.stop()


def _connect_as(made: AclDeployment, user: str, password_file: Path) -> StoreClient:
    """The product's own client for the deployment (a cluster or Sentinel client there)."""
    return connect(made.deployment.settings(username=user, password_file=password_file))


def _refused(made: AclDeployment, user: str | None, password: str | None) -> bool:
    """Every node refuses this login (ACL users are per node)."""
    for node in made.nodes:
        plain = redis.Redis(
            host="127.0.0.1", port=node.port, username=user, password=password, retry=NO_RETRY
        )
        try:
            plain.ping()
        except redis.exceptions.AuthenticationError:
            continue
        finally:
            plain.close()
        return False
    return True


def _values(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in directory.iterdir() if not p.name.startswith(".")}


def test_prepare_generates_private_secrets_once(
    dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--stage", "prepare"]) == 0
    assert stat.S_IMODE(dirs["secrets"].stat().st_mode) == 0o700
    first = _values(dirs["secrets"])
    assert set(first) == set(secrets.NAMES) - set(secrets.ACL_DIR_NAMES)
    for name in first:
        assert stat.S_IMODE((dirs["secrets"] / name).stat().st_mode) == 0o600
    acl_text = (dirs["acl"] / "users.acl").read_text()
    out = capsys.readouterr()
    for value in first.values():
        assert len(value) >= 64
        assert value not in acl_text
        assert value not in out.out + out.err

    assert main(["init", "--stage", "prepare"]) == 0
    assert _values(dirs["secrets"]) == first
    assert (dirs["acl"] / "users.acl").read_text() == acl_text

    assert main(["init", "--stage", "prepare", "--rotate", secrets.UI_TOKEN]) == 0
    rotated = _values(dirs["secrets"])
    assert rotated[secrets.UI_TOKEN] != first[secrets.UI_TOKEN]
    assert {k: v for k, v in rotated.items() if k != secrets.UI_TOKEN} == {
        k: v for k, v in first.items() if k != secrets.UI_TOKEN
    }


def _modes(acl_dir: Path) -> set[tuple[str, int]]:
    found = {(".", stat.S_IMODE(acl_dir.stat().st_mode))}
    return found | {(p.name, stat.S_IMODE(p.stat().st_mode)) for p in acl_dir.iterdir()}


def test_acl_directory_is_private_when_asked(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["init", "--stage", "prepare"]) == 0  # Compose: Redis reads it as another uid
    assert _modes(dirs["acl"]) == {
        (".", 0o755),
        ("users.acl", 0o644),
        ("replication.conf", 0o644),
        *((name, 0o644) for name in secrets.ACL_DIR_NAMES),
    }
    monkeypatch.setenv("LEOFLOW_INIT_ACL_PRIVATE", "on")  # `make run`: one user for everything
    assert main(["init", "--stage", "prepare"]) == 0
    assert _modes(dirs["acl"]) == {
        (".", 0o700),
        ("users.acl", 0o600),
        ("replication.conf", 0o600),
        *((name, 0o600) for name in secrets.ACL_DIR_NAMES),
    }


def test_unknown_rotate_name_is_refused(
    dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--stage", "prepare", "--rotate", "nope"]) == 1
    assert "--rotate nope: no such secret" in capsys.readouterr().err


def test_broken_dag_fails_before_anything_is_written(
    dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = json.loads((dirs["dags"] / "etl_daily.json").read_text())
    bad["tasks"][1]["depends_on"] = ["no_such_task"]
    (dirs["dags"] / "etl_daily.json").write_text(json.dumps(bad))
    assert main(["init"]) == 1
    err = capsys.readouterr().err
    assert "init failed: LEOFLOW_INIT_DAGS: invalid DAG policy:" in err
    assert "etl_daily.json" in err
    assert "no_such_task" in err
    assert not dirs["secrets"].exists()


def test_apply_sets_up_redis_for_the_service(
    dirs: dict[str, Path], acl_redis: AclDeployment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    out = capsys.readouterr()
    assert "leoflow-xcom init: done (3 DAG policies)" in out.out
    # Init found every node from the one it reached (a cluster's replica, a primary's replica).
    assert f"checked on {len(acl_redis.nodes)} Redis nodes" in out.err
    admin_password = dirs["secrets"] / secrets.REDIS_ADMIN_PASSWORD
    admin = _connect_as(acl_redis, acl.ADMIN_USER, admin_password)
    assert admin.get(keys.LAYOUT_KEY) == str(keys.LAYOUT_VERSION).encode()
    assert admin.hexists(keys.POLICIES_KEY, "etl_daily")
    admin.close()
    # Every node (replicas too) has the appliance's users and refuses the default user.
    assert _refused(acl_redis, None, None)
    for node in acl_redis.nodes:
        with node.client() as as_admin:
            assert set(acl.APPLIANCE_USERS) <= {str(u) for u in as_admin.acl_users()}, node.port
    service_password = dirs["secrets"] / secrets.REDIS_XCOM_PASSWORD
    service = _connect_as(acl_redis, acl.SERVICE_USER, service_password)
    XComWriter(service).push("etl_daily", "r1", XComRef("extract", "output", -1), b"{}", 60)
    service.close()

    # Rotating the service password: every running node takes the new ACL file at once.
    old = service_password.read_text()
    assert main(["init", "--rotate", secrets.REDIS_XCOM_PASSWORD]) == 0
    assert _refused(acl_redis, acl.SERVICE_USER, old)
    new = _connect_as(acl_redis, acl.SERVICE_USER, service_password)
    assert new.get(keys.LAYOUT_KEY) == str(keys.LAYOUT_VERSION).encode()
    new.close()
    # Rotating the admin password: init logs in with the old one to load the new file.
    old = admin_password.read_text()
    assert main(["init", "--rotate", secrets.REDIS_ADMIN_PASSWORD]) == 0
    assert _refused(acl_redis, acl.ADMIN_USER, old)
    for node in acl_redis.nodes:
        with node.client() as as_admin:  # reads the new password
            assert as_admin.ping()


def test_unknown_layout_is_refused_clearly(
    dirs: dict[str, Path], acl_redis: AclDeployment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    admin = _connect_as(acl_redis, acl.ADMIN_USER, dirs["secrets"] / secrets.REDIS_ADMIN_PASSWORD)
    admin.set(keys.LAYOUT_KEY, "99")
    admin.close()
    assert main(["init"]) == 1
    err = capsys.readouterr().err
    assert "STORE_LAYOUT_MISMATCH" in err
    assert "layout version 99" in err


def test_apply_gives_up_when_redis_never_answers(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from leoflow_xcom.testing.ports import free_port

    monkeypatch.setenv("LEOFLOW_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("LEOFLOW_INIT_REDIS_WAIT_SECONDS", "1")
    assert main(["init"]) == 1
    assert "did not answer within 1 s" in capsys.readouterr().err
