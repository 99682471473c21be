"""`leoflow-xcom init` end to end on a real Redis started with the ACL file the job writes."""

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
from leoflow_xcom.settings import RedisSettings
from leoflow_xcom.store import acl
from leoflow_xcom.store.connection import connect
from leoflow_xcom.store.writer import XComWriter
from leoflow_xcom.testing.paths import ROOT
from leoflow_xcom.testing.redis_server import RedisProcess
from tests.servers import PRIMARY_KIND, start_redis

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
def acl_redis(dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisProcess]:
    """Redis started as Compose and `make run` start it: after prepare, with its ACL file."""
    assert main(["init", "--stage", "prepare"]) == 0
    server = start_redis(PRIMARY_KIND, dirs["acl"].parent / "data-probe")
    server.stop()  # only to learn a binary and port that work; restart with the ACL file
    server.extra = ["--aclfile", str(dirs["acl"] / "users.acl")]
    server.proc = None
    original = server.client

    def admin_client(**kwargs: object) -> redis.Redis:
        password = (dirs["secrets"] / secrets.REDIS_ADMIN_PASSWORD).read_text()
        return original(username=acl.ADMIN_USER, password=password, **kwargs)

    server.client = admin_client  # type: ignore[method-assign]
    server.start()
    monkeypatch.setenv("LEOFLOW_REDIS_URL", server.url)
    yield server
    server.stop()


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
    dirs: dict[str, Path], acl_redis: RedisProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    assert "leoflow-xcom init: done (3 DAG policies)" in capsys.readouterr().out
    admin = acl_redis.client()
    assert admin.get(keys.LAYOUT_KEY) == str(keys.LAYOUT_VERSION).encode()
    assert admin.hexists(keys.POLICIES_KEY, "etl_daily")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=acl_redis.port, retry=NO_RETRY).ping()
    service = connect(
        RedisSettings(
            url=acl_redis.url,
            username=acl.SERVICE_USER,
            password_file=dirs["secrets"] / secrets.REDIS_XCOM_PASSWORD,
        )
    )
    XComWriter(service).push("etl_daily", "r1", XComRef("extract", "output", -1), b"{}", 60)

    # Rotating the service password: a running Redis takes the new ACL file at once.
    assert main(["init", "--rotate", secrets.REDIS_XCOM_PASSWORD]) == 0
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(
            host="127.0.0.1",
            port=acl_redis.port,
            username=acl.SERVICE_USER,
            password="x",
            retry=NO_RETRY,
        ).ping()
    new = connect(
        RedisSettings(
            url=acl_redis.url,
            username=acl.SERVICE_USER,
            password_file=dirs["secrets"] / secrets.REDIS_XCOM_PASSWORD,
        )
    )
    assert new.ping()
    # Rotating the admin password: init logs in with the old one to load the new file.
    assert main(["init", "--rotate", secrets.REDIS_ADMIN_PASSWORD]) == 0
    assert acl_redis.client().ping()


def test_unknown_layout_is_refused_clearly(
    dirs: dict[str, Path], acl_redis: RedisProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init"]) == 0
    acl_redis.client().set(keys.LAYOUT_KEY, "99")
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
