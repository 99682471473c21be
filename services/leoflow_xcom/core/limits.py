"""The rules every layer shares: sizes, id bounds, TTLs, paging. One source of truth.

The service, the proxy, the SDK pre-check, the CLI, the load tests and the scripts all import
these names; nothing else spells the numbers.
"""

from __future__ import annotations

from typing import Final

# Hard cap on one value: bytes of encoded UTF-8 JSON (docs/design.md). Larger data goes to a
# blob store.
MAX_VALUE_BYTES: Final = 262_144

# 7 days: the default lifetime of an XCom unless the DAG declares `xcom_ttl`.
DEFAULT_TTL_SECONDS: Final = 7 * 24 * 3600
# A DAG's TTL must keep values long enough to be useful and not forever.
MIN_TTL_SECONDS: Final = 60
MAX_TTL_SECONDS: Final = 366 * 24 * 3600

# Id bounds (characters). 250 matches Airflow's ID_LEN for dag_id/task_id/run_id.
MAX_ID_CHARS: Final = 250
MAX_KEY_CHARS: Final = 512

# map_index of an unmapped task instance; an omitted map_index always means this.
UNMAPPED: Final = -1
# Map indexes travel as int32 on the wire.
MAX_MAP_INDEX: Final = 2**31 - 2

# Batch fetch and listing bounds: a single call can never ask Redis for unbounded work.
MAX_BATCH_SELECTORS: Final = 1_000
MAX_BATCH_RESPONSE_BYTES: Final = 32 * 1024 * 1024
LIST_DEFAULT_LIMIT: Final = 100
LIST_MAX_LIMIT: Final = 1_000

# gRPC message caps. A request carries at most one value plus ids; a response at most one batch.
MAX_REQUEST_MESSAGE_BYTES: Final = 1024 * 1024
MAX_RESPONSE_MESSAGE_BYTES: Final = MAX_BATCH_RESPONSE_BYTES + 1024 * 1024
MAX_METADATA_BYTES: Final = 16 * 1024

# JSON nesting deeper than this is refused before it can exhaust the parser's stack.
MAX_JSON_DEPTH: Final = 256
