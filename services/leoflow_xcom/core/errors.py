"""Typed XCom errors, one class per ErrorInfo reason.

    XComError                        (root; `code`, `reason`, `metadata`)
    ├── XComTooLargeError            INVALID_ARGUMENT     XCOM_TOO_LARGE
    ├── XComInvalidJsonError         INVALID_ARGUMENT     XCOM_INVALID_JSON
    ├── XComSchemaMismatchError      INVALID_ARGUMENT     XCOM_SCHEMA_MISMATCH
    ├── InvalidRequestError          INVALID_ARGUMENT     INVALID_REQUEST
    ├── DagNotRegisteredError        FAILED_PRECONDITION  DAG_NOT_REGISTERED
    ├── TaskNotDeclaredError         FAILED_PRECONDITION  TASK_NOT_DECLARED
    ├── TokenInvalidError            UNAUTHENTICATED      TOKEN_INVALID
    ├── XComForbiddenError           PERMISSION_DENIED    XCOM_FORBIDDEN
    ├── XComNotFoundError            NOT_FOUND            XCOM_NOT_FOUND
    ├── StoreFullError               RESOURCE_EXHAUSTED   STORE_FULL
    ├── XComQuotaExceededError       RESOURCE_EXHAUSTED   XCOM_QUOTA_EXCEEDED
    ├── SessionsExhaustedError       RESOURCE_EXHAUSTED   SESSIONS_EXHAUSTED
    ├── StoreUnavailableError        UNAVAILABLE          STORE_UNAVAILABLE
    └── LayoutMismatchError          FAILED_PRECONDITION  STORE_LAYOUT_MISMATCH

The server turns these into a gRPC status with a google.rpc.ErrorInfo (domain `xcom.leoflow`),
the SDK turns that back into the same class, so `except XComTooLargeError` catches both the
SDK's own pre-check and a refusal by the server. Messages are written here, once: each says
what was wrong, the rule or limit, and what to do instead.
"""

from __future__ import annotations

import enum
from typing import ClassVar

from leoflow_xcom.core import limits

ERROR_DOMAIN = "xcom.leoflow"


class StatusCode(enum.IntEnum):
    """The gRPC status codes, copied so the core needs no grpc import."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


ELLIPSIS = "…"


def clip(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8 (on a character boundary, marked with …);
    a lone surrogate, which no protobuf string may hold, becomes `?`."""
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text if text.isascii() else data.decode("utf-8")
    keep = max_bytes - len(ELLIPSIS.encode())
    return data[:keep].decode("utf-8", "ignore") + ELLIPSIS


class XComError(Exception):
    """Root of every error the XCom service, store and SDK raise on purpose."""

    code: ClassVar[StatusCode] = StatusCode.UNKNOWN
    reason: ClassVar[str] = "XCOM_ERROR"
    registry: ClassVar[dict[str, type[XComError]]] = {}

    def __init__(self, message: str, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        XComError.registry[cls.reason] = cls

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r})"

    @classmethod
    def from_reason(
        cls, reason: str, message: str, metadata: dict[str, str] | None = None
    ) -> XComError:
        """Rebuild the typed error for a reason received over the wire."""
        return cls.registry.get(reason, XComError)(message, metadata)


class XComTooLargeError(XComError):
    code = StatusCode.INVALID_ARGUMENT
    reason = "XCOM_TOO_LARGE"

    @classmethod
    def for_size(cls, size: int, key: str) -> XComTooLargeError:
        limit = limits.MAX_VALUE_BYTES
        return cls(
            f"XCom {key!r} is {size:,} bytes of encoded JSON; the limit is {limit:,} bytes "
            f"(256 KiB) per value. XCom carries small results, not data: write the data to a "
            f"blob store (S3, GCS) and push a reference to it, such as its URI.",
            {"size": str(size), "limit": str(limit), "key": key},
        )


