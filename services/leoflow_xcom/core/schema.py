"""Optional JSON Schemas for XCom values: checked once at load, compiled once, and unable to
hurt the service.

- Load: a schema is at most MAX_SCHEMA_BYTES of JSON and MAX_SCHEMA_DEPTH levels deep (checked
  before anything recurses into it), valid against its metaschema, and every regular expression
  (`pattern`, `patternProperties`) compiles with RE2, a linear-time engine; each refusal names
  the JSON path inside the schema and the reason.
- Push: regular expressions run on RE2 (never on Python's backtracking `re`, where `^(a+)+$`
  takes seconds on 29 bytes), `uniqueItems` is linear, and a validation that spends more than
  MAX_SCHEMA_VALIDATION_SECONDS of its thread's CPU is abandoned and the value refused.
- Errors: a mismatch names the JSON path, the keyword and at most a short excerpt of the value.

The validator keeps jsonschema's own semantics otherwise: only the keywords that match regular
expressions or compare array items are replaced.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.protocols
import jsonschema.validators
import re2  # type: ignore[import-untyped]  # google-re2 ships no type hints

from leoflow_xcom.core import limits
from leoflow_xcom.core.codec import JsonValue
from leoflow_xcom.core.errors import XComSchemaMismatchError

MAX_PATH_CHARS = 200
MAX_DETAIL_CHARS = 160


def json_path(parts: Iterable[str | int]) -> str:
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += f".{part}"
        else:
            path += f"[{part!r}]"
    return path


# -- regular expressions on RE2 ---------------------------------------------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is reported to the caller, not to stderr


class UnsupportedPatternError(ValueError):
    pass


@functools.lru_cache(maxsize=4096)
def regex(pattern: str) -> Any:
    """The compiled RE2 program for a schema pattern (compiled once per process)."""
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise UnsupportedPatternError(
            f"pattern {_clipped(pattern, 60)} is not supported by the linear-time regex engine "
            f"(RE2: {detail}); backreferences and lookaround are not available"
        ) from None


def _pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not regex(patrn).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")


def _pattern_properties(
    validator: Any, pattern_properties: dict[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for patrn, subschema in pattern_properties.items():
        compiled = regex(patrn)
        for k, v in instance.items():
            if compiled.search(k):
                yield from validator.descend(v, subschema, path=k, schema_path=patrn)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[Any]:
    # jsonschema's own version matches patternProperties with Python's `re`.
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = [regex(p) for p in schema.get("patternProperties", {})]
    extras = sorted(
        (k for k in instance if k not in properties and not any(p.search(k) for p in patterns)),
        key=str,
    )
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        shown = ", ".join(repr(e) for e in extras[:5]) + (", ..." if len(extras) > 5 else "")
        verb = "was" if len(extras) == 1 else "were"
        yield jsonschema.ValidationError(
            f"additional properties are not allowed ({shown} {verb} unexpected)"
        )


# -- uniqueItems in linear time ---------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """A hashable form equal exactly when jsonschema's `equal` says so (1 == 1.0, True != 1)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, list):
        return ("l", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("d", frozenset((k, _canonical(v)) for k, v in value.items()))
    return ("z", None)


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
    # jsonschema falls back to comparing every pair (quadratic) for arrays of objects.
    if unique and validator.is_type(instance, "array"):
        seen: set[Any] = set()
        for index, item in enumerate(instance):
            form = _canonical(item)
            if form in seen:
                yield jsonschema.ValidationError(f"item {index} repeats an earlier item")
                return
            seen.add(form)


# -- a CPU budget per validation --------------------------------------------------------------


class _OverBudgetError(Exception):
    pass


_budget = threading.local()
_CHECK_EVERY = 64  # keyword calls between two looks at the thread's CPU clock


def _budgeted(keyword: Callable[..., Any]) -> Callable[..., Any]:
    def counted(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        calls = getattr(_budget, "calls", None)
        if calls is not None:  # None: not inside CompiledSchema.check (e.g. check_schema)
            _budget.calls = calls + 1
            if calls % _CHECK_EVERY == 0 and time.thread_time() > _budget.until:
                raise _OverBudgetError
        return keyword(validator, value, instance, schema)

    return counted


_REPLACED = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "uniqueItems": _unique_items,
}


_SAFE: dict[type[Any], type[Any]] = {}


def _safe_validator(cls: type[Any]) -> type[Any]:
    """`cls` with the keywords above replaced and every keyword counted (built once per draft)."""
    known = _SAFE.get(cls)
    if known is not None:
        return known
    keywords = {name: fn for name, fn in cls.VALIDATORS.items()}
    keywords.update({name: fn for name, fn in _REPLACED.items() if name in keywords})
    safe: type[Any] = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        cls, validators={name: _budgeted(fn) for name, fn in keywords.items()}
    )
    _SAFE[cls] = safe
    return safe


def _validator_class(schema: Any) -> type[Any]:
    cls: type[Any] = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    return cls


# -- load-time checks -------------------------------------------------------------------------

_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})


def _walk(schema: Any) -> Iterator[tuple[list[str | int], Any]]:
    """(path, node) for every node, iteratively (a deep schema cannot exhaust the stack)."""
    stack: list[tuple[list[str | int], Any]] = [([], schema)]
    while stack:
        path, node = stack.pop()
        yield path, node
        if isinstance(node, dict):
            stack.extend(([*path, k], v) for k, v in node.items() if k not in _DATA_KEYWORDS)
        elif isinstance(node, list):
            stack.extend(([*path, i], v) for i, v in enumerate(node))


