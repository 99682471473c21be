"""Optional JSON Schemas for XCom values: checked against the metaschema once, compiled once.

Validation on push runs a validator compiled when the policy was loaded, never per call, and a
mismatch is reported as a JSON path (`$.rows`, `$.items[2].id`) plus the validator's reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.protocols
import jsonschema.validators

from leoflow_xcom.core.codec import JsonValue
from leoflow_xcom.core.errors import XComSchemaMismatchError


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


def schema_problem(schema: Any) -> tuple[str, str] | None:
    """Check a schema against its metaschema; return (path inside the schema, reason) if bad."""
    if not isinstance(schema, dict | bool):
        return "$", "a JSON Schema must be an object or a boolean"
    validator_cls = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    try:
        validator_cls.check_schema(schema)  # type: ignore[arg-type]  # booleans are schemas
    except jsonschema.exceptions.SchemaError as exc:
        return json_path(exc.path), exc.message
    return None


class CompiledSchema:
    """A validator built once from a schema already known to be valid."""

    __slots__ = ("_validator",)

    def __init__(self, schema: dict[str, Any] | bool) -> None:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        self._validator: jsonschema.protocols.Validator = cls(schema)

    def check(self, value: JsonValue, task_id: str, key: str) -> None:
        error = jsonschema.exceptions.best_match(self._validator.iter_errors(value))
        if error is not None:
            raise XComSchemaMismatchError.at(
                json_path(error.absolute_path), error.message, task_id, key
            )
