"""Lexical rules shared by the header parsers (RFC 3261 section 25.1).

Every scanner here walks its input once, left to right, so hostile input costs linear time.
"""

from __future__ import annotations

from .errors import SipParseError

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)
# word additionally allows separators used in Call-ID (section 25.1).
WORD_CHARS = TOKEN_CHARS | frozenset('()<>:\\"/[]?{}')

Params = tuple[tuple[str, str | None], ...]


def is_token(text: str) -> bool:
    return bool(text) and all(c in TOKEN_CHARS for c in text)


def is_word_sequence(text: str) -> bool:
    """callid = word [ "@" word ] (section 25.1)."""
    if not text:
        return False
    parts = text.split("@")
    if len(parts) > 2:
        return False
    return all(p and all(c in WORD_CHARS for c in p) for p in parts)


def scan_quoted(text: str, start: int) -> int:
    """Given text[start] == '"', return the index just past the closing quote.

    quoted-pair (backslash escapes) are honoured (section 25.1).
    """
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    raise SipParseError("unterminated quoted string")


def unquote(text: str) -> str:
    """Content of a quoted-string with quoted-pairs resolved."""
    inner = text[1:-1]
    if "\\" not in inner:
        return inner
    out: list[str] = []
    i = 0
    while i < len(inner):
        c = inner[i]
        if c == "\\" and i + 1 < len(inner):
            out.append(inner[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_commas(text: str) -> list[str]:
    """Split a header value at commas that are outside quotes and angle brackets."""
    if "," not in text:
        stripped = text.strip()
        return [stripped] if stripped else []
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i = scan_quoted(text, i)
            continue
        if c == "<":
            depth += 1
        elif c == ">":
            depth = max(0, depth - 1)
        elif c == "," and depth == 0:
            part = text[start:i].strip()
            if part:
                parts.append(part)
            start = i + 1
        i += 1
    part = text[start:].strip()
    if part:
        parts.append(part)
    return parts


def parse_params(text: str, *, lower_names: bool = True) -> Params:
    """Parse `;name[=value]` pairs. `text` starts at the first ';' (or is empty).

    Values may be tokens, quoted strings (kept quoted) or host references.
    """
    out: list[tuple[str, str | None]] = []
    i = 0
    n = len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] != ";":
            raise SipParseError(f"expected ';' in parameters: {text[:40]!r}")
        i += 1
        # name
        j = i
        while j < n and text[j] not in "=;":
            if text[j] == '"':
                raise SipParseError("quote in parameter name")
            j += 1
        name = text[i:j].strip()
        if not name or not is_token(name):
            raise SipParseError(f"bad parameter name {name[:40]!r}")
        if lower_names:
            name = name.lower()
        if j < n and text[j] == "=":
            k = j + 1
            while k < n and text[k] in " \t":
                k += 1
            if k < n and text[k] == '"':
                end = scan_quoted(text, k)
                value: str | None = text[k:end]
                i = end
            else:
                end = k
                while end < n and text[end] != ";":
                    end += 1
                value = text[k:end].strip()
                if not value:
                    raise SipParseError(f"empty value for parameter {name!r}")
                i = end
        else:
            value = None
            i = j
        out.append((name, value))
    return tuple(out)


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def get_param(params: Params, name: str) -> str | None:
    for k, v in params:
        if k == name:
            return v if v is not None else ""
    return None


def parse_uint(text: str, what: str, *, maximum: int = 2**32 - 1) -> int:
    t = text.strip()
    if not t or not t.isdigit() or not t.isascii():
        raise SipParseError(f"{what} is not a number: {t[:20]!r}")
    if len(t) > 10:
        raise SipParseError(f"{what} out of range")
    v = int(t)
    if v > maximum:
        raise SipParseError(f"{what} out of range")
    return v
