"""Every error fits gRPC's metadata limit by construction: the encoded size of each error's
status for maximal inputs, and big mismatching values over the real service answered with
their typed error and a short message (unary and session)."""

from __future__ import annotations

import base64
from typing import Literal

import pytest

from leoflow_xcom.client import NO_RETRY, XComClient, XComNotFoundError, XComSchemaMismatchError
from leoflow_xcom.core import errors, limits
from leoflow_xcom.core.errors import XComError
from leoflow_xcom.server.status import to_status, to_status_proto
from leoflow_xcom.telemetry.logs import REQUEST_ID_HEADER
from tests.fixture_types import Mint

HUGE = "𝄞é%\n" * 50_000  # 4-, 2- and 1-byte characters, and ones grpc-message must escape
WIDE_ID = "𝄞" * limits.MAX_ID_CHARS
WIDE_KEY = "𝄞" * limits.MAX_KEY_CHARS


def _percent_encoded(text: str) -> int:
    # grpc-message: bytes outside 0x20..0x7e, and '%', travel as %XX.
    return sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in text.encode("utf-8"))


def encoded_size(error: XComError) -> int:
    """Bytes of trailing metadata the status takes on the wire (names included)."""
    status = to_status(error)
    size = len("grpc-status") + 2 + len("grpc-message") + _percent_encoded(status.details)
    for name, value in status.trailing_metadata:
        raw = value if isinstance(value, bytes) else value.encode()
        wire = len(base64.b64encode(raw)) if name.endswith("-bin") else len(raw)
        size += len(name) + wire
    return size + len(REQUEST_ID_HEADER) + 64  # the request id every answer carries


def maximal_errors() -> list[XComError]:
    made: list[XComError] = [
        cls(HUGE, {name: HUGE for name in ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j")})
        for cls in XComError.registry.values()
    ]
    made += [
        errors.XComTooLargeError.for_size(10**12, WIDE_KEY),
        errors.XComInvalidJsonError.because(HUGE, WIDE_KEY),
        errors.XComSchemaMismatchError.at(HUGE, HUGE, WIDE_ID, WIDE_KEY),
        errors.InvalidRequestError.field(HUGE, HUGE),
        errors.DagNotRegisteredError.for_dag(WIDE_ID),
        errors.TaskNotDeclaredError.for_task(WIDE_ID, WIDE_ID),
        errors.TokenInvalidError.because(HUGE),
        errors.XComNotFoundError.for_ref(WIDE_ID, WIDE_ID, WIDE_ID, 2**31 - 2, WIDE_KEY),
        errors.StoreUnavailableError.because(HUGE),
        errors.LayoutMismatchError.found(HUGE, 1),
    ]
    return made


def test_every_error_status_fits_the_metadata_limit_for_maximal_inputs() -> None:
    sizes = {f"{type(e).__name__}": encoded_size(e) for e in maximal_errors()}
    largest = max(sizes.values())
    print(
        f"\nlargest encoded error status: {largest:,} bytes (limit {limits.MAX_METADATA_BYTES:,})"
    )
    assert largest <= limits.MAX_METADATA_BYTES // 2  # with room for the caller's own headers
    for error in maximal_errors():
        proto = to_status_proto(error)
        assert len(proto.message.encode()) <= limits.MAX_STATUS_MESSAGE_BYTES
        assert proto.ByteSize() < 6 * 1024


def test_a_clipped_value_still_reads_as_text() -> None:
    clipped = errors.clip("é" * 1000, 101)
    assert clipped.endswith("…") and len(clipped.encode()) <= 101
    assert errors.clip("\ud800 lone", 100) == "? lone"


@pytest.mark.parametrize("transport", ["unary", "session"])
def test_a_large_mismatching_value_gets_its_typed_error(
    target: str, mint: Mint, transport: Literal["unary", "session"]
) -> None:
    with (
        XComClient(target, mint(task_id="a"), transport=transport, retry=NO_RETRY) as client,
        pytest.raises(XComSchemaMismatchError) as info,
    ):
        client.push("typed", {"rows": "x" * 250_000})
    print(f"\n{transport}: {len(info.value.message)} chars: {info.value.message}")
    assert info.value.metadata["path"] == "$.rows"
    assert len(info.value.message) < 400


@pytest.mark.parametrize("transport", ["unary", "session"])
def test_widest_ids_are_answered_with_their_typed_error(
    target: str, mint: Mint, transport: Literal["unary", "session"]
) -> None:
    with (
        XComClient(target, mint(task_id="b"), transport=transport, retry=NO_RETRY) as client,
        pytest.raises(XComNotFoundError) as info,
    ):
        client.pull("a", WIDE_KEY)
    assert info.value.metadata["key"].startswith("𝄞𝄞")