class XComInvalidJsonError(XComError):
    code = StatusCode.INVALID_ARGUMENT
    reason = "XCOM_INVALID_JSON"

    @classmethod
    def because(cls, detail: str, key: str) -> XComInvalidJsonError:
        return cls(
            f"XCom {key!r} is not valid JSON: {detail}. Values must be UTF-8 JSON "
            f"(no NaN/Infinity, nesting at most {limits.MAX_JSON_DEPTH} levels); "
            f"encode the value with a JSON encoder before pushing.",
            {"key": key, "detail": detail},
        )


class XComSchemaMismatchError(XComError):
    code = StatusCode.INVALID_ARGUMENT
    reason = "XCOM_SCHEMA_MISMATCH"

    @classmethod
    def at(cls, path: str, detail: str, task_id: str, key: str) -> XComSchemaMismatchError:
        return cls(
            f"XCom {key!r} of task {task_id!r} does not match the JSON Schema the DAG declares "
            f"for it: at {path}: {detail}. Fix the value, or the task's xcom_schema.",
            {"path": path, "message": detail, "task_id": task_id, "key": key},
        )


class InvalidRequestError(XComError):
    code = StatusCode.INVALID_ARGUMENT
    reason = "INVALID_REQUEST"

    @classmethod
    def field(cls, name: str, problem: str) -> InvalidRequestError:
        return cls(f"invalid {name}: {problem}", {"field": name})


class DagNotRegisteredError(XComError):
    code = StatusCode.FAILED_PRECONDITION
    reason = "DAG_NOT_REGISTERED"

    @classmethod
    def for_dag(cls, dag_id: str) -> DagNotRegisteredError:
        return cls(
            f"DAG {dag_id!r} has no XCom policy registered. Add config/dags/<dag>.json and run "
            f"`leoflow-xcom dags apply config/dags` before running it.",
            {"dag_id": dag_id},
        )


class TaskNotDeclaredError(XComError):
    code = StatusCode.FAILED_PRECONDITION
    reason = "TASK_NOT_DECLARED"

    @classmethod
    def for_task(cls, dag_id: str, task_id: str) -> TaskNotDeclaredError:
        return cls(
            f"task {task_id!r} is not declared in the XCom policy of DAG {dag_id!r}. Declare it "
            f"under `tasks` and apply the policy again.",
            {"dag_id": dag_id, "task_id": task_id},
        )


class TokenInvalidError(XComError):
    code = StatusCode.UNAUTHENTICATED
    reason = "TOKEN_INVALID"

    @classmethod
    def because(cls, why: str) -> TokenInvalidError:
        # Never echo the token or the signing key: only why it was refused.
        return cls(
            f"task token refused: {why}. Send `authorization: Bearer <token>` with a token "
            f"minted by the control plane (`leoflow-xcom token`).",
            {"detail": why},
        )


class XComForbiddenError(XComError):
    code = StatusCode.PERMISSION_DENIED
    reason = "XCOM_FORBIDDEN"


class XComNotFoundError(XComError):
    code = StatusCode.NOT_FOUND
    reason = "XCOM_NOT_FOUND"

    @classmethod
    def for_ref(
        cls, dag_id: str, run_id: str, task_id: str, map_index: int, key: str
    ) -> XComNotFoundError:
        return cls(
            f"no XCom {key!r} for task {task_id!r} (map_index {map_index}) in run {run_id!r} of "
            f"DAG {dag_id!r}: it was never pushed, was cleared, or has expired (TTL).",
            {
                "dag_id": dag_id,
                "run_id": run_id,
                "task_id": task_id,
                "map_index": str(map_index),
                "key": key,
            },
        )


class StoreFullError(XComError):
    code = StatusCode.RESOURCE_EXHAUSTED
    reason = "STORE_FULL"

    @classmethod
    def default(cls) -> StoreFullError:
        return cls(
            "the XCom store is full (Redis reached maxmemory; it never evicts XComs). Reads still "
            "work. Retry later, shorten DAG xcom_ttl, or give Redis more memory."
        )


