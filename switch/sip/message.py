"""SIP requests and responses (RFC 3261 section 7).

Messages are immutable. Structured views of the headers every layer needs (Via, From, To,
Call-ID, CSeq, Contact, Expires) are parsed once on first use and cached; the parser
touches the mandatory ones (Via, From, To, Call-ID, CSeq, Max-Forwards, Expires) so that a
message it returns is known to be well formed there. Contact is parsed lazily: a layer that
reads `.contacts` on a malformed one gets SipParseError(400) and answers with it;
`check_structure()` forces every view at once.
"""

from __future__ import annotations

from .address import ContactStar, NameAddr, parse_name_addr
from .cseq import CSeq, parse_cseq
from .errors import SipParseError
from .grammar import parse_uint
from .headers import Headers
from .lazy import lazy
from .uri import Uri
from .via import Via, parse_via

SIP_VERSION = "SIP/2.0"


class Message:
    """Common part of requests and responses."""

    headers: Headers
    body: bytes

    def __init__(self, headers: Headers, body: bytes) -> None:
        self.headers = headers
        self.body = body

    # -- structured views (each raises SipParseError with status 400 when malformed) --

    @lazy
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        vias = self.vias
        if not vias:
            raise SipParseError("missing Via")
        return vias[0]

    @lazy
    def call_id(self) -> str:
        v = self.headers.get_key("call-id")
        if v is None or not v.strip():
            raise SipParseError("missing Call-ID")
        return v.strip()

    @lazy
    def cseq(self) -> CSeq:
        v = self.headers.get_key("cseq")
        if v is None:
            raise SipParseError("missing CSeq")
        return parse_cseq(v)

    @lazy
    def from_(self) -> NameAddr:
        v = self.headers.get_key("from")
        if v is None:
            raise SipParseError("missing From")
        return parse_name_addr(v)

    @lazy
    def to(self) -> NameAddr:
        v = self.headers.get_key("to")
        if v is None:
            raise SipParseError("missing To")
        return parse_name_addr(v)

    @lazy
    def contacts(self) -> list[NameAddr] | ContactStar:
        if "contact" not in self.headers._index:
            return []  # the usual request (OPTIONS, BYE...): no list to split
        values = self.headers.get_all("Contact")
        if "*" in values:
            if len(values) != 1:
                raise SipParseError("Contact '*' mixed with other contacts")
            return ContactStar()
        return [parse_name_addr(v) for v in values]

    @lazy
    def expires(self) -> int | None:
        v = self.headers.get_key("expires")
        return None if v is None else parse_uint(v, "Expires")

    @lazy
    def max_forwards(self) -> int | None:
        v = self.headers.get_key("max-forwards")
        return None if v is None else parse_uint(v, "Max-Forwards", maximum=255)

    def check_structure(self) -> None:
        """Parse every structured view now; raises SipParseError like the lazy views."""
        _ = self.vias, self.call_id, self.cseq, self.from_, self.to
        _ = self.max_forwards, self.expires, self.contacts

    @property
    def content_type(self) -> str | None:
        v = self.headers.get_key("content-type")
        return None if v is None else v.split(";", 1)[0].strip().lower()

    # -- serialisation --

    def start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Serialise; Content-Length always states the real body length (section 18.3)."""
        lines = [self.start_line()]
        headers = self.headers
        if "content-length" in headers._index:  # a parsed message: drop the stated length
            lines.extend([f"{n}: {v}" for n, v in headers._items if n != "Content-Length"])
        else:  # built here (make_response...): no item is named Content-Length
            lines.extend([f"{n}: {v}" for n, v in headers._items])
        lines.append(f"Content-Length: {len(self.body)}\r\n\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def _key(self) -> tuple[object, ...]:
        items = tuple(it for it in self.headers.items() if it[0] != "Content-Length")
        return (self.start_line(), items, self.body)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


class Request(Message):
    def __init__(self, method: str, uri: Uri, headers: Headers, body: bytes = b"") -> None:
        self.headers = headers  # Message.__init__ inlined: one call fewer per message
        self.body = body
        self.method = method
        self.uri = uri

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {SIP_VERSION}"

    def replace(self, *, uri: Uri | None = None, headers: Headers | None = None,
                body: bytes | None = None) -> Request:
        return Request(self.method, self.uri if uri is None else uri,
                       self.headers if headers is None else headers,
                       self.body if body is None else body)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    def __init__(self, status: int, reason: str, headers: Headers, body: bytes = b"") -> None:
        self.headers = headers  # Message.__init__ inlined: one call fewer per message
        self.body = body
        self.status = status
        self.reason = reason

    def start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"

    def replace(self, *, headers: Headers | None = None, body: bytes | None = None) -> Response:
        return Response(self.status, self.reason,
                        self.headers if headers is None else headers,
                        self.body if body is None else body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


SipMessage = Request | Response
