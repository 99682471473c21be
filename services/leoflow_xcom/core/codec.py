"""JSON values: encode, decode strictly, and enforce the size limit. Used by SDK and server.

Values travel and rest as UTF-8 JSON bytes exactly as the pusher encoded them; the size that
counts is the byte length of that encoding (multi-byte UTF-8 counts in bytes).
"""

from __future__ import annotations

import json
import math
from typing import Any

from leoflow_xcom.core import limits
from leoflow_xcom.core.errors import XComInvalidJsonError, XComTooLargeError

JsonValue = Any  # the JSON data model: dict/list/str/int/float/bool/None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    # `1e400` is valid JSON syntax but overflows to inf, which no strict JSON encoder can
    # write back (the proxy would fail rendering it): refuse it like the NaN/Infinity constants.
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"number {text[:40]} is out of range for a 64-bit float")
    return number


_decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def check_size(size: int, key: str) -> None:
    if size > limits.MAX_VALUE_BYTES:
        raise XComTooLargeError.for_size(size, key)


def encode(value: JsonValue, key: str) -> bytes:
    """Encode a Python value as compact UTF-8 JSON and check the size before anything is sent."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise XComInvalidJsonError.because(str(exc) or type(exc).__name__, key) from None
    data = text.encode("utf-8")
    check_size(len(data), key)
    return data


def _depth_exceeds(text: str, limit: int) -> bool:
    # A cheap bracket scan that skips strings; the parser itself would recurse per level.
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def decode(data: bytes, key: str) -> JsonValue:
    """Check size, UTF-8 and JSON syntax of a value as received; return the parsed value."""
    check_size(len(data), key)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XComInvalidJsonError.because(f"invalid UTF-8 at byte {exc.start}", key) from None
    if text.count("[") + text.count("{") > limits.MAX_JSON_DEPTH and _depth_exceeds(
        text, limits.MAX_JSON_DEPTH
    ):
        raise XComInvalidJsonError.because(
            f"nested deeper than {limits.MAX_JSON_DEPTH} levels", key
        )
    try:
        return _decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise XComInvalidJsonError.because(f"{exc.msg} at char {exc.pos}", key) from None
    except (ValueError, RecursionError) as exc:
        # e.g. integers beyond Python's digit limit, NaN/Infinity constants.
        raise XComInvalidJsonError.because(str(exc) or type(exc).__name__, key) from None
