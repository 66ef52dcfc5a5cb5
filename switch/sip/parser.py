"""Parse SIP messages from bytes (RFC 3261 sections 7, 18.3 and 25).

`parse_message` raises only `SipParseError`, whose status says how to answer. Every step
is a split or a single scan, so the cost is linear in the size of the input.
"""

from __future__ import annotations

from .errors import SipParseError
from .grammar import is_token, is_word_sequence, parse_uint
from .headers import SINGLE, Headers, canonical_name
from .message import Message, Request, Response
from .uri import AbsoluteUri, parse_uri

MAX_MESSAGE_SIZE = 65535  # a UDP datagram; larger messages answer 513 (RFC 3261 18.1.1)
MAX_BODY_SIZE = 60000
MAX_HEADER_LINES = 256
# Request-URI schemes we route; others answer 416 (RFC 3261 8.2.2.1). urn: carries
# emergency service URNs (RFC 5031).
ROUTABLE_SCHEMES = frozenset(("sip", "sips", "tel", "urn"))


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    end = data.find(b"\r\n\r\n")
    if end != -1:
        return data[:end], data[end + 4 :]
    end = data.find(b"\n\n")
    if end != -1:
        return data[:end], data[end + 2 :]
    # A datagram may end right after the last header line's CRLF with no blank line.
    if data.endswith(b"\r\n"):
        return data[:-2], b""
    raise SipParseError("no end of header section")


def _check_version(version: str) -> None:
    if version.upper() == "SIP/2.0":
        return
    if version.upper().startswith("SIP/"):
        raise SipParseError(f"unsupported version {version[:16]!r}", 505)
    raise SipParseError("bad SIP version")


def _parse_header_lines(lines: list[str]) -> Headers:
    items: list[tuple[str, str]] = []
    for raw in lines:
        if not raw:
            continue
        if raw[0] in " \t":
            # header folding (RFC 3261 7.3.1): continuation joins with one space
            if not items:
                raise SipParseError("continuation line before any header")
            name, value = items[-1]
            items[-1] = (name, (value + " " + raw.strip()).strip())
            continue
        colon = raw.find(":")
        if colon <= 0:
            raise SipParseError(f"malformed header line {raw[:40]!r}")
        name = raw[:colon].rstrip(" \t")
        if not is_token(name):
            raise SipParseError(f"bad header name {name[:40]!r}")
        items.append((canonical_name(name), raw[colon + 1 :].strip(" \t")))
    if len(items) > MAX_HEADER_LINES:
        raise SipParseError("too many header lines")
    return Headers(items, canonical=True)


def _validate(msg: Message, method: str | None) -> None:
    h = msg.headers
    for name in SINGLE:
        if h.count(name) > 1:
            raise SipParseError(f"more than one {canonical_name(name)} header")
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if name not in h:
            raise SipParseError(f"missing {name}")
    if not is_word_sequence(msg.call_id):
        raise SipParseError("bad Call-ID")
    cseq = msg.cseq
    if method is not None and cseq.method != method:
        raise SipParseError("CSeq method does not match the request method")
    if not msg.vias:
        raise SipParseError("empty Via")
    _ = msg.from_, msg.to, msg.max_forwards, msg.expires
    if "Contact" in h:
        _ = msg.contacts


def parse_message(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE,
                  max_body: int = MAX_BODY_SIZE) -> Request | Response:
    """Parse one complete message (a datagram, or a frame cut by `StreamFramer`)."""
    try:
        return _parse(data, max_size, max_body)
    except SipParseError:
        raise
    except (ValueError, IndexError, UnicodeError, OverflowError) as exc:  # defensive edge
        raise SipParseError(f"malformed message ({type(exc).__name__})") from None


