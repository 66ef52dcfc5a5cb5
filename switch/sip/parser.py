"""Parse SIP messages from bytes (RFC 3261 sections 7, 18.3 and 25).

`parse_message` raises only `SipParseError`, whose status says how to answer. Every step
is a C-level split, a dictionary access or a linear regular expression, so the cost is
linear in the size of the input and small for the usual 300-600 byte message.
"""

from __future__ import annotations

import re

from .address import parse_name_addr
from .cseq import parse_cseq
from .errors import SipParseError
from .grammar import TOKEN_CLASS, is_word_sequence, parse_uint, split_commas
from .headers import (
    _NAME_CACHE,
    POSITION,
    SHARED_POSITIONS,
    SINGLE,
    Headers,
    Positions,
    canonical_name,
    name_and_key,
)
from .message import Message, Request, Response
from .uri import MAX_URI_LENGTH, AbsoluteUri, SipUri, parse_uri
from .via import Via, parse_via

MAX_MESSAGE_SIZE = 65535  # a UDP datagram; larger messages answer 513 (RFC 3261 18.1.1)
MAX_BODY_SIZE = 60000
MAX_HEADER_LINES = 256
# Request-URI schemes we route; others answer 416 (RFC 3261 8.2.2.1). urn: carries
# emergency service URNs (RFC 5031).
ROUTABLE_SCHEMES = frozenset(("sip", "sips", "tel", "urn"))
_MANDATORY = ("via", "from", "to", "call-id", "cseq")  # section 8.1.1
_HEADER_NAME_RE = re.compile(f"[{TOKEN_CLASS}]+")
# Request-Line = Method SP Request-URI SP SIP-Version CRLF (section 7.1): exactly one SP
# between the elements and none at the end (RFC 4475 3.1.2.9, 3.1.2.10).
_REQUEST_LINE_RE = re.compile(rf"([{TOKEN_CLASS}]+) ([^ ]+) ([^ ]+)")
_STATUS_CODE_RE = re.compile(r"[1-6][0-9][0-9]")
# Methods of RFC 3261 and its extensions: tokens, so the request line needs no regex for them.
_METHODS = frozenset(("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK",
                      "SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE"))


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
    # section 7.1: the version string is case-insensitive; 505 for another version (21.5.7)
    upper = version.upper()
    if upper == "SIP/2.0":
        return
    if upper.startswith("SIP/"):
        raise SipParseError(f"unsupported version {version[:16]!r}", 505)
    raise SipParseError("bad SIP version")


def _split_lines(head: str) -> list[str]:
    """Lines of the header section; CRLF is the terminator, a bare LF is tolerated."""
    if "\r" in head:
        lines = head.split("\r\n")
        # a CR or LF left inside a line is not a line terminator: reject it (section 7)
        if head.count("\r") != len(lines) - 1 or head.count("\n") != len(lines) - 1:
            raise SipParseError("stray CR or LF in header section")
        return lines
    return head.split("\n")


def _parse_headers(lines: list[str]) -> Headers:
    """Header lines (the start line excluded) to Headers, unfolding continuations
    (section 7.3.1).

    Single-valued headers are checked for repeats here (section 7.3.1, RFC 4475 3.1.4.7)
    while the index is built, which is cheaper than counting afterwards. The loop is the
    parser's hottest: a line whose name is a cached spelling (every cached spelling is a
    valid token, headers.py) costs a partition, two dict accesses and an append; anything
    else (an unknown or padded name, a continuation, an empty line, no colon) takes the
    general path below.
    """
    items: list[tuple[str, str]] = []
    index: dict[str, Positions] = {}
    position = POSITION
    cached_name = _NAME_CACHE.get
    append = items.append
    single = SINGLE
    for raw in lines:
        name, sep, value = raw.partition(":")
        hit = cached_name(name)
        if hit is None or not sep:
            if not raw:
                continue
            if raw[0] == " " or raw[0] == "\t":
                # header folding: the continuation joins the previous value with one SP
                if not items:
                    raise SipParseError("continuation line before any header")
                name, value = items[-1]
                tail = raw.strip(" \t")
                items[-1] = (name, f"{value} {tail}" if value and tail else value + tail)
                continue
            if not sep:
                raise SipParseError(f"malformed header line {raw[:40]!r}")
            name = name.rstrip(" \t")  # HCOLON = *( SP / HTAB ) ":" SWS
            if _HEADER_NAME_RE.fullmatch(name) is None:
                raise SipParseError(f"bad header name {name[:40]!r}")
            hit = name_and_key(name)
        key = hit[1]
        positions = index.get(key)
        if positions is None:
            n = len(items)
            index[key] = position[n] if n < SHARED_POSITIONS else (n,)
        else:
            if key in single:
                raise SipParseError(f"more than one {hit[0]} header")
            index[key] = (*positions, len(items))
        append((hit[0], value.strip(" \t")))
    if len(items) > MAX_HEADER_LINES:
        raise SipParseError("too many header lines")
    return Headers._from_parsed(tuple(items), index)