class XComQuotaExceededError(XComError):
    """A push would take a run or a task instance over its DAG's XCom quota."""

    code = StatusCode.RESOURCE_EXHAUSTED
    reason = "XCOM_QUOTA_EXCEEDED"

    @classmethod
    def over(
        cls, scope: str, measure: str, usage: int, limit: int, adding: int, dag_id: str
    ) -> XComQuotaExceededError:
        """scope: "run" or "task_instance"; measure: "bytes" or "count"."""
        who = "this run" if scope == "run" else "this task instance"
        unit = "bytes" if measure == "bytes" else "XComs"
        setting = f"{scope}_{measure}"
        return cls(
            f"XCom quota exceeded: {who} already holds {usage:,} {unit} and this push adds "
            f"{adding:,}; the limit is {limit:,} {unit} ({setting} of DAG {dag_id!r}). Nothing "
            f"was stored. Push fewer or smaller values (write data to a blob store and push a "
            f"reference), clear old XComs of the run, or raise xcom_quota.{setting} in the "
            f"DAG's policy.",
            {
                "scope": scope,
                "measure": measure,
                "usage": str(usage),
                "limit": str(limit),
                "adding": str(adding),
                "dag_id": dag_id,
            },
        )


class SessionsExhaustedError(XComError):
    """A replica refused a new session stream: each open session holds one server thread."""

    code = StatusCode.RESOURCE_EXHAUSTED
    reason = "SESSIONS_EXHAUSTED"

    @classmethod
    def at(cls, limit: int) -> SessionsExhaustedError:
        return cls(
            f"this XCom replica already serves {limit} session streams, its limit; the SDK "
            f"falls back to unary calls. Raise LEOFLOW_XCOM_MAX_SESSIONS (with "
            f"LEOFLOW_XCOM_WORKERS) or add replicas.",
            {"limit": str(limit)},
        )

    @classmethod
    def unauthenticated(cls, limit: int) -> SessionsExhaustedError:
        return cls(
            f"this XCom replica already holds {limit} streams without a valid token (sessions "
            f"that have not shown one yet, and server-reflection streams), its limit. Open "
            f"sessions with `authorization: Bearer <token>` metadata; the SDK falls back to "
            f"unary calls. Operators: LEOFLOW_XCOM_MAX_UNAUTHENTICATED_STREAMS.",
            {"limit": str(limit), "pool": "unauthenticated"},
        )


class StoreUnavailableError(XComError):
    code = StatusCode.UNAVAILABLE
    reason = "STORE_UNAVAILABLE"

    @classmethod
    def because(cls, why: str) -> StoreUnavailableError:
        return cls(
            f"the XCom store (Redis) is unavailable: {why}. The call was not applied; retry "
            f"with backoff.",
            {"detail": why},
        )

    @classmethod
    def unconfirmed(cls, acked: int, wanted: int, timeout_ms: int) -> StoreUnavailableError:
        """The write reached the primary, but too few replicas confirmed it in time."""
        why = (
            f"only {acked} of the {wanted} Redis replicas required "
            f"(LEOFLOW_REDIS_MIN_REPLICA_ACKS) confirmed the write within {timeout_ms} ms"
        )
        return cls(
            f"the XCom store (Redis) could not confirm the write: {why}. It may have been "
            f"applied on the primary; pushes are idempotent per key, so retrying is safe.",
            {"detail": why},
        )


class LayoutMismatchError(XComError):
    code = StatusCode.FAILED_PRECONDITION
    reason = "STORE_LAYOUT_MISMATCH"

    @classmethod
    def found(cls, found: str, supported: int) -> LayoutMismatchError:
        return cls(
            f"the Redis data holds XCom layout version {found}; this service understands version "
            f"{supported}. Run the service version that wrote it, or upgrade to one that "
            f"migrates it; nothing was changed.",
            {"found": found, "supported": str(supported)},
        )