def _parse(data: bytes, max_size: int, max_body: int) -> Request | Response:
    if len(data) > max_size:
        raise SipParseError("message too large", 513)
    # RFC 3261 7.5: ignore empty lines before the start line
    data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty message")
    head_b, rest = _split_head(data)
    head = head_b.decode("utf-8", "surrogateescape")
    lines = head.split("\n")
    if "\r" in head:
        lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    if any("\r" in ln or "\x00" in ln for ln in lines):
        raise SipParseError("stray CR or NUL in header section")
    start = lines[0]
    headers = _parse_header_lines(lines[1:])

    cl_text = headers.get("Content-Length")
    if cl_text is not None:
        length = parse_uint(cl_text, "Content-Length")
        if length > max_body:
            raise SipParseError("body too large", 413)
        if length > len(rest):
            # RFC 3261 18.3: a datagram shorter than Content-Length is answered 400
            raise SipParseError("body shorter than Content-Length")
        body = rest[:length]
    else:
        if len(rest) > max_body:
            raise SipParseError("body too large", 413)
        body = rest

    msg: Request | Response
    if start.startswith("SIP/") or start[:4].upper() == "SIP/":
        parts = start.split(" ", 2)
        if len(parts) < 2:
            raise SipParseError("bad status line")
        _check_version(parts[0])
        code = parts[1]
        if len(code) != 3 or not code.isdigit() or not code.isascii() or not 100 <= int(code) <= 699:
            raise SipParseError("bad status code")
        reason = parts[2] if len(parts) == 3 else ""
        msg = Response(int(code), reason, headers, body)
        _validate(msg, None)
        return msg

    parts = start.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError("bad request line")
    method, uri_text, version = parts
    _check_version(version)
    if not is_token(method):
        raise SipParseError("bad method")
    if uri_text.startswith("<"):
        raise SipParseError("Request-URI in angle brackets")
    colon = uri_text.find(":")
    scheme = uri_text[:colon].lower() if colon > 0 else ""
    if scheme not in ROUTABLE_SCHEMES:
        if not scheme:
            raise SipParseError("bad Request-URI")
        raise SipParseError(f"unsupported URI scheme {scheme[:16]!r}", 416)
    uri = parse_uri(uri_text)
    if isinstance(uri, AbsoluteUri) and not uri.rest:
        raise SipParseError("bad Request-URI")
    msg = Request(method, uri, headers, body)
    _validate(msg, method)
    return msg


class StreamFramer:
    """Cut a byte stream (TCP, TLS) into messages using Content-Length (RFC 3261 18.3).

    `feed()` returns complete frames; a lone CRLFCRLF is a keep-alive ping (RFC 5626
    section 4.4.1) and is returned as the frame b"\\r\\n\\r\\n" so the transport can pong.
    """

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buf = bytearray()
        self._max = max_size

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        while True:
            buf = self._buf
            if buf[:4] == b"\r\n\r\n":
                frames.append(b"\r\n\r\n")
                del buf[:4]
                continue
            # strip stray CRLF between messages (a lone CRLF is a pong)
            i = 0
            while i < len(buf) and buf[i] in (13, 10) and buf[i : i + 4] != b"\r\n\r\n":
                i += 1
            if i:
                del buf[:i]
                continue
            end = buf.find(b"\r\n\r\n")
            if end == -1:
                if len(buf) > self._max:
                    raise SipParseError("header section too large", 513)
                return frames
            length = self._content_length(bytes(buf[:end]))
            total = end + 4 + length
            if total > self._max:
                raise SipParseError("message too large", 513)
            if len(buf) < total:
                return frames
            frames.append(bytes(buf[:total]))
            del buf[:total]

    @staticmethod
    def _content_length(head: bytes) -> int:
        for line in head.split(b"\r\n")[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            n = name.strip().lower()
            if n in (b"content-length", b"l"):
                v = value.strip()
                if not v.isdigit() or len(v) > 10:
                    raise SipParseError("bad Content-Length")
                return int(v)
        # RFC 3261 18.3: on a stream transport Content-Length is mandatory
        raise SipParseError("missing Content-Length on a stream transport")

    @property
    def pending(self) -> int:
        return len(self._buf)
