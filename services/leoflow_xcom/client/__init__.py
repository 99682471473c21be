"""The Leoflow XCom client SDK: push a task's outputs, pull its inputs, over gRPC.

Every error is an XComError subclass, the same classes the service raises, so
`except XComTooLargeError` catches both the SDK's own size check and a server refusal.
"""

from leoflow_xcom.client._aio import AsyncXComClient
from leoflow_xcom.client._client import ListResult, PushResult, XComClient
from leoflow_xcom.client._config import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    NO_RETRY,
    RetryPolicy,
    tls_credentials,
)
from leoflow_xcom.client._env import ClientConfigError
from leoflow_xcom.client._errors import DeadlineExceededError, ServiceUnavailableError, XComRpcError
from leoflow_xcom.core.errors import (
    DagNotRegisteredError,
    InvalidRequestError,
    SessionsExhaustedError,
    StoreFullError,
    StoreUnavailableError,
    TaskNotDeclaredError,
    TokenInvalidError,
    XComError,
    XComForbiddenError,
    XComInvalidJsonError,
    XComNotFoundError,
    XComQuotaExceededError,
    XComSchemaMismatchError,
    XComTooLargeError,
)
from leoflow_xcom.core.limits import MAX_VALUE_BYTES
from leoflow_xcom.core.model import XComEntry

__all__ = [
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "MAX_VALUE_BYTES",
    "NO_RETRY",
    "AsyncXComClient",
    "ClientConfigError",
    "DagNotRegisteredError",
    "DeadlineExceededError",
    "InvalidRequestError",
    "ListResult",
    "PushResult",
    "RetryPolicy",
    "ServiceUnavailableError",
    "SessionsExhaustedError",
    "StoreFullError",
    "StoreUnavailableError",
    "TaskNotDeclaredError",
    "TokenInvalidError",
    "XComClient",
    "XComEntry",
    "XComError",
    "XComForbiddenError",
    "XComInvalidJsonError",
    "XComNotFoundError",
    "XComQuotaExceededError",
    "XComRpcError",
    "XComSchemaMismatchError",
    "XComTooLargeError",
    "tls_credentials",
]
