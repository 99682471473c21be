"""Types of the suite's callable fixtures (conftest.py), for test functions' annotations."""

from __future__ import annotations

from collections.abc import Callable

from leoflow_xcom.client import XComClient
from leoflow_xcom.server import app

# mint(dag_id="test_dag", run_id="run_1", task_id="a", map_index=-1, *, expires_in=600,
# control_plane=False, **claims) -> a signed task token.
Mint = Callable[..., str]
# client_for(<mint's arguments>, token=None, timeout=5.0) -> a client closed after the test.
ClientFor = Callable[..., XComClient]
# start_service(redis_settings=None, *, publish=True, **ServeSettings fields) -> a running
# service stopped after the test.
StartService = Callable[..., app.RunningService]
