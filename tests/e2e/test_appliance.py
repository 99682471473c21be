"""The appliance, end to end, in the order an operator meets it. Each step is timed (-ra
--durations shows them). Values are checked, tokens and secrets never printed."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.backoff
import redis.retry

from leoflow_xcom.client import NO_RETRY, XComClient, XComError
from leoflow_xcom.core import keys
from leoflow_xcom.init import secrets as secret_names
from leoflow_xcom.store import acl
from leoflow_xcom.testing.paths import ROOT
from tests.e2e.conftest import COMPOSE_DIR, XCOM_IMAGE, Stack

pytestmark = pytest.mark.e2e

RUN = "manual__e2e"
NEVER_STARTED = "0001-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def stack(engine: None, workdir: Path) -> Iterator[Stack]:
    made = Stack(workdir)
    try:
        yield made
    finally:
        made.down(volumes=True)


def _client(stack: Stack, task: str, port: int | None = None) -> XComClient:
    target = f"127.0.0.1:{port or stack.xcom_port}"
    return XComClient(target, stack.token(RUN, task), timeout=5.0, retry=NO_RETRY)


def _admin(stack: Stack) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1",
        port=stack.redis_port,
        username=acl.ADMIN_USER,
        password=stack.read_secret("redis-admin-password"),
        socket_timeout=5,
    )


# The first `up --wait` of the whole stack (two service replicas) plus a CLI run in a container
# per step: on a busy 2-core machine, more than the suite's default 120 s.
@pytest.mark.timeout(300)
def test_up_and_readme_walkthrough(stack: Stack) -> None:
    took = stack.up()
    print(f"stack up (--wait, all healthy) in {took:.1f} s")
    assert stack.container_state("xcom-init")["ExitCode"] == 0
    assert stack.container_state("xcom-init-redis")["ExitCode"] == 0

    # README: mint a token, push, then fetch as a dependent task, all with the CLI inside the
    # service's containers: pushed through the first replica, read through the second.
    token = stack.exec(
        "xcom", "leoflow-xcom", "token", "--dag", "etl_daily", "--run", RUN, "--task", "extract"
    ).strip()
    pushed = stack.exec(
        "xcom",
        "leoflow-xcom",
        "push",
        "output",
        '{"rows": 42, "uri": "s3://bucket/etl/part-0.parquet"}',
        env={"LEOFLOW_XCOM_TOKEN": token},
    )
    assert "pushed 'output'" in pushed
    token = stack.exec(
        "xcom", "leoflow-xcom", "token", "--dag", "etl_daily", "--run", RUN, "--task", "transform"
    ).strip()
    fetched = stack.exec(
        "xcom-2", "leoflow-xcom", "fetch", "extract", "output", env={"LEOFLOW_XCOM_TOKEN": token}
    )
    assert json.loads(fetched) == {"rows": 42, "uri": "s3://bucket/etl/part-0.parquet"}
    listed = stack.exec("xcom-2", "leoflow-xcom", "ls", env={"LEOFLOW_XCOM_TOKEN": token})
    assert "extract" in listed and "output" in listed
    # The rules say no, clearly: a schema mismatch is refused with its path.
    refused = stack.compose_run(
        "exec", "-T", "-e", f"LEOFLOW_XCOM_TOKEN={token}", "xcom",
        "leoflow-xcom", "push", "stats", '{"kept": "many", "dropped": 0}',
    )  # fmt: skip
    assert refused.returncode == 5  # the CLI's exit code for an invalid value
    assert "XCOM_SCHEMA_MISMATCH" in refused.stderr and "kept" in refused.stderr

    # Secrets: 0600 files in a 0700 directory owned by the service user.
    modes = stack.exec(
        "xcom", "sh", "-c", "stat -c '%a %U %n' /var/lib/leoflow/secrets /var/lib/leoflow/secrets/*"
    ).splitlines()
    assert modes[0].startswith("700 leoflow ")
    # Every generated secret but those Redis reads, which live in the ACL directory.
    files = [n for n in secret_names.NAMES if n not in secret_names.ACL_DIR_NAMES]
    assert all(line.startswith("600 leoflow ") for line in modes[1:])
    assert len(modes) == 1 + len(files)
    # Redis: the default user is off; the service user cannot leave xcom:* keys.
    anonymous = stack.compose_run(
        "exec", "-T", "redis", "redis-cli", "-p", str(stack.redis_port), "ping"
    )
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    service = redis.Redis(
        host="127.0.0.1",
        port=stack.redis_port,
        username=acl.SERVICE_USER,
        password=stack.read_secret("redis-xcom-password"),
    )
    with pytest.raises(redis.exceptions.NoPermissionError):
        service.set("elsewhere", "1")
    service.close()


COUNT_WORKERS = (
    "import pathlib, sys\n"
    "from leoflow_xcom.server.cpus import usable_cpus\n"
    # (the needle in two halves: this script's own command line holds it too)
    "spawned = [p for p in pathlib.Path('/proc').glob('[0-9]*/cmdline')"
    " if b'spawn' + b'_main' in p.read_bytes()]\n"
    "print(len(spawned), usable_cpus())\n"
)


def test_two_replicas_each_on_every_core_of_its_limit(stack: Stack) -> None:
    """Each replica runs one worker process per CPU its `cpus: 2.0` limit gives (its cgroup
    quota, as the service reads it), and serves the same data as the other."""
    host_cpus = len(os.sched_getaffinity(0))
    for service in ("xcom", "xcom-2"):
        workers, usable = map(int, stack.exec(service, "python3", "-c", COUNT_WORKERS).split())
        assert usable == min(2, host_cpus), service
        assert workers == (usable if usable > 1 else 0), service
    first, second = _client(stack, "extract"), _client(stack, "transform", stack.xcom_port_2)
    try:
        first.push("replicas", {"via": "xcom"})
        assert second.pull("extract", "replicas") == {"via": "xcom"}
    finally:
        first.close()
        second.close()


def test_browse_via_ui_proxy(stack: Stack) -> None:
    password = stack.read_secret("ui-password")
    url = (
        f"http://127.0.0.1:{stack.ui_port}/api/v1/dags/etl_daily/dagRuns/{RUN}"
        "/taskInstances/extract/xcomEntries/output"
    )
    request = urllib.request.Request(url)
    basic = base64.b64encode(f"leoflow:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {basic}")
    with urllib.request.urlopen(request, timeout=5) as reply:
        body = json.loads(reply.read())
    assert body["key"] == "output"
    assert "42" in json.dumps(body["value"])
    # The XCom browser: the run's page, from the appliance's image (templates packaged).
    page = urllib.request.Request(f"http://127.0.0.1:{stack.ui_port}/dags/etl_daily/dagRuns/{RUN}")
    page.add_header("Authorization", f"Basic {basic}")
    with urllib.request.urlopen(page, timeout=5) as reply:
        html = reply.read().decode()
        assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
    assert f"<h1>Run <code>{RUN}</code></h1>" in html and ">output</code>" in html


def test_sigkill_redis_loses_no_acknowledged_write(stack: Stack) -> None:
    writer, reader = _client(stack, "load"), _client(stack, "notify")
    acked: dict[str, int] = {}
    acked_at: dict[str, float] = {}
    failed = 0
    stop = threading.Event()

    def push_forever() -> None:
        nonlocal failed
        i = 0
        while not stop.is_set():
            key = f"k{i}"
            try:
                writer.push(key, {"i": i})
            except XComError:
                failed += 1  # not acknowledged: may or may not be stored
                time.sleep(0.05)
            else:
                acked[key], acked_at[key] = i, time.monotonic()
            i += 1

    thread = threading.Thread(target=push_forever)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(acked) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        killed_at, kill_time = len(acked), time.monotonic()
        done = stack.compose_run("kill", "-s", "SIGKILL", "redis")
        assert done.returncode == 0, done.stderr
        started = time.monotonic()
        back = stack.compose_run("up", "-d", "--wait", "redis", timeout=120)
        assert back.returncode == 0, back.stderr
        print(f"redis SIGKILLed after {killed_at} acked pushes, healthy again in "
              f"{time.monotonic() - started:.1f} s")  # fmt: skip
        deadline = time.monotonic() + 30
        while len(acked) < killed_at + 100 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
    assert len(acked) >= killed_at + 100, "the service did not recover after Redis restarted"
    missing = [k for k, i in acked.items() if reader.pull("load", k) != {"i": i}]
    ages = [round(kill_time - acked_at[k], 3) for k in missing]
    print(f"{len(acked)} acknowledged pushes, {failed} refused while Redis was down, "
          f"{len(missing)} lost (acknowledged this many s before the kill: {ages})")  # fmt: skip
    # The appliance runs `appendfsync everysec`: Redis may postpone its AOF write (up to 2 s,
    # checked in whole seconds) while a slow disk still fsyncs, and a SIGKILL then loses what it
    # acknowledged meanwhile (docs/durability.md). Nothing older may ever go.
    assert all(age <= 3.0 for age in ages), ages
    writer.close()
    reader.close()


def test_down_then_up_keeps_data_and_secrets(stack: Stack) -> None:
    key_before = stack.read_secret("signing-key")
    stack.down(volumes=False)
    took = stack.up()
    print(f"down, then up again in {took:.1f} s")
    assert stack.read_secret("signing-key") == key_before
    reader = _client(stack, "transform")
    assert reader.pull("extract", "output") == {"rows": 42, "uri": "s3://bucket/etl/part-0.parquet"}
    reader.close()


def test_rotating_a_secret_as_documented(stack: Stack) -> None:
    before = stack.read_secret("redis-xcom-password")
    key_before = stack.read_secret("signing-key")
    rotate = stack.compose_run(
        "run", "--rm", "--no-deps", "xcom-init",
        "init", "--stage", "all", "--rotate", "redis-xcom-password",
    )  # fmt: skip
    assert rotate.returncode == 0, rotate.stderr
    assert stack.read_secret("redis-xcom-password") != before
    assert stack.read_secret("signing-key") == key_before
    restarted = stack.compose_run("restart", "xcom", "xcom-2")
    assert restarted.returncode == 0, restarted.stderr
    healthy = stack.compose_run("up", "-d", "--wait", "xcom", "xcom-2", timeout=120)
    assert healthy.returncode == 0, healthy.stderr
    old = redis.Redis(
        host="127.0.0.1", port=stack.redis_port, username=acl.SERVICE_USER, password=before,
        retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
    )  # fmt: skip
    with pytest.raises(redis.exceptions.AuthenticationError):
        old.ping()
    reader = _client(stack, "transform")
    assert reader.pull("extract", "output")["rows"] == 42
    reader.close()


def test_upgrade_by_changing_tags_keeps_data(stack: Stack) -> None:
    # A "new release": the same image under a new tag, as a registry would serve it.
    new_image = XCOM_IMAGE.rsplit(":", 1)[0] + ":e2e-upgrade"
    assert stack.compose_run("version").returncode == 0
    import subprocess

    subprocess.run(["docker", "tag", XCOM_IMAGE, new_image], check=True, timeout=30)
    try:
        started = time.monotonic()
        upgrade = subprocess.run(
            [
                str(ROOT / "scripts" / "upgrade.sh"),
                "--env-file", str(stack.env_file),
                "--set", f"LEOFLOW_XCOM_IMAGE={new_image}",
                "--no-pull",
                "--",
                *stack.base_command[2:],
            ],
            cwd=COMPOSE_DIR, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert upgrade.returncode == 0, upgrade.stderr[-2000:]
        print(f"upgrade (tag change, up -d --wait) in {time.monotonic() - started:.1f} s")
        ids = stack.compose_run("ps", "-q", "xcom").stdout.split()
        image = subprocess.run(
            ["docker", "inspect", "-f", "{{.Config.Image}}", ids[0]],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip
        assert image == new_image
        reader = _client(stack, "transform")
        assert reader.pull("extract", "output")["rows"] == 42
        reader.close()

        # A layout this version does not know: init refuses clearly, the service is not
        # restarted on it.
        admin = _admin(stack)
        admin.set(keys.LAYOUT_KEY, "99")
        again = stack.compose_run("up", "-d", "--wait", timeout=180)
        assert again.returncode != 0
        logs = stack.compose_run("logs", "--no-color", "xcom-init-redis").stdout
        assert "STORE_LAYOUT_MISMATCH" in logs and "layout version 99" in logs
        admin.set(keys.LAYOUT_KEY, str(keys.LAYOUT_VERSION))
        admin.close()
    finally:
        subprocess.run(["docker", "rmi", new_image], capture_output=True, timeout=60)


def test_down_v_removes_everything(stack: Stack) -> None:
    stack.down(volumes=True)
    assert stack.leftovers() == ([], [])


def test_broken_dag_stops_the_stack_before_it_starts(engine: None, workdir: Path) -> None:
    dags = workdir / "broken-dags"
    dags.mkdir(mode=0o755)
    for policy in (ROOT / "config" / "dags").glob("*.json"):
        (dags / policy.name).write_bytes(policy.read_bytes())
    bad = json.loads((dags / "etl_daily.json").read_text())
    bad["tasks"][1]["depends_on"] = ["no_such_task"]
    (dags / "etl_daily.json").write_text(json.dumps(bad))
    for path in dags.iterdir():
        path.chmod(0o644)
    broken = Stack(workdir, dags_dir=dags)
    try:
        up = broken.compose_run("up", "-d", "--wait", timeout=180)
        assert up.returncode != 0
        assert "xcom-init" in up.stderr
        logs = broken.compose_run("logs", "--no-color", "xcom-init").stdout
        assert "invalid DAG policy" in logs
        assert "etl_daily.json" in logs and "no_such_task" in logs
        assert broken.container_state("xcom-init")["ExitCode"] == 1
        services = ["redis", "xcom-init-redis", "xcom", "xcom-2", "xcom-ui"]
        for service in services:
            assert broken.container_state(service)["StartedAt"] == NEVER_STARTED, service
    finally:
        broken.down(volumes=True)
    assert broken.leftovers() == ([], [])
