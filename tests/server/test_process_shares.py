"""How a replica's stream limits split over its worker processes (settings.for_processes).

Each process has its own threads (LEOFLOW_XCOM_WORKERS) and its own stream guard, so the
guard's rule (sessions plus unauthenticated streams below the threads) holds per process.
Explicit LEOFLOW_XCOM_MAX_SESSIONS / LEOFLOW_XCOM_MAX_UNAUTHENTICATED_STREAMS are per replica:
each process gets an even share, rounded up.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from leoflow_xcom.settings import ServeSettings


def settings(key: Path, **values: object) -> ServeSettings:
    return ServeSettings(signing_key_file=key, **values)  # type: ignore[arg-type]


def test_explicit_limits_are_per_replica(signing_key_file: Path) -> None:
    serve = settings(
        signing_key_file, processes=4, workers=64, max_sessions=90, max_unauthenticated_streams=9
    )
    each = serve.for_processes(4)
    assert (each.session_limit, each.unauthenticated_stream_limit) == (23, 3)
    assert each.workers == 64 and each.processes == 1
    # One process: exactly the settings as given.
    assert serve.for_processes(1) is serve


def test_default_limits_count_per_process(signing_key_file: Path) -> None:
    each = settings(signing_key_file, workers=64).for_processes(2)
    assert (each.session_limit, each.unauthenticated_stream_limit) == (48, 8)


def test_a_replica_limit_that_fits_only_when_split(signing_key_file: Path) -> None:
    # 200 sessions on 128-thread processes: two processes hold 100 each, one cannot.
    assert (
        settings(signing_key_file, processes=2, max_sessions=200).for_processes(2).session_limit
        == 100
    )
    with pytest.raises(ValidationError, match="per process of 1, must be below"):
        settings(signing_key_file, max_sessions=200)  # unset: checked as one process
