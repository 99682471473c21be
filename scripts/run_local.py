"""`make run`: the whole XCom stack as local processes, no Docker.

Same pieces and order as the Compose appliance: `leoflow-xcom init --stage prepare` (validates
config/dags, generates secrets into .leoflow/secrets, writes the Redis ACL file), a Redis server
started with compose/redis/redis.conf and that ACL file (AOF on, noeviction, default user off),
`leoflow-xcom init --stage apply` (loads the ACL users, checks the layout, applies the policies),
then `leoflow-xcom serve` as the `xcom` ACL user and the read-only UI proxy (`leoflow-xcom ui`)
as the read-only `xcom-ui` user. Writes .leoflow/run.env for other shells,
prints a walk-through, and stops everything cleanly on Ctrl-C (the service drains, Redis
flushes its AOF).
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from leoflow_xcom.init import secrets as secret_names
from leoflow_xcom.store import acl
from leoflow_xcom.testing.health import NotServingError, wait_serving
from leoflow_xcom.testing.paths import ROOT
from leoflow_xcom.testing.ports import port_or_free
from leoflow_xcom.testing.redis_binary import INSTALL_HINT, any_binary
from leoflow_xcom.testing.redis_server import RedisProcess

# .leoflow by default (the README's `source .leoflow/run.env`); tests point it elsewhere.
STATE = Path(os.environ.get("LEOFLOW_RUN_STATE_DIR", ROOT / ".leoflow"))
SECRETS = STATE / "secrets"
ACL_DIR = STATE / "acl"
BIN = Path(sys.executable).parent


def say(text: str) -> None:
    print(f"run: {text}", flush=True)


def wait_for(check: object, what: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"run: {what} exited with code {proc.returncode} (see .leoflow/logs)")
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:
            pass
        time.sleep(0.1)
    sys.exit(f"run: {what} did not become ready in {seconds:.0f} s (see .leoflow/logs)")


def redis_ready(port: int) -> bool:
    # As the PING-only healthcheck user, like the Compose healthcheck: the default user is off.
    password = (ACL_DIR / "redis-healthcheck-password").read_text().strip()
    auth = f"AUTH healthcheck {password}\r\nPING\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(auth)
        return sock.recv(64) == b"+OK\r\n+PONG\r\n"


def ui_ready(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=1) as reply:
        return bool(reply.status == 200)


def main() -> int:
    (STATE / "logs").mkdir(parents=True, exist_ok=True)
    (STATE / "redis").mkdir(parents=True, exist_ok=True)
    redis_port = port_or_free(int(os.environ.get("LEOFLOW_RUN_REDIS_PORT", "6379")))
    grpc_port = port_or_free(int(os.environ.get("LEOFLOW_RUN_XCOM_PORT", "50051")))
    addr = f"127.0.0.1:{grpc_port}"
    ui_port = port_or_free(int(os.environ.get("LEOFLOW_RUN_UI_PORT", "8080")))
    ui_url = f"http://127.0.0.1:{ui_port}"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "LEOFLOW_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "LEOFLOW_XCOM_ADDR": addr,
        "LEOFLOW_XCOM_LISTEN": addr,
        "LEOFLOW_XCOM_SIGNING_KEY_FILE": str(SECRETS / "signing-key"),
        "LEOFLOW_REDIS_USERNAME": acl.SERVICE_USER,
        "LEOFLOW_REDIS_PASSWORD_FILE": str(SECRETS / secret_names.REDIS_XCOM_PASSWORD),
        "LEOFLOW_UI_URL": ui_url,
        "LEOFLOW_UI_LISTEN": f"127.0.0.1:{ui_port}",
        "LEOFLOW_UI_USER": "leoflow",
        "LEOFLOW_UI_PASSWORD_FILE": str(SECRETS / secret_names.UI_PASSWORD),
        "LEOFLOW_UI_TOKEN_FILE": str(SECRETS / secret_names.UI_TOKEN),
        "LEOFLOW_UI_JWT_KEY_FILE": str(SECRETS / secret_names.UI_JWT_KEY),
        "LEOFLOW_UI_REDIS_USERNAME": acl.PROXY_USER,
        "LEOFLOW_UI_REDIS_PASSWORD_FILE": str(SECRETS / secret_names.REDIS_UI_PASSWORD),
        "LEOFLOW_INIT_SECRETS_DIR": str(SECRETS),
        "LEOFLOW_INIT_ACL_DIR": str(ACL_DIR),
        # Redis runs as this user here: nobody else needs to read the ACL directory.
        "LEOFLOW_INIT_ACL_PRIVATE": "on",
        "LEOFLOW_INIT_DAGS": str(ROOT / "config" / "dags"),
        "LEOFLOW_INIT_REDIS_WAIT_SECONDS": "30",
    }
    children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(STATE / "logs" / f"{name}.log", "ab")  # lives as long as the child
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        children.append((name, proc))
        return proc

    def stop_all(*_: object) -> None:
        # Reverse order: the service drains its calls before Redis goes away.
        for name, proc in reversed(children):
            if proc.poll() is None:
                say(f"stopping {name}")
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        children.clear()

    # Ctrl-C, kill and a closed terminal all stop the stack cleanly (in that order of
    # likelihood). SIGINT is set explicitly: a shell starts background jobs with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(0))
    try:
        cli = str(BIN / "leoflow-xcom")
        subprocess.run([cli, "init", "--stage", "prepare"], env=env, check=True)
        binary = any_binary() or sys.exit(f"run: {INSTALL_HINT}")
        # The harness's Redis launcher; ready means the PING-only healthcheck user answers.
        redis = RedisProcess(
            binary,
            STATE / "redis",
            "--aclfile",
            str(ACL_DIR / "users.acl"),
            port=redis_port,
            logfile=STATE / "logs" / "redis.log",
            ready=lambda: redis_ready(redis_port),
        )
        try:
            redis.start(timeout=30)
        except RuntimeError as exc:
            redis.stop()
            sys.exit(f"run: redis did not start: {exc}")
        assert redis.proc is not None
        children.append(("redis", redis.proc))
        say(f"redis ({Path(binary).name}) on 127.0.0.1:{redis_port}, data in .leoflow/redis")
        subprocess.run([cli, "init", "--stage", "apply"], env=env, check=True)
        serve = spawn("xcom", [cli, "serve"])
        try:
            wait_serving(addr, serve, 30)
        except NotServingError as exc:
            sys.exit(f"run: xcom service: {exc} (see .leoflow/logs)")
        say(f"xcom gRPC service on {addr}")
        ui = spawn("xcom-ui", [cli, "ui"])
        wait_for(lambda: ui_ready(ui_url), "UI proxy", ui, 30)
        say(f"read-only UI proxy on {ui_url} (Redis user {acl.PROXY_USER})")
        write_run_env(env)
        print_walkthrough(ui_url)
        while True:
            for name, proc in children:
                if proc.poll() is not None:
                    say(f"{name} exited with code {proc.returncode}; stopping the rest")
                    return 1
            time.sleep(0.5)
    except subprocess.CalledProcessError as exc:
        say(f"`leoflow-xcom {' '.join(exc.cmd[1:])}` failed (exit {exc.returncode}); see above")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()
        say("stopped")


RUN_ENV_VARS = (
    "PATH",
    "LEOFLOW_XCOM_ADDR",
    "LEOFLOW_XCOM_SIGNING_KEY_FILE",
    "LEOFLOW_REDIS_URL",
    "LEOFLOW_REDIS_USERNAME",
    "LEOFLOW_REDIS_PASSWORD_FILE",
    "LEOFLOW_UI_URL",
    "LEOFLOW_UI_USER",
)


def write_run_env(env: dict[str, str]) -> None:
    lines = ["# Written by `make run`: `source .leoflow/run.env` readies a shell for the CLI."]
    lines += [f"export {name}={shlex.quote(env[name])}" for name in RUN_ENV_VARS]
    # A dev secret, kept in this 0600 file only: never printed to the terminal.
    password = Path(env["LEOFLOW_UI_PASSWORD_FILE"]).read_text().strip()
    lines.append(f"export LEOFLOW_UI_PASSWORD={shlex.quote(password)}")
    path = STATE / "run.env"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    path.chmod(0o600)  # also when the file existed with looser permissions


def print_walkthrough(ui_url: str) -> None:
    print(
        """