def _depth(schema: Any) -> tuple[int, list[str | int]]:
    deepest: tuple[int, list[str | int]] = (0, [])
    stack: list[tuple[int, list[str | int], Any]] = [(0, [], schema)]
    while stack:
        depth, path, node = stack.pop()
        if isinstance(node, dict | list):
            depth += 1
            if depth > deepest[0]:
                deepest = (depth, path)
            if depth > limits.MAX_SCHEMA_DEPTH:
                break
            items = node.items() if isinstance(node, dict) else enumerate(node)
            stack.extend((depth, [*path, k], v) for k, v in items)
    return deepest


def schema_problem(schema: Any) -> tuple[str, str] | None:
    """Check a schema's size, depth, metaschema and regular expressions; return (path inside
    the schema, reason) if it is refused."""
    if not isinstance(schema, dict | bool):
        return "$", "a JSON Schema must be an object or a boolean"
    depth, where = _depth(schema)
    if depth > limits.MAX_SCHEMA_DEPTH:
        return (
            _clipped_path(where),
            f"nested deeper than {limits.MAX_SCHEMA_DEPTH} levels; flatten it (use $defs and "
            f"$ref for repeated parts)",
        )
    size = len(json.dumps(schema, ensure_ascii=False).encode("utf-8", "replace"))
    if size > limits.MAX_SCHEMA_BYTES:
        return "$", f"{size:,} bytes of JSON; a schema may have at most {limits.MAX_SCHEMA_BYTES:,}"
    validator_cls = _validator_class(schema)
    try:
        validator_cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        return _clipped_path(exc.path), _clipped(exc.message, MAX_DETAIL_CHARS)
    unevaluated = False
    matched = False
    for path, node in _walk(schema):
        if not isinstance(node, dict):
            continue
        patterns = (
            [([*path, "pattern"], node["pattern"])] if isinstance(node.get("pattern"), str) else []
        )
        if isinstance(node.get("patternProperties"), dict):
            matched = True
            patterns += [([*path, "patternProperties", p], p) for p in node["patternProperties"]]
        unevaluated = unevaluated or "unevaluatedProperties" in node
        for at, patrn in patterns:
            try:
                regex(patrn)
            except UnsupportedPatternError as exc:
                return _clipped_path(at), str(exc)
    if unevaluated and matched:
        return "$", (
            "unevaluatedProperties together with patternProperties is not supported (its "
            "pattern matching cannot be bounded); use additionalProperties instead"
        )
    return None


# -- messages ---------------------------------------------------------------------------------


def _clipped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clipped_path(parts: Iterable[str | int]) -> str:
    return _clipped(json_path(parts), MAX_PATH_CHARS)


_TYPE_NAMES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}


def excerpt(value: Any) -> str:
    """What a message may quote of a value: its JSON type and a few dozen characters."""
    kind = _TYPE_NAMES.get(type(value), "number")
    limit = limits.MAX_VALUE_EXCERPT_CHARS
    if isinstance(value, str):
        text = json.dumps(value[: limit + 1], ensure_ascii=False)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return f"{kind} {_clipped(text, limit)}"


def describe(error: jsonschema.exceptions.ValidationError) -> str:
    """jsonschema's message when short; else the keyword, its rule and an excerpt."""
    if len(error.message) <= MAX_DETAIL_CHARS:
        return error.message
    rule = json.dumps(error.validator_value, ensure_ascii=False, default=str)
    return f"{excerpt(error.instance)} fails {error.validator}: {_clipped(rule, 60)}"


# -- the compiled schema ----------------------------------------------------------------------


class CompiledSchema:
    """A validator built once from a schema already known to be valid."""

    __slots__ = ("__weakref__", "_validator")

    def __init__(self, schema: dict[str, Any] | bool) -> None:
        cls = _safe_validator(_validator_class(schema))
        self._validator: jsonschema.protocols.Validator = cls(schema)

    def check(self, value: JsonValue, task_id: str, key: str) -> None:
        _budget.calls = 0
        _budget.until = time.thread_time() + limits.MAX_SCHEMA_VALIDATION_SECONDS
        try:
            # The best of the first few errors: a value with thousands of mismatches does not
            # build thousands of messages.
            errors = itertools.islice(self._validator.iter_errors(value), 16)
            error = jsonschema.exceptions.best_match(errors)
        except _OverBudgetError:
            raise XComSchemaMismatchError.at(
                "$",
                f"validating it took more than {limits.MAX_SCHEMA_VALIDATION_SECONDS} s of CPU, "
                "the bound per value; the schema is too costly for a value this size (simplify "
                "nested anyOf/oneOf, large enums)",
                task_id,
                key,
            ) from None
        except RecursionError:
            raise XComSchemaMismatchError.at(
                "$", "nested too deeply to validate against this schema", task_id, key
            ) from None
        except UnsupportedPatternError as exc:  # a policy published before this check existed
            raise XComSchemaMismatchError.at("$", str(exc), task_id, key) from None
        finally:
            _budget.calls = None
        if error is not None:
            raise XComSchemaMismatchError.at(
                _clipped_path(error.absolute_path), describe(error), task_id, key
            )
