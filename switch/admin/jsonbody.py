"""Request bodies parsed without surprises (issue 20 item 6).

`json.loads` recurses once per nesting level: sixteen thousand `[` raise RecursionError,
which the route did not expect and answered 500. The body is bounded (`client_max_size`,
413) and its nesting is measured before parsing, by a linear scan that skips strings, so
what reaches `json.loads` is at most `MAX_DEPTH` deep. Errors are short plain messages
carrying their HTTP status (400/413), never the parser's text.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 8


class BodyError(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def nesting_depth(text: str) -> int:
    """The deepest `[`/`{` nesting of a JSON text, strings skipped (escapes honoured)."""
    depth = deepest = 0
    in_string = escaped = False
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
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json_object(raw: bytes, *, max_depth: int = MAX_DEPTH,
                      max_bytes: int | None = None) -> dict[str, Any]:
    """A JSON object from a request body, or BodyError(400 or 413)."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise BodyError(413, "request body too large")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError(400, "body is not UTF-8") from None
    if nesting_depth(text) > max_depth:
        raise BodyError(400, "JSON nested too deeply")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise BodyError(400, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BodyError(400, "body must be a JSON object")
    return data
