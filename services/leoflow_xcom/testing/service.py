"""`leoflow-xcom serve` as a real subprocess, for tests that restart or signal it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final

from leoflow_xcom.testing.ports import free_port

# The console script installed beside this interpreter.
CLI: Final = str(Path(sys.executable).parent / "leoflow-xcom")


class ServiceProcess:
    """The service on a free port, with the caller's LEOFLOW_* environment left out.

    `env`: more LEOFLOW_* settings. start() returns once it prints that it is serving.
    """

    def __init__(
        self, redis_url: str, signing_key_file: Path, *, log_level: str = "WARNING", **env: str
    ) -> None:
        self.port = free_port()
        self.log_level = log_level
        self.output = ""  # its stderr, kept when the process ends
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LEOFLOW_")},
            "LEOFLOW_REDIS_URL": redis_url,
            "LEOFLOW_XCOM_SIGNING_KEY_FILE": str(signing_key_file),
            "LEOFLOW_XCOM_LISTEN": f"127.0.0.1:{self.port}",
            # One process unless a test asks for more: the default follows the machine's CPUs.
            "LEOFLOW_XCOM_PROCESSES": "1",
            **env,
        }
        self.proc: subprocess.Popen[str] | None = None
        self.log = tempfile.TemporaryFile()  # stderr; closed with the process

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ServiceProcess:
        self.proc = subprocess.Popen(
            [CLI, "--log-level", self.log_level, "serve"],
            env=self.env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until bound or dead
        if "serving on port" not in line:
            self.proc.wait(10)
            self.log.seek(0)
            raise RuntimeError(f"serve did not start: {line} {self.log.read().decode()}")
        return self

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self._close()
        return code

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        if not self.log.closed:
            self.log.seek(0)
            self.output = self.log.read().decode(errors="replace")
        self.log.close()
