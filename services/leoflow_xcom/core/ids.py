"""Bounds on ids, keys and map indexes (the values themselves are free-form unicode)."""

from __future__ import annotations

from leoflow_xcom.core import limits
from leoflow_xcom.core.errors import InvalidRequestError


def check_id(name: str, value: str) -> str:
    if not value:
        raise InvalidRequestError.field(name, "must not be empty")
    if len(value) > limits.MAX_ID_CHARS:
        raise InvalidRequestError.field(
            name, f"{len(value)} characters; at most {limits.MAX_ID_CHARS} are allowed"
        )
    if "\x00" in value:
        raise InvalidRequestError.field(name, "must not contain NUL characters")
    _check_text(name, value)
    return value


def check_key(key: str) -> str:
    if not key:
        raise InvalidRequestError.field("key", "must not be empty")
    if len(key) > limits.MAX_KEY_CHARS:
        raise InvalidRequestError.field(
            "key", f"{len(key)} characters; at most {limits.MAX_KEY_CHARS} are allowed"
        )
    if "\x00" in key:
        raise InvalidRequestError.field("key", "must not contain NUL characters")
    _check_text("key", key)
    return key


def _check_text(name: str, value: str) -> None:
    # A JSON token can carry "\ud800": not text, and no key, log or protobuf string can hold it.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequestError.field(
                name, "must be valid Unicode text (it holds a lone surrogate)"
            ) from None


def check_map_index(map_index: int) -> int:
    if map_index < limits.UNMAPPED or map_index > limits.MAX_MAP_INDEX:
        raise InvalidRequestError.field(
            "map_index",
            f"{map_index} is out of range: -1 (unmapped) or 0..{limits.MAX_MAP_INDEX}",
        )
    return map_index
