"""Multipart bodies (RFC 2046 section 5.1, RFC 5621 for SIP).

Emergency calls carry SDP and a PIDF-LO location object in one multipart/mixed body
(RFC 6442); this module splits and builds such bodies. Parts are kept as bytes: the
caller decodes them according to their own Content-Type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SipParseError
from .grammar import get_param, parse_params, unquote

# RFC 2046 5.1.1: boundary := 0*69<bchars> bcharsnospace, at most 70 characters.
_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_TOKEN_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'+_\-.]+")
MAX_PARTS = 64


@dataclass(frozen=True, slots=True)
class BodyPart:
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """First value of a part header; names compare case-insensitively."""
        low = name.lower()
        for n, v in self.headers:
            if n.lower() == low:
                return v
        return None

    @property
    def content_type(self) -> str:
        """The media type in lower case; RFC 2046 5.1: a part without one is text/plain."""
        v = self.header("Content-Type")
        return "text/plain" if v is None else v.split(";", 1)[0].strip().lower()


def _media_type(content_type_header: str) -> tuple[str, str]:
    mtype, _, ptext = content_type_header.partition(";")
    mtype = mtype.strip(" \t").lower()
    params = parse_params(";" + ptext) if ptext else ()
    raw = get_param(params, "boundary")
    if not raw:
        raise SipParseError("multipart body without a boundary")
    boundary = unquote(raw) if raw[0] == '"' else raw
    if _BOUNDARY_RE.fullmatch(boundary) is None:
        raise SipParseError("bad multipart boundary")
    return mtype, boundary


def _parse_part(raw: bytes) -> BodyPart:
    # A part is MIME headers, an empty line, then the content (RFC 2046 5.1.1); a part
    # that starts with CRLF has no headers.
    if not raw:
        return BodyPart((), b"")
    if raw.startswith(b"\r\n"):
        return BodyPart((), raw[2:])
    end = raw.find(b"\r\n\r\n")
    if end == -1:
        raise SipParseError("multipart part without a header/body separator")
    head = raw[:end].decode("utf-8", "surrogateescape")
    items: list[tuple[str, str]] = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and items:
            name, value = items[-1]
            items[-1] = (name, f"{value} {line.strip()}")  # folding, as in SIP headers
            continue
        name, sep, value = line.partition(":")
        name = name.strip(" \t")
        if not sep or not name or " " in name:
            raise SipParseError("bad header line in a multipart part")
        items.append((name, value.strip(" \t")))
    return BodyPart(tuple(items), raw[end + 4 :])


def parse_multipart(content_type_header: str, body: bytes) -> list[BodyPart]:
    """Split a multipart body into its parts; raises SipParseError (400) when malformed."""
    mtype, boundary = _media_type(content_type_header)
    if not mtype.startswith("multipart/"):
        raise SipParseError(f"not a multipart media type: {mtype[:40]!r}")
    dash = b"--" + boundary.encode("ascii")
    delim = b"\r\n" + dash
    # The first delimiter may open the body without the CRLF; anything before it is the
    # preamble, which is ignored.
    if body.startswith(dash):
        pos = len(dash)
    else:
        at = body.find(delim)
        if at == -1:
            raise SipParseError("multipart boundary not found")
        pos = at + len(delim)
    parts: list[BodyPart] = []
    while True:
        if body[pos : pos + 2] == b"--":
            return parts  # close-delimiter; the epilogue is ignored
        # transport-padding (LWSP) then CRLF ends the delimiter line
        eol = body.find(b"\r\n", pos)
        if eol == -1 or body[pos:eol].strip(b" \t"):
            raise SipParseError("bad multipart delimiter line")
        start = eol + 2
        nxt = body.find(delim, start)
        if nxt == -1:
            raise SipParseError("multipart body without a close delimiter")
        parts.append(_parse_part(body[start:nxt]))
        if len(parts) > MAX_PARTS:
            raise SipParseError("too many multipart parts")
        pos = nxt + len(delim)


def build_multipart(parts: list[BodyPart] | tuple[BodyPart, ...], boundary: str,
                    subtype: str = "mixed") -> tuple[str, bytes]:
    """(Content-Type value, body) for `parts` joined with `boundary` (RFC 2046 5.1.1).

    Raises ValueError when the boundary is malformed or occurs inside a part: that is a
    mistake of the caller, not of a peer.
    """
    if _BOUNDARY_RE.fullmatch(boundary) is None:
        raise ValueError(f"bad multipart boundary {boundary!r}")
    dash = b"--" + boundary.encode("ascii")
    out: list[bytes] = []
    for part in parts:
        if dash in part.body:
            raise ValueError("the boundary occurs inside a part")
        head = "".join(f"{n}: {v}\r\n" for n, v in part.headers).encode("utf-8")
        out.append(dash + b"\r\n" + head + b"\r\n" + part.body + b"\r\n")
    out.append(dash + b"--\r\n")
    shown = boundary if _TOKEN_BOUNDARY_RE.fullmatch(boundary) else f'"{boundary}"'
    return f"multipart/{subtype};boundary={shown}", b"".join(out)
