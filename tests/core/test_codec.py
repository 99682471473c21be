from __future__ import annotations

import json

import pytest

from leoflow_xcom.core import codec, limits
from leoflow_xcom.core.errors import XComInvalidJsonError, XComTooLargeError


def _string_of_encoded_size(size: int) -> bytes:
    # A JSON string "xxx…" whose encoding is exactly `size` bytes.
    return json.dumps("x" * (size - 2)).encode()


def test_value_at_the_limit_is_accepted() -> None:
    data = _string_of_encoded_size(262_144)
    assert len(data) == limits.MAX_VALUE_BYTES
    assert codec.decode(data, "k") == "x" * (262_144 - 2)


def test_one_byte_over_the_limit_is_refused_with_size_limit_and_guidance() -> None:
    with pytest.raises(XComTooLargeError) as info:
        codec.decode(_string_of_encoded_size(262_145), "k")
    err = info.value
    assert err.metadata == {"size": "262145", "limit": "262144", "key": "k"}
    assert "262,145 bytes" in err.message and "262,144" in err.message
    assert "blob store" in err.message and "reference" in err.message


def test_multibyte_utf8_counts_in_bytes_not_characters() -> None:
    # 'é' is 2 bytes in UTF-8: 131,072 of them are 262,144 bytes plus 2 quotes: over.
    value = "é" * 131_072
    with pytest.raises(XComTooLargeError) as info:
        codec.encode(value, "k")
    assert info.value.metadata["size"] == str(262_144 + 2)
    assert codec.encode("é" * 131_071, "k")  # 262,142 + 2 bytes: exactly at the limit


def test_encode_is_compact_utf8() -> None:
    assert codec.encode({"a": [1, "é"]}, "k") == '{"a":[1,"é"]}'.encode()


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"{'a': 1}", b'{"a": 1} trailing', b"NaN", b"[Infinity]", b"", b"\xff\xfe"],
)
def test_non_json_is_refused(raw: bytes) -> None:
    with pytest.raises(XComInvalidJsonError) as info:
        codec.decode(raw, "k")
    assert "not valid JSON" in info.value.message


def test_deep_nesting_is_refused_before_the_parser_recurses() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(XComInvalidJsonError, match="nested deeper than 256"):
        codec.decode(deep, "k")
    ok = b"[" * 200 + b"]" * 200
    assert codec.decode(ok, "k") is not None


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"s": "[" * 10_000}).encode()
    assert codec.decode(text, "k") == {"s": "[" * 10_000}


def test_huge_integers_are_refused_cleanly() -> None:
    with pytest.raises(XComInvalidJsonError):
        codec.decode(b"1" * 10_000, "k")


def test_unencodable_python_values_are_refused() -> None:
    with pytest.raises(XComInvalidJsonError):
        codec.encode({"x": object()}, "k")
    with pytest.raises(XComInvalidJsonError):
        codec.encode(float("nan"), "k")


@pytest.mark.parametrize("text", [b"1e400", b"-1e400", b"[1E999]", b'{"a":2e308}'])
def test_numbers_that_overflow_a_float_are_refused(text: bytes) -> None:
    # Valid JSON syntax, but they decode to inf, which no strict JSON encoder writes back.
    with pytest.raises(XComInvalidJsonError, match="out of range"):
        codec.decode(text, "k")
    assert codec.decode(b"1e308", "k") == 1e308
