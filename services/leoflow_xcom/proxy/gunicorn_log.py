"""gunicorn's logger, writing our format: with JSON logging on (LEOFLOW_LOG_FORMAT), gunicorn's
error log and access log, and uvicorn's loggers (its worker hands them gunicorn's handlers),
write the same one-object-per-line JSON as every other log line of ours.

`leoflow-xcom ui` passes it as `--logger-class` (cli/ui.py). The proxy's own request line
(proxy/telemetry.py) is the access log, with the request id; gunicorn's access log stays off
unless asked for (it would repeat each request), and when on it is JSON too.
"""

from __future__ import annotations

from typing import Any

from gunicorn import glogging

from leoflow_xcom.telemetry import logs


class Logger(glogging.Logger):  # type: ignore[misc]
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if not logs.wants_json(logs.format_from_env()):
            return
        formatter = logs.JsonFormatter()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)
