"""The error registry matches PRODUCT.md's table: status and reason for every case."""

from __future__ import annotations

from leoflow_xcom.core.errors import StatusCode, XComError

PRODUCT_TABLE = {
    "XCOM_TOO_LARGE": StatusCode.INVALID_ARGUMENT,
    "XCOM_INVALID_JSON": StatusCode.INVALID_ARGUMENT,
    "XCOM_SCHEMA_MISMATCH": StatusCode.INVALID_ARGUMENT,
    "DAG_NOT_REGISTERED": StatusCode.FAILED_PRECONDITION,
    "TASK_NOT_DECLARED": StatusCode.FAILED_PRECONDITION,
    "TOKEN_INVALID": StatusCode.UNAUTHENTICATED,
    "XCOM_FORBIDDEN": StatusCode.PERMISSION_DENIED,
    "XCOM_NOT_FOUND": StatusCode.NOT_FOUND,
    "STORE_FULL": StatusCode.RESOURCE_EXHAUSTED,
    "STORE_UNAVAILABLE": StatusCode.UNAVAILABLE,
}


def test_every_product_reason_has_its_class_and_status() -> None:
    for reason, code in PRODUCT_TABLE.items():
        klass = XComError.registry[reason]
        assert klass.code == code, reason


def test_from_reason_rebuilds_the_typed_class() -> None:
    for reason in PRODUCT_TABLE:
        err = XComError.from_reason(reason, "m", {"a": "b"})
        assert type(err) is XComError.registry[reason]
        assert (err.message, err.metadata) == ("m", {"a": "b"})
    assert type(XComError.from_reason("SOMETHING_NEW", "m")) is XComError


def test_status_codes_copy_grpc() -> None:
    import grpc

    for code in grpc.StatusCode:
        assert StatusCode[code.name] == code.value[0]