Leoflow XCom is running. In another shell, from this directory:

  source .leoflow/run.env

  # Task `extract` of run manual__1 of DAG etl_daily pushes its output:
  export LEOFLOW_XCOM_TOKEN=$(leoflow-xcom token --dag etl_daily --run manual__1 --task extract)
  leoflow-xcom push output '{"rows": 42, "uri": "s3://bucket/etl/part-0.parquet"}'

  # Task `transform` declares extract as a dependency, so it may read that output:
  export LEOFLOW_XCOM_TOKEN=$(leoflow-xcom token --dag etl_daily --run manual__1 --task transform)
  leoflow-xcom fetch extract output
  leoflow-xcom ls

  # The rules say no, clearly:
  leoflow-xcom push stats '{"kept": "many", "dropped": 0}'   # schema mismatch at $.kept
  leoflow-xcom push big @<(python3 -c 'print("[" + "1,"*200000 + "1]")')   # over 256 KiB

  # Browse it read-only over HTTP, as Airflow 2's REST API (/api/v2: Airflow 3's):
  curl -u "$LEOFLOW_UI_USER:$LEOFLOW_UI_PASSWORD" \\
    "$LEOFLOW_UI_URL/api/v1/dags/etl_daily/dagRuns/manual__1/taskInstances/extract/xcomEntries/output"

  # Or in a web browser, the XCom browser (user $LEOFLOW_UI_USER, password $LEOFLOW_UI_PASSWORD):
  #   @BROWSER_URL@/

Press Ctrl-C here to stop everything.
""".replace("@BROWSER_URL@", ui_url),
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
