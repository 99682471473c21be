"""Schemas that cannot hurt the service: catastrophic regexes run on RE2, unsupported ones and
oversized or deep schemas are refused at load with path and reason, uniqueItems is linear, and
a validation is abandoned past its CPU bound. Prints the measured times (`pytest -s`)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from leoflow_xcom.core import limits
from leoflow_xcom.core.errors import XComSchemaMismatchError
from leoflow_xcom.core.policies import PolicyError, parse_policy
from leoflow_xcom.core.schema import CompiledSchema, schema_problem

# (schema, a value that makes a backtracking engine explode)
CATASTROPHIC: list[tuple[dict[str, Any], Any]] = [
    ({"type": "string", "pattern": "^(a+)+$"}, "a" * 28 + "!"),  # the 29-byte push
    ({"type": "string", "pattern": "^(a|a)*$"}, "a" * 40 + "!"),
    ({"type": "string", "pattern": "^(a|aa)+$"}, "a" * 60 + "!"),
    ({"type": "string", "pattern": "^(.*a){20}$"}, "a" * 40 + "!"),
    ({"type": "string", "pattern": "^(\\w+\\s?)*$"}, "word " * 20 + "!"),
    (
        {"type": "object", "patternProperties": {"^(a+)+$": {"type": "integer"}}},
        {"a" * 40 + "!": 1},
    ),
    (
        {"type": "object", "patternProperties": {"^(a+)+$": {}}, "additionalProperties": False},
        {"a" * 40 + "!": 1},
    ),
    ({"type": "object", "propertyNames": {"pattern": "^(a+)+$"}}, {"a" * 40 + "!": 1}),
]


@pytest.mark.parametrize(("schema", "value"), CATASTROPHIC)
def test_catastrophic_patterns_run_in_linear_time(schema: dict[str, Any], value: Any) -> None:
    assert schema_problem(schema) is None  # accepted: RE2 runs it safely
    compiled = CompiledSchema(schema)
    started = time.perf_counter()
    if schema.get("patternProperties") and "additionalProperties" not in schema:
        compiled.check(value, "t", "k")  # no key matches: nothing to check, and quickly
    else:
        with pytest.raises(XComSchemaMismatchError):
            compiled.check(value, "t", "k")
    # Also at the full value size: still linear.
    if isinstance(value, str):
        with pytest.raises(XComSchemaMismatchError):
            compiled.check("a" * 200_000 + "!", "t", "k")
    print(
        f"\n{json.dumps(schema)[:70]}: answered in {(time.perf_counter() - started) * 1000:.2f} ms"
    )


def test_matches_still_match() -> None:
    compiled = CompiledSchema(
        {
            "type": "object",
            "properties": {"s": {"pattern": "^(a+)+$"}},
            "patternProperties": {"^x_": {"type": "integer"}},
            "additionalProperties": False,
        }
    )
    compiled.check({"s": "aaaa", "x_1": 1}, "t", "k")
    with pytest.raises(XComSchemaMismatchError, match="additional properties"):
        compiled.check({"s": "aaaa", "y": 1}, "t", "k")
    with pytest.raises(XComSchemaMismatchError, match=r"\$\.x_1"):
        compiled.check({"x_1": "no"}, "t", "k")


@pytest.mark.parametrize(
    ("pattern", "why"),
    [("(a)\\1", "backreferences"), ("(?=a)b", "RE2"), ("(?<!a)b", "RE2"), ("a{2000}", "RE2")],
)
def test_patterns_re2_cannot_run_are_refused_at_load(pattern: str, why: str) -> None:
    problem = schema_problem({"properties": {"id": {"type": "string", "pattern": pattern}}})
    assert problem is not None
    path, reason = problem
    assert path == "$.properties.id.pattern" and why in reason
    problem = schema_problem({"patternProperties": {pattern: {}}})
    assert problem is not None and problem[0].startswith("$.patternProperties")


def test_unevaluated_properties_with_pattern_properties_is_refused() -> None:
    problem = schema_problem({"patternProperties": {"^a": {}}, "unevaluatedProperties": False})
    assert problem is not None and "unevaluatedProperties" in problem[1]


def _policy(schema_text: str) -> str:
    return (
        '{"dag_id": "d", "tasks": [{"task_id": "t", "xcom_schema": {"out": ' + schema_text + "}}]}"
    )


@pytest.mark.parametrize("levels", [122, 5_000, 200_000])
def test_a_deep_schema_is_refused_with_file_path_and_reason(levels: int) -> None:
    deep = '{"items": ' * levels + "{}" + "}" * levels
    with pytest.raises(PolicyError) as info:
        parse_policy(_policy(deep), "config/dags/deep.json")
    print(f"\n{levels} levels: {info.value}"[:300])
    assert info.value.source == "config/dags/deep.json"
    assert "nested deeper than" in info.value.reason
    # Within what the parser handles safely, the path names where the bound was crossed.
    if levels <= limits.MAX_JSON_DEPTH - 8:
        assert info.value.path == "$.tasks[0].xcom_schema"
        assert "at $.items.items" in info.value.reason


def test_depth_and_size_bounds_at_load() -> None:
    depth = limits.MAX_SCHEMA_DEPTH
    ok = '{"items": ' * (depth - 1) + "{}" + "}" * (depth - 1)
    parse_policy(_policy(ok), "ok.json")
    too_deep: Any = {}
    for _ in range(depth):
        too_deep = {"items": too_deep}
    problem = schema_problem(too_deep)
    assert problem is not None and f"deeper than {depth}" in problem[1]
    big = {"enum": ["x" * 1000] * (limits.MAX_SCHEMA_BYTES // 1000 + 1)}
    problem = schema_problem(big)
    assert problem is not None and "at most" in problem[1]


def test_unique_items_is_linear() -> None:
    compiled = CompiledSchema({"type": "array", "uniqueItems": True})
    items = [{"id": i, "tags": [i, str(i)]} for i in range(7_000)]  # ~250 KB of JSON
    started = time.perf_counter()
    compiled.check(items, "t", "k")
    with pytest.raises(XComSchemaMismatchError, match="item 7000 repeats"):
        compiled.check([*items, {"tags": [5, "5"], "id": 5.0}], "t", "k")
    print(
        f"\nuniqueItems over 7,000 objects, twice: {(time.perf_counter() - started) * 1000:.0f} ms"
    )
    # Same equality as jsonschema: 1 == 1.0, but true != 1.
    compiled.check([1, True], "t", "k")
    with pytest.raises(XComSchemaMismatchError):
        compiled.check([1, 1.0], "t", "k")


def test_an_exponential_schema_is_abandoned_at_its_cpu_bound() -> None:
    # anyOf with two branches per level: a backtracking validator visits 2^depth paths.
    schema = {
        "$defs": {
            "n": {
                "anyOf": [
                    {"type": "array", "items": {"$ref": "#/$defs/n"}},
                    {"type": "array", "items": {"$ref": "#/$defs/n"}},
                    {"type": "string"},
                ]
            }
        },
        "$ref": "#/$defs/n",
    }
    assert schema_problem(schema) is None
    value: Any = 1
    for _ in range(40):
        value = [value]
    started = time.thread_time()
    with pytest.raises(XComSchemaMismatchError, match="s of CPU"):
        CompiledSchema(schema).check(value, "t", "k")
    spent = time.thread_time() - started
    print(f"\nexponential anyOf abandoned after {spent:.2f} s of CPU")
    assert spent < limits.MAX_SCHEMA_VALIDATION_SECONDS * 5  # not 2^40 steps


def test_a_value_deeper_than_the_validator_can_recurse_is_refused_clearly() -> None:
    schema = {
        "$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}},
        "$ref": "#/$defs/n",
    }
    value: Any = [1]  # the innermost item is not an array: the value does not match
    for _ in range(limits.MAX_JSON_DEPTH - 1):
        value = [value]
    # Either the validator reaches the bottom and reports the mismatch, or it runs out of
    # stack and says so; never a RecursionError (which the service would answer INTERNAL).
    with pytest.raises(XComSchemaMismatchError) as info:
        CompiledSchema(schema).check(value, "t", "k")
    print(f"\n{limits.MAX_JSON_DEPTH} levels against a recursive schema: {info.value.metadata}")


def test_mismatch_messages_quote_a_short_excerpt() -> None:
    compiled = CompiledSchema({"type": "object", "properties": {"rows": {"type": "integer"}}})
    with pytest.raises(XComSchemaMismatchError) as info:
        compiled.check({"rows": "x" * 200_000}, "t", "k")
    message = info.value.metadata["message"]
    print(f"\nmismatch on a 200 KB string: {message!r}")
    assert info.value.metadata["path"] == "$.rows"
    assert message.startswith('string "xxxx') and "fails type" in message
    assert len(info.value.message) < 400
    with pytest.raises(XComSchemaMismatchError) as info:
        compiled.check({"rows": "ten"}, "t", "k")
    assert "'ten' is not of type 'integer'" in info.value.metadata["message"]
