"""The CLI as users run it: a real process, a real service, exit codes and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from leoflow_xcom.core import keys
from tests.redis_proc import ROOT, RedisProcess

CLI = str(Path(sys.executable).parent / "leoflow-xcom")


def run(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def env(target: str, signing_key_file: Path, redis_server: RedisProcess) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEOFLOW_")}
    return {
        **base,
        "LEOFLOW_XCOM_ADDR": target,
        "LEOFLOW_REDIS_URL": redis_server.url,
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


def test_failures_exit_1_with_the_service_message(env: dict[str, str]) -> None:
    t = {
        **env,
        "LEOFLOW_XCOM_TOKEN": token(
            env, "--dag", "etl_daily", "--run", "m1", "--task", "transform"
        ),
    }
    mismatch = run("push", "stats", '{"kept": "many", "dropped": 0}', env=t)
    assert mismatch.returncode == 1
    assert "XCOM_SCHEMA_MISMATCH" in mismatch.stderr and "$.kept" in mismatch.stderr
    big = run("push", "big", "-", env=t, stdin=json.dumps("x" * 300_000))
    assert big.returncode == 1 and "XCOM_TOO_LARGE" in big.stderr and "blob store" in big.stderr
    forbidden = run("fetch", "notify", "output", env=t)
    assert forbidden.returncode == 1 and "XCOM_FORBIDDEN" in forbidden.stderr
    missing = run("fetch", "extract", "nothing", env=t)
    assert missing.returncode == 1 and "XCOM_NOT_FOUND" in missing.stderr
    no_token = run("fetch", "extract", "output", env=env)
    assert no_token.returncode == 1 and "LEOFLOW_XCOM_TOKEN" in no_token.stderr
    assert "Traceback" not in mismatch.stderr + big.stderr + forbidden.stderr


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
