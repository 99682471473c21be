"""The JSON response for bodies that carry a stored value."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse


class ValueResponse(JSONResponse):
    """Starlette's JSON (UTF-8, non-ASCII kept as is), except for text that UTF-8 cannot
    encode: a JSON string escape such as `"\\ud800"` decodes to a lone surrogate, which is then
    written back as the same `\\ud800` escape instead of failing the response."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(
                content, ensure_ascii=True, allow_nan=False, indent=None, separators=(",", ":")
            ).encode("ascii")
