from __future__ import annotations

import leoflow_xcom.client as sdk
from leoflow_xcom.core.errors import XComError

EXPECTED = {
    "AsyncXComClient",
    "ClientConfigError",
    "SessionsExhaustedError",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "MAX_VALUE_BYTES",
    "NO_RETRY",
    "DagNotRegisteredError",
    "DeadlineExceededError",
    "InvalidRequestError",
    "ListResult",
    "PushResult",
    "RetryPolicy",
    "ServiceUnavailableError",
    "StoreFullError",
    "XComQuotaExceededError",
    "StoreUnavailableError",
    "TaskNotDeclaredError",
    "TokenInvalidError",
    "XComClient",
    "XComEntry",
    "XComError",
    "XComForbiddenError",
    "XComInvalidJsonError",
    "XComNotFoundError",
    "XComRpcError",
    "XComSchemaMismatchError",
    "XComTooLargeError",
    "tls_credentials",
}


def test_public_names_are_pinned() -> None:
    assert set(sdk.__all__) == EXPECTED
    for name in sdk.__all__:
        assert hasattr(sdk, name)


def test_every_server_reason_has_an_exported_class() -> None:
    exported = {getattr(sdk, n) for n in sdk.__all__}
    for reason, klass in XComError.registry.items():
        if reason != "STORE_LAYOUT_MISMATCH":  # a startup refusal, never sent to clients
            assert klass in exported, reason