def _first(items: tuple[tuple[str, str], ...], index: dict[str, Positions], key: str) -> str:
    return items[index[key][0]][1]


def _validate(msg: Message, method: str | None) -> None:
    """Mandatory headers and their syntax (section 8.1.1, 8.2.2).

    The structured views are computed here straight from the header index and stored
    where `lazy` keeps them (the instance dict), the same values the lazy views would
    compute, in the same order, so a malformed message fails with the same error.
    """
    h = msg.headers
    index = h._index
    items = h._items
    for key in _MANDATORY:
        if key not in index:
            raise SipParseError(f"missing {canonical_name(key)}")
    views = msg.__dict__
    call_id = _first(items, index, "call-id").strip()
    if not call_id:
        raise SipParseError("missing Call-ID")
    views["call_id"] = call_id
    if not is_word_sequence(call_id):
        raise SipParseError("bad Call-ID")
    views["cseq"] = cseq = parse_cseq(_first(items, index, "cseq"))
    if method is not None and cseq.method != method:
        # section 8.1.1.5 and RFC 4475 3.1.2.17: the methods must match
        raise SipParseError("CSeq method does not match the request method")
    vias: list[Via] = []
    for i in index["via"]:  # what Message.vias computes: get_all("Via") split at commas
        value = items[i][1]
        if "," in value:
            vias.extend([parse_via(v) for v in split_commas(value)])
        else:
            value = value.strip()
            if value:
                vias.append(parse_via(value))
    views["vias"] = vias
    if not vias:
        raise SipParseError("empty Via")
    views["from_"] = parse_name_addr(_first(items, index, "from"))
    views["to"] = parse_name_addr(_first(items, index, "to"))
    positions = index.get("max-forwards")
    views["max_forwards"] = None if positions is None else parse_uint(
        items[positions[0]][1], "Max-Forwards", maximum=255)
    positions = index.get("expires")
    views["expires"] = None if positions is None else parse_uint(
        items[positions[0]][1], "Expires")


def parse_message(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE,
                  max_body: int = MAX_BODY_SIZE) -> Request | Response:
    """Parse one complete message (a datagram, or a frame cut by `StreamFramer`)."""
    try:
        return _parse(data, max_size, max_body)
    except SipParseError:
        raise
    except (ValueError, IndexError, UnicodeError, OverflowError, RecursionError) as exc:
        # defensive edge: a bug in a scanner must not escape as another exception type
        raise SipParseError(f"malformed message ({type(exc).__name__})") from None


