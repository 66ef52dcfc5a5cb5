"""The auth-param list of a challenge or of credentials: `Digest a=b, c="d"`. Pure.

Grammar (RFC 7235 section 2.1, RFC 3261 section 25.1, RFC 7616 section 3.4): a scheme
token, then auth-params `name = token / quoted-string` separated by commas, with optional
spaces and tabs around `=` and `,`; a quoted-string may hold quoted-pairs (`\\"`, `\\\\`).
What this module refuses, whoever sends it: a parameter given twice (RFC 7616 section 3.4:
each directive at most once; a second `response` or `realm` must not be able to shadow the
first), text after a quoted value before the next comma, an unterminated quoted-string,
whitespace inside a name or a token. Names are case-insensitive (lowercased here).

Two scanners give the same answer:

- `_scan_exact`, one compiled regex per parameter, handles every input (quoted-pairs, tabs,
  control characters, all the errors);
- `_scan_common`, for what phones send (no backslash, no whitespace but spaces outside
  quoted-strings): splits on the quote marks and then on commas, a handful of C string
  operations per parameter (a profile at 3,300 registrations/s put the regex scanner at
  10 % of the switch's CPU, about 20 us a header; this one costs a quarter of that). Whenever it meets anything it does not handle, including every error, it
  returns None and the exact scanner decides, so errors and their messages are the exact
  scanner's. A differential test (tests/devices/test_auth_params.py) holds the two equal.
"""

from __future__ import annotations

import re


class DigestParseError(ValueError):
    """Malformed credentials or challenge (RFC 7616 section 3.4 syntax)."""


# One auth-param: name = token / quoted-string, then a comma or the end. The alternatives
# cannot match the same text, so the scan stays linear on hostile input.
_PARAM_RE = re.compile(r'[ \t]*([^=\s,"]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^,\s"]*)[ \t]*(?:,|$)')
_UNESCAPE_RE = re.compile(r"\\(.)")
_SCHEME_RE = re.compile(r"(\S+)[ \t]*(.*)", re.S)


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """Split `Digest a=b, c="d"` into ("digest", {"a": "b", "c": "d"}); names lowercased.

    Quoted-pairs honoured (RFC 7235 section 2.1 auth-param, RFC 3261 25.1); raises
    DigestParseError on malformed text or a duplicate parameter."""
    head = _SCHEME_RE.match(value.strip())
    if head is None:
        raise DigestParseError("empty credentials")
    scheme, rest = head.group(1).lower(), head.group(2)
    params = _scan_common(rest)
    if params is None:
        params = _scan_exact(rest)
    return scheme, params


def _scan_exact(rest: str) -> dict[str, str]:
    params: dict[str, str] = {}
    pos, n = 0, len(rest)
    while pos < n:
        if rest[pos] in " \t,":
            pos += 1
            continue
        m = _PARAM_RE.match(rest, pos)
        if m is None:
            raise DigestParseError("malformed auth-param")
        name = m.group(1).lower()
        raw = m.group(2)
        if raw.startswith('"'):
            val = _UNESCAPE_RE.sub(r"\1", raw[1:-1]) if "\\" in raw else raw[1:-1]
        else:
            val = raw
        if name in params:
            raise DigestParseError(f"duplicate auth-param {name}")
        params[name] = val
        pos = m.end()
    return params


def _scan_common(rest: str) -> dict[str, str] | None:
    """The params when `rest` is well formed and has no backslash and no whitespace but
    spaces outside quoted-strings; None for anything else (then `_scan_exact` decides,
    errors included).

    Without a backslash there is no quoted-pair, so every `"` opens or closes a
    quoted-string: after `split('"')` the odd segments are the quoted values and the even
    ones the text around them. The even ones joined by `"` (which they cannot contain) are
    the list with each quoted value replaced by one `"`: split on commas, each element is
    `name = token` or `name = "`. Printable text has no whitespace but the space (every
    other whitespace character is a control or separator character), so stripping spaces
    is stripping the optional whitespace of the grammar, and a space left inside a name or
    a token makes it malformed. Checking the skeleton only (a third of a header) is enough:
    inside a quoted-string anything but `"` and `\\` is allowed."""
    if "\\" in rest:
        return None
    segments = rest.split('"')
    if not len(segments) & 1:
        return None  # an odd number of quote marks: unterminated quoted-string
    quoted = segments[1::2]
    skeleton = '"'.join(segments[::2])
    if not skeleton.isprintable():
        return None
    params: dict[str, str] = {}
    q = 0
    for piece in skeleton.split(","):
        name, eq, val = piece.partition("=")
        if not eq:
            if piece.strip(" "):
                return None  # a bare word, or a quoted-string without a name
            continue  # an empty list element (`a=b,,c=d`)
        name = name.strip(" ")
        val = val.strip(" ")
        if val == '"':
            val = quoted[q]
            q += 1
        elif '"' in val or " " in val:
            return None  # text before or after a quoted value, or two words
        if not name or " " in name or '"' in name:
            return None
        name = name.lower()
        if name in params:
            return None  # a duplicate: the exact scanner raises
        params[name] = val
    return params
