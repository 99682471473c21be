"""JSON values: encode, decode strictly, and enforce the size limit. Used by SDK and server.

Values travel and rest as UTF-8 JSON bytes exactly as the pusher encoded them; the size that
counts is the byte length of that encoding (multi-byte UTF-8 counts in bytes).
"""

from __future__ import annotations

import json
import math
import re
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
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise XComInvalidJsonError.because(_surrogate(f"character {exc.start}"), key) from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise XComInvalidJsonError.because(str(exc) or type(exc).__name__, key) from None
    check_size(len(data), key)
    return data


def depth_exceeds(text: str, limit: int) -> bool:
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
    if text.count("[") + text.count("{") > limits.MAX_JSON_DEPTH and depth_exceeds(
        text, limits.MAX_JSON_DEPTH
    ):
        raise XComInvalidJsonError.because(
            f"nested deeper than {limits.MAX_JSON_DEPTH} levels", key
        )
    try:
        value = _decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise XComInvalidJsonError.because(f"{exc.msg} at char {exc.pos}", key) from None
    except (ValueError, RecursionError) as exc:
        # e.g. integers beyond Python's digit limit, NaN/Infinity constants.
        raise XComInvalidJsonError.because(str(exc) or type(exc).__name__, key) from None
    if _SURROGATE_ESCAPE.search(text) is not None:
        where = _lone_surrogate_in(value)
        if where is not None:
            raise XComInvalidJsonError.because(_surrogate(where), key)
    return value


# `\ud800`..`\udfff` escapes: valid JSON syntax, but alone (not as a pair) they decode to
# lone surrogates, which are not Unicode text: no UTF-8 encoder, Redis reader or HTTP client can
# use them. Cheap test on the text first; the walk runs only when such an escape is present.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _surrogate(position: int | str) -> str:
    return f"lone UTF-16 surrogate (not Unicode text) in {position}"


def _lone_surrogate_in(value: JsonValue) -> str | None:
    """Where a string (or object key) holds a lone surrogate, as a JSON path; None if none."""
    stack: list[tuple[str, JsonValue]] = [("$", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if not _is_text(node):
                return f"the string at {path}"
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(node))
        elif isinstance(node, dict):
            for k, v in node.items():
                if not _is_text(k):
                    return f"an object key at {path}"
                stack.append((f"{path}.{k}", v))
    return None


def _is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
