"""Peer-supplied text made safe for a log line (issue 20 item 6).

A user name, a header value or a location sent by a peer may hold a newline, a carriage
return, NUL or terminal escape sequences: logged raw, "x\\nWARNING auth guard ... BLOCKED"
forges a whole log line. `printable` keeps ordinary text as it is and escapes everything
else the way `repr` does (`\\n`, `\\x00`, `\\u2028`), and bounds the length.
"""

from __future__ import annotations

MAX_LOGGED = 200


def printable(value: object, limit: int = MAX_LOGGED) -> str:
    """`value` as one log-safe line: no control or separator characters, at most `limit`
    characters of it (then `...`). Backslashes are doubled so an escape is never ambiguous."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable() and "\\" not in text:
        return text  # the common case: nothing to escape
    out: list[str] = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])  # '\\n', '\\x00', '\\u2028'
    return "".join(out)
