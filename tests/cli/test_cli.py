"""The CLI as users run it: a real process, a real service, exit codes and stderr."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from leoflow_xcom.cli.main import main
from leoflow_xcom.core import keys
from leoflow_xcom.testing.paths import ROOT
from leoflow_xcom.testing.ports import free_port
from tests.deployment import Deployment

CLI = str(Path(sys.executable).parent / "leoflow-xcom")


def run(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def env(target: str, signing_key_file: Path, redis_deployment: Deployment) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEOFLOW_")}
    return {
        **base,
        "LEOFLOW_XCOM_ADDR": target,
        **redis_deployment.env(),
        "LEOFLOW_XCOM_SIGNING_KEY_FILE": str(signing_key_file),
    }


def token(env: dict[str, str], *args: str) -> str:
    out = run("token", *args, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_walkthrough_token_push_fetch_ls(env: dict[str, str], tmp_path: Path) -> None:
    extract = {
        **env,
        "LEOFLOW_XCOM_TOKEN": token(env, "--dag", "etl_daily", "--run", "m1", "--task", "extract"),
    }
    pushed = run("push", "output", '{"rows": 42, "uri": "s3://b/k"}', env=extract)
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed 'output'" in pushed.stdout
    transform = {
        **env,
        "LEOFLOW_XCOM_TOKEN": token(
            env, "--dag", "etl_daily", "--run", "m1", "--task", "transform"
        ),
    }
    fetched = run("fetch", "extract", "output", env=transform)
    assert fetched.returncode == 0 and json.loads(fetched.stdout) == {"rows": 42, "uri": "s3://b/k"}
    (tmp_path / "v.json").write_text('{"kept": 1, "dropped": 2}')
    assert run("push", "stats", f"@{tmp_path / 'v.json'}", env=transform).returncode == 0
    assert run("push", "note", "-", env=transform, stdin='"from stdin"').returncode == 0
    listed = run("ls", "--json", env=transform)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {(r["task_id"], r["key"]) for r in rows} == {
        ("extract", "output"),
        ("transform", "stats"),
        ("transform", "note"),
    }


def test_each_error_class_has_its_exit_code_and_the_service_message(
    env: dict[str, str],
) -> None:
    t = {
        **env,
        "LEOFLOW_XCOM_TOKEN": token(
            env, "--dag", "etl_daily", "--run", "m1", "--task", "transform"
        ),
    }
    mismatch = run("push", "stats", '{"kept": "many", "dropped": 0}', env=t)
    assert mismatch.returncode == 5
    assert "XCOM_SCHEMA_MISMATCH" in mismatch.stderr and "$.kept" in mismatch.stderr
    big = run("push", "big", "-", env=t, stdin=json.dumps("x" * 300_000))
    assert big.returncode == 5 and "XCOM_TOO_LARGE" in big.stderr and "blob store" in big.stderr
    not_json = run("push", "bad", "{oops", env=t)
    assert not_json.returncode == 5 and "XCOM_INVALID_JSON" in not_json.stderr
    forbidden = run("fetch", "notify", "output", env=t)
    assert forbidden.returncode == 4 and "XCOM_FORBIDDEN" in forbidden.stderr
    bad_token = run("fetch", "extract", "output", env={**t, "LEOFLOW_XCOM_TOKEN": "not.a.jwt"})
    assert bad_token.returncode == 4 and "TOKEN_INVALID" in bad_token.stderr
    missing = run("fetch", "extract", "nothing", env=t)
    assert missing.returncode == 3 and "XCOM_NOT_FOUND" in missing.stderr
    # Nothing listens on a freshly freed port: the service is unavailable.
    down = {**t, "LEOFLOW_XCOM_ADDR": f"127.0.0.1:{free_port()}", "LEOFLOW_XCOM_TIMEOUT": "1"}
    unavailable = run("fetch", "extract", "output", env=down)
    assert unavailable.returncode == 6, unavailable.stderr
    assert run("health", env=down).returncode == 6
    no_token = run("fetch", "extract", "output", env=env)
    assert no_token.returncode == 1 and "LEOFLOW_XCOM_TOKEN" in no_token.stderr
    assert run("fetch", env=t).returncode == 2  # argparse: bad command line
    outputs = [mismatch, big, not_json, forbidden, bad_token, missing, unavailable, no_token]
    assert all("Traceback" not in o.stderr for o in outputs)


def test_help_documents_the_exit_codes() -> None:
    out = subprocess.run([CLI, "--help"], capture_output=True, text=True, check=True)
    for line in ("3  not found", "4  forbidden or unauthenticated", "5  invalid", "6  unavailable"):
        assert line in out.stdout


def test_log_level_comes_from_leoflow_log_level(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    validate = ["dags", "validate", str(ROOT / "config" / "dags")]
    root = logging.getLogger()
    saved = root.handlers[:], root.level  # main() configures the root logger of this process
    try:
        monkeypatch.setenv("LEOFLOW_LOG_LEVEL", "debug")
        assert main(validate) == 0
        assert root.level == logging.DEBUG
        assert main(["--log-level", "ERROR", *validate]) == 0  # the flag wins
        assert root.level == logging.ERROR
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    bad = run(*validate, env={**env, "LEOFLOW_LOG_LEVEL": "LOUD"})
    assert bad.returncode == 1 and "LEOFLOW_LOG_LEVEL='LOUD'" in bad.stderr
    flag = run("--log-level", "chatty", *validate, env=env)
    assert flag.returncode == 1 and "--log-level='chatty'" in flag.stderr


def test_token_needs_ids_or_control_plane(env: dict[str, str]) -> None:
    out = run("token", "--dag", "d", env=env)
    assert out.returncode == 1 and "--run, --task" in out.stderr
    assert run("token", "--control-plane", "--expires-in", "15m", env=env).returncode == 0
    no_key = {k: v for k, v in env.items() if k != "LEOFLOW_XCOM_SIGNING_KEY_FILE"}
    missing = run("token", "--control-plane", env=no_key)
    assert missing.returncode == 1 and "SIGNING_KEY_FILE" in missing.stderr


def test_dags_apply_rejects_a_bad_file_and_changes_nothing(
    env: dict[str, str], r: redis.Redis, tmp_path: Path
) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "a.json").write_text(json.dumps({"dag_id": "a", "tasks": [{"task_id": "t"}]}))
    applied = run("dags", "apply", str(good), env=env)
    assert applied.returncode == 0, applied.stderr
    before = r.hgetall(keys.POLICIES_KEY), r.get(keys.POLICIES_REV_KEY)
    (good / "b.json").write_text(
        json.dumps({"dag_id": "b", "tasks": [{"task_id": "t", "depends_on": ["nope"]}]})
    )
    rejected = run("dags", "apply", str(good), env=env)
    assert rejected.returncode == 1
    assert f"{good / 'b.json'}: $.tasks[0].depends_on[0]: 'nope' is not a task" in rejected.stderr
    assert (r.hgetall(keys.POLICIES_KEY), r.get(keys.POLICIES_REV_KEY)) == before
    assert run("dags", "validate", str(ROOT / "config" / "dags"), env=env).returncode == 0
    listed = run("dags", "ls", env=env)
    assert listed.returncode == 0 and listed.stdout.startswith("a\t")


def test_dags_apply_refuses_schemas_that_could_hurt_the_service(
    env: dict[str, str], r: redis.Redis, tmp_path: Path
) -> None:
    before = r.hgetall(keys.POLICIES_KEY), r.get(keys.POLICIES_REV_KEY)
    deep = '{"items": ' * 122 + "{}" + "}" * 122
    backref = {"type": "string", "pattern": "^(a)\\1$"}
    cases = {
        "deep.json": '{"dag_id": "d", "tasks": [{"task_id": "t", "xcom_schema": {"out": '
        + deep
        + "}}]}",
        "backref.json": json.dumps(
            {"dag_id": "b", "tasks": [{"task_id": "t", "xcom_schema": {"out": backref}}]}
        ),
    }
    expected = {
        "deep.json": "$.tasks[0].xcom_schema: schema for key 'out' is not a valid JSON Schema "
        "at $.items.items.items",
        "backref.json": "$.tasks[0].xcom_schema: schema for key 'out' is not a valid JSON Schema "
        "at $.pattern: pattern ^(a)\\1$ is not supported by the linear-time regex engine",
    }
    for name, text in cases.items():
        folder = tmp_path / name.removesuffix(".json")
        folder.mkdir()
        (folder / name).write_text(text)
        out = run("dags", "apply", str(folder), env=env)
        print(f"\n{out.stderr.strip()}")
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        assert f"{folder / name}: {expected[name]}" in out.stderr
    assert (r.hgetall(keys.POLICIES_KEY), r.get(keys.POLICIES_REV_KEY)) == before


def test_clear_through_the_cli(env: dict[str, str]) -> None:
    t = {
        **env,
        "LEOFLOW_XCOM_TOKEN": token(env, "--dag", "etl_daily", "--run", "m2", "--task", "load"),
    }
    assert run("push", "k", "1", env=t).returncode == 0
    cp = {**env, "LEOFLOW_XCOM_TOKEN": token(env, "--control-plane")}
    cleared = run("clear", "--dag", "etl_daily", "--run", "m2", "--task", "load", env=cp)
    assert cleared.returncode == 0 and "cleared 1" in cleared.stdout
