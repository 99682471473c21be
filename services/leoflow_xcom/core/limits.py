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

# Task tokens: the longest lifetime (exp - iat) the service accepts unless the operator sets
# LEOFLOW_XCOM_MAX_TOKEN_LIFETIME, and the most an operator may set.
DEFAULT_MAX_TOKEN_LIFETIME_SECONDS: Final = 7 * 24 * 3600
MAX_TOKEN_LIFETIME_CEILING_SECONDS: Final = 366 * 24 * 3600

# Every error's status fits gRPC's metadata limit by construction: its message and each
# ErrorInfo metadata value are cut to these many UTF-8 bytes (grpc-message is percent-encoded,
# up to 3x; the status details travel base64-encoded, 4/3x; together well under 16 KiB).
MAX_STATUS_MESSAGE_BYTES: Final = 1024
MAX_STATUS_METADATA_VALUE_BYTES: Final = 256
MAX_STATUS_METADATA_ENTRIES: Final = 8
# A schema mismatch quotes at most this many characters of the offending value.
MAX_VALUE_EXCERPT_CHARS: Final = 40

# JSON Schemas in DAG policies: bounded at load (size, nesting) and per push (CPU time).
MAX_SCHEMA_BYTES: Final = 64 * 1024
MAX_SCHEMA_DEPTH: Final = 64
MAX_SCHEMA_VALIDATION_SECONDS: Final = 1.0

# The XCom browser page shows at most this much of a value (and reads no more of it from Redis);
# the full value stays one click away in the JSON API.
UI_VALUE_DISPLAY_BYTES: Final = 16 * 1024

# Default XCom quotas (a DAG's `xcom_quota` overrides them; LEOFLOW_XCOM_QUOTA_* change the
# defaults; 0 means no limit). Sized so one task instance cannot take more than a small share
# of the appliance's 512 MB Redis, and one run not more than a quarter of it.
DEFAULT_QUOTA_RUN_BYTES: Final = 128 * 1024 * 1024
DEFAULT_QUOTA_RUN_COUNT: Final = 100_000
DEFAULT_QUOTA_TASK_INSTANCE_BYTES: Final = 32 * 1024 * 1024
DEFAULT_QUOTA_TASK_INSTANCE_COUNT: Final = 10_000
