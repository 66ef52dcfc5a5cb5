"""Lexical rules shared by the header parsers (RFC 3261 section 25.1).

The scanners are compiled regular expressions whose alternatives never overlap, so the
backtracking engine still walks each input a bounded number of times: hostile input costs
linear time (checked by tests/sip/test_parser_fuzz.py), and the common case runs in C.
"""

from __future__ import annotations

import re

from .errors import SipParseError

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CLASS = r"A-Za-z0-9\-.!%*_+`'~"
TOKEN_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)
# word additionally allows the separators used in Call-ID (section 25.1).
WORD_CHARS = TOKEN_CHARS | frozenset('()<>:\\"/[]?{}')
# quoted-string body: qdtext or quoted-pair; the two alternatives never overlap.
QUOTED = r'"(?:[^"\\]|\\.)*"'

_TOKEN_RE = re.compile(f"[{TOKEN_CLASS}]+")
_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALLID_RE = re.compile(f"{_WORD}(?:@{_WORD})?")

Params = tuple[tuple[str, str | None], ...]

# generic-param = token [ EQUAL gen-value ]; gen-value = token / host / quoted-string
# (section 25.1). SEMI and EQUAL allow LWS around them. An unquoted value stops at LWS,
# ';', ',' or '"' so that a stray character after it is an error, not part of the value.
_HEADER_PARAM_RE = re.compile(
    rf"[ \t]*;[ \t]*([{TOKEN_CLASS}]+)[ \t]*(?:=[ \t]*({QUOTED}|[^\s;\",]+))?[ \t]*", re.S
)
# uri-parameter names and values are 1*paramchar: unreserved, escaped and "[]/:&+$"
# (section 25.1, RFC 3261 19.1.1); LWS is not allowed inside a URI.
_URI_PARAM_RE = re.compile(
    r";([A-Za-z0-9\-_.!~*'()%\[\]/:&+$]+)(?:=([A-Za-z0-9\-_.!~*'()%\[\]/:&+$]+))?"
)
# The usual shape of parameters: no LWS, no quoted value (";branch=z9hG4bK..;rport",
# ";tag=...", ";lr"). One scan for a character that no simple value may hold, then split
# and partition cut the text, checking each name is a token (a set of the usual names
# first) and each '=' has a value: what the general loop accepts and returns for that
# shape. A regular expression repeating (;name=value) did the same check 3-4 times slower
# (the engine's bookkeeping per repetition).
_NOT_SIMPLE_HEADER_RE = re.compile(r'[\s",]')  # ';' cannot be in a piece after split
_URI_PARAM_TEXT_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()%\[\]/:&+$;=]*")
_USUAL_NAMES = frozenset((
    "branch", "rport", "received", "maddr", "ttl", "tag", "lr", "transport", "user",
    "expires", "q", "method", "ob", "gr", "alias", "comp", "reg-id", "+sip.instance",
    "phone", "isub", "ext", "phone-context",
))


def is_token(text: str) -> bool:
    return _TOKEN_RE.fullmatch(text) is not None


def is_word_sequence(text: str) -> bool:
    """callid = word [ "@" word ] (section 25.1)."""
    return _CALLID_RE.fullmatch(text) is not None


def scan_quoted(text: str, start: int) -> int:
    """Given text[start] == '"', return the index just past the closing quote.

    quoted-pair (backslash escapes) are honoured (section 25.1).
    """
    i = start + 1
    n = len(text)
    while i < n:
        q = text.find('"', i)
        if q == -1:
            break
        # count the backslashes right before the quote: an odd number escapes it
        b = q - 1
        while b >= i and text[b] == "\\":
            b -= 1
        if (q - 1 - b) % 2 == 0:
            return q + 1
        i = q + 1
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


def parse_params(text: str, *, lower_names: bool = True, uri: bool = False) -> Params:
    """Parse `;name[=value]` pairs. `text` starts at the first ';' (or is empty).

    Header parameters (`uri=False`) allow LWS around ';' and '=' and quoted values (kept
    quoted); URI parameters (`uri=True`) are 1*paramchar with no LWS (RFC 3261 19.1.1).
    """
    if not text:
        return ()
    simple = split_simple_params(text, lower_names, uri)
    if simple is not None:
        return simple
    return _parse_params_general(text, lower_names, uri)


def split_simple_params(text: str, lower_names: bool = True, uri: bool = False) -> Params | None:
    """`parse_params` for the simple shape (see _USUAL_NAMES), None for any other text."""
    if text[:1] != ";":
        return None
    if uri:
        if _URI_PARAM_TEXT_RE.fullmatch(text) is None:
            return None
    elif _NOT_SIMPLE_HEADER_RE.search(text) is not None:
        return None
    out: list[tuple[str, str | None]] = []
    for piece in text[1:].split(";"):
        name, sep, value = piece.partition("=")
        if sep and not value:
            return None  # "name=" with no value: the general loop reports it
        if uri:
            # uri-parameter: pname and pvalue are 1*paramchar (the text was checked), and
            # '=' is not a paramchar
            if not name or "=" in value:
                return None
        elif name not in _USUAL_NAMES and _TOKEN_RE.fullmatch(name) is None:
            return None
        out.append((name.lower() if lower_names else name, value or None))
    return tuple(out)


def _parse_params_general(text: str, lower_names: bool, uri: bool) -> Params:
    """Every shape parse_params accepts, one regular expression match per parameter."""
    rx = _URI_PARAM_RE if uri else _HEADER_PARAM_RE
    out: list[tuple[str, str | None]] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = rx.match(text, pos)
        if m is None:
            if not uri and not text[pos:].strip(" \t"):
                break
            raise SipParseError(f"bad parameter near {text[pos:pos + 30]!r}")
        name = m.group(1)
        out.append((name.lower() if lower_names else name, m.group(2)))
        pos = m.end()
    return tuple(out)


def format_params(params: Params) -> str:
    if not params:
        return ""
    return "".join([f";{k}" if v is None else f";{k}={v}" for k, v in params])


def get_param(params: Params, name: str) -> str | None:
    for k, v in params:
        if k == name:
            return v if v is not None else ""
    return None


# Canonical spellings of the numbers headers carry most (Content-Length, Max-Forwards,
# Expires): one dict access instead of the checks.
_SMALL_UINTS: dict[str, int] = {str(i): i for i in (*range(1025), 1800, 3600, 7200)}


def parse_uint(text: str, what: str, *, maximum: int = 2**32 - 1) -> int:
    """A decimal number of at most `maximum` (delta-seconds and friends, section 25.1)."""
    v = _SMALL_UINTS.get(text)
    if v is not None and v <= maximum:
        return v  # "0", "70", "3600": the general check below gives the same number
    t = text.strip(" \t")
    # isdigit alone accepts other scripts' digits and superscripts: ASCII only (25.1 DIGIT)
    if not (t.isdigit() and t.isascii() and len(t) <= 10):
        raise SipParseError(f"{what} is not a number in range: {t[:20]!r}")
    v = int(t)
    if v > maximum:
        raise SipParseError(f"{what} out of range")
    return v
