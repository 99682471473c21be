"""Query parameter parsing with the error vocabulary of each Airflow generation.

Airflow 2 (connexion) refuses a bad parameter with 400 and a sentence; Airflow 3 (FastAPI +
pydantic) with 422 and one `{"type", "loc", "msg", "input", "ctx"?}` item per bad parameter.
The parser records problems neutrally; v1.py / v2.py render them.
"""

from __future__ import annotations

import dataclasses
import re

from starlette.datastructures import QueryParams

_INT = re.compile(r"^[+-]?\d{1,4000}$")  # int() refuses longer strings
# pydantic's lax bool strings (Airflow 3); connexion (Airflow 2) accepts only true/false.
_TRUE_V2 = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE_V2 = frozenset({"0", "off", "f", "false", "n", "no"})


@dataclasses.dataclass(frozen=True, slots=True)
class ParamProblem:
    name: str
    kind: str  # "integer", "boolean" or "minimum"
    raw: str
    minimum: int | None = None


class Params:
    def __init__(self, query: QueryParams, *, lax_booleans: bool) -> None:
        self._query = query
        self._lax = lax_booleans
        self.problems: list[ParamProblem] = []

    def string(self, name: str) -> str | None:
        return self._query.get(name)

    def integer(self, name: str, default: int | None, minimum: int | None = None) -> int | None:
        raw = self._query.get(name)
        if raw is None:
            return default
        if not _INT.match(raw):
            self.problems.append(ParamProblem(name, "integer", raw))
            return default
        value = int(raw)
        if minimum is not None and value < minimum:
            self.problems.append(ParamProblem(name, "minimum", raw, minimum))
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._query.get(name)
        if raw is None:
            return default
        text = raw.lower()
        if text == "true" or (self._lax and text in _TRUE_V2):
            return True
        if text == "false" or (self._lax and text in _FALSE_V2):
            return False
        self.problems.append(ParamProblem(name, "boolean", raw))
        return default
