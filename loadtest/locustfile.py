"""Locust scenarios for the XCom service (gRPC users in Locust's documented pattern).

Default: the paced latency scenario. Session (the SDK's default transport) and unary users run
realistic DAG runs at a fixed offered rate per user, well below saturation, and an echo user
measures the floor (gRPC and the client's threads with no work behind them) in the same run;
all three call from agent processes of their own (loadtest/native.py), not from gevent. The
run fails unless push and fetch keep an exact p50 under 1 ms and p99 under the stated bound
(loadtest/verdict.py). Unpaced (`--xcom-rate 0`) with the size sweep and the UI browser, it is
a stress run with generous limits instead. The users: loadtest/users.py; exact latencies,
worker merging, the verdict: loadtest/listeners.py; the capacity shape: loadtest/capacity.py.

    locust -f loadtest/locustfile.py --headless -u 5 -t 30s      # LEOFLOW_XCOM_ADDR: target
    python -m loadtest.run                                        # `make loadtest` starts a stack

Needs LEOFLOW_XCOM_SIGNING_KEY_FILE to mint task tokens.
"""

from __future__ import annotations

# The size sweep calls from this process: grpc must run on gevent before any channel exists
# (Locust's gRPC pattern).
import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()

from loadtest import listeners  # noqa: E402, F401  # registers the event listeners
from loadtest.users import (  # noqa: E402, F401  # the user classes Locust picks up
    EchoFloorUser,
    GeventEchoUser,
    SessionHotPathUser,
    SizeSweepUser,
    UiBrowserUser,
    UnaryHotPathUser,
)