def _parse(data: bytes, max_size: int, max_body: int) -> Request | Response:
    if len(data) > max_size:
        raise SipParseError("message too large", 513)
    # section 7.5: ignore empty lines before the start line
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty message")
    head_b, rest = _split_head(data)
    head = head_b.decode("utf-8", "surrogateescape")
    if "\x00" in head and head.count("\x00") != head.count("\\\x00"):
        # NUL is only allowed as a quoted-pair (section 25.1, RFC 4475 3.1.1.2)
        raise SipParseError("NUL in header section")
    lines = _split_lines(head)
    start = lines[0]
    if len(lines) > 1:
        del lines[0]
        headers = _parse_headers(lines)
    else:
        headers = Headers()

    cl_positions = headers._index.get("content-length")
    if cl_positions is not None:
        length = parse_uint(headers._items[cl_positions[0]][1], "Content-Length")
        if length > max_body:
            raise SipParseError("body too large", 413)
        if length > len(rest):
            # section 18.3: a datagram shorter than Content-Length is answered 400
            raise SipParseError("body shorter than Content-Length")
        # section 18.3: bytes past Content-Length are discarded (RFC 4475 3.1.1.8)
        body = rest[:length] if length != len(rest) else rest
    else:
        if len(rest) > max_body:
            raise SipParseError("body too large", 413)
        body = rest

    msg: Request | Response
    if start[:4].upper() == "SIP/":
        # Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (section 7.2)
        parts = start.split(" ", 2)
        if len(parts) < 2:
            raise SipParseError("bad status line")
        if parts[0] != "SIP/2.0":
            _check_version(parts[0])
        if _STATUS_CODE_RE.fullmatch(parts[1]) is None:
            raise SipParseError("bad status code")
        reason = parts[2] if len(parts) == 3 else ""
        msg = Response(int(parts[1]), reason, headers, body)
        _validate(msg, None)
        return msg

    parts = start.split(" ")
    if len(parts) == 3 and parts[0] in _METHODS and parts[1] and parts[2]:
        # the regular expression's answer for the usual methods: three non-empty
        # pieces without SP, the method a token
        method, uri_text, version = parts
    else:
        m = _REQUEST_LINE_RE.fullmatch(start)
        if m is None:
            raise SipParseError("bad request line")
        method, uri_text, version = m.groups()
    if version != "SIP/2.0":
        _check_version(version)
    if len(uri_text) > MAX_URI_LENGTH:
        raise SipParseError("Request-URI too long", 414)
    colon = uri_text.find(":")
    scheme = uri_text[:colon].lower() if colon > 0 else ""
    if scheme not in ROUTABLE_SCHEMES:
        if not scheme or uri_text[0] == "<":
            # RFC 4475 3.1.2.7: "<sip:...>" is a malformed Request-URI, not a scheme
            raise SipParseError("bad Request-URI")
        raise SipParseError(f"unsupported URI scheme {scheme[:16]!r}", 416)
    uri = parse_uri(uri_text)
    if isinstance(uri, SipUri) and uri.headers:
        # section 19.1.1 table 1: headers are not allowed in a Request-URI (RFC 4475 3.1.2.11)
        raise SipParseError("headers in the Request-URI")
    if isinstance(uri, AbsoluteUri) and ":" not in uri.rest:
        raise SipParseError("bad URN in the Request-URI")
    msg = Request(method, uri, headers, body)
    _validate(msg, method)
    return msg


class StreamFramer:
    """Cut a byte stream (TCP, TLS) into messages using Content-Length (RFC 3261 18.3).

    `feed()` returns complete frames; a CRLFCRLF between messages is a keep-alive ping
    (RFC 5626 section 4.4.1) and is returned as the frame b"\\r\\n\\r\\n" so the transport
    can answer with a CRLF pong; a lone CRLF (a pong) is dropped. After a SipParseError
    the stream cannot be resynchronised: the transport closes the connection.
    """

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buf = bytearray()
        self._max = max_size
        self._scanned = 0  # bytes of _buf already searched for the end of the head

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        buf = self._buf
        while buf:
            if buf[0] in (13, 10):
                # CRLF before a message: a ping (CRLFCRLF), a pong (CRLF), or a prefix
                # of either that needs more bytes to decide.
                if buf[:4] == b"\r\n\r\n":
                    frames.append(b"\r\n\r\n")
                    del buf[:4]
                elif buf[:2] == b"\r\n" and len(buf) >= 3 and buf[2] != 13:
                    del buf[:2]
                elif buf[:3] == b"\r\n\r" and len(buf) >= 4:
                    del buf[:3]  # "\r\n\r" then something else: stray bytes
                elif buf[0] == 10:
                    del buf[:1]  # a bare LF is never part of a message start
                elif len(buf) < 4 and b"\r\n\r\n".startswith(bytes(buf)):
                    return frames
                else:
                    del buf[:1]
                self._scanned = 0
                continue
            end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
            if end == -1:
                self._scanned = len(buf)
                if len(buf) > self._max:
                    raise SipParseError("header section too large", 513)
                return frames
            length = self._content_length(bytes(buf[:end]))
            total = end + 4 + length
            if total > self._max:
                raise SipParseError("message too large", 513)
            if len(buf) < total:
                self._scanned = end  # keep the head position: find() will meet it at once
                return frames
            frames.append(bytes(buf[:total]))
            del buf[:total]
            self._scanned = 0
        return frames

    @staticmethod
    def _content_length(head: bytes) -> int:
        found: int | None = None
        for line in head.split(b"\r\n")[1:]:
            name, sep, value = line.partition(b":")
            if not sep or line[:1] in (b" ", b"\t"):
                continue
            n = name.strip(b" \t").lower()
            if n == b"content-length" or n == b"l":
                v = value.strip(b" \t")
                if not v.isdigit() or len(v) > 10:
                    raise SipParseError("bad Content-Length")
                if found is not None:
                    raise SipParseError("more than one Content-Length")
                found = int(v)
        if found is None:
            # section 18.3: on a stream transport Content-Length is mandatory
            raise SipParseError("missing Content-Length on a stream transport")
        return found

    @property
    def pending(self) -> int:
        return len(self._buf)
