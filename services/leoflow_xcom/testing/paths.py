"""Files of the source checkout the harness starts processes with.

The harness runs from a source checkout (tests, bench, `make run`): Redis gets the product's
own compose/redis/redis.conf, so what runs here holds for the configuration we ship.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

# services/leoflow_xcom/testing/paths.py -> the repository root.
ROOT: Final = Path(__file__).resolve().parents[3]
REDIS_CONF: Final = ROOT / "compose" / "redis" / "redis.conf"
EXAMPLE_DAGS: Final = ROOT / "config" / "dags"
