"""SDP, the Session Description Protocol (RFC 8866, formerly RFC 4566): parse and serialise.

The model is a tree of frozen dataclasses that keeps every line it understood, in order,
so that `serialize(parse_sdp(x))` reproduces `x` (with CRLF line ends). Attributes stay a
list of (name, value) pairs; the typed views a SIP core needs (rtpmap, fmtp, ptime,
direction, crypto, telephone-event) are computed from them.

Errors: a body that is not syntactically valid SDP raises `SdpError`, a `SipError` with
status 400 (RFC 3261 21.4.1: the request is malformed). A description that parses but that
we cannot accept (no common codec, unknown network type) is refused with 488 by
`offeranswer`, not here. An SDP in an ACK cannot be answered: the caller ends the call.

Parsing is one split and one pass over the lines, each line a bounded amount of work.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from switch.sip import SipError

MAX_SDP_SIZE = 60000
MAX_MEDIA = 64

# RFC 8866 section 5: the order of the session-level and media-level lines.
_SESSION_ORDER = "vosiuepcbtrzkam"
_MEDIA_ORDER = "micbka"
_KNOWN = frozenset(_SESSION_ORDER)

# Static payload types of RFC 3551 table 4 that a telephony core meets.
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000), 3: ("GSM", 8000), 4: ("G723", 8000), 8: ("PCMA", 8000),
    9: ("G722", 8000), 13: ("CN", 8000), 18: ("G729", 8000),
}


class SdpError(SipError):
    """Syntactically invalid SDP; `status` is 400 (see the module docstring)."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(status, f"Bad SDP: {reason}")


class Direction(Enum):
    """Media direction attributes (RFC 3264 section 5.1, RFC 8866 6.7)."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @staticmethod
    def of(sends: bool, receives: bool) -> Direction:
        if sends and receives:
            return Direction.SENDRECV
        if sends:
            return Direction.SENDONLY
        if receives:
            return Direction.RECVONLY
        return Direction.INACTIVE

    def inverted(self) -> Direction:
        """What the other side does: sendonly <-> recvonly (RFC 3264 section 6.1)."""
        return Direction.of(self.receives, self.sends)


_DIRECTIONS = {d.value: d for d in Direction}


@dataclass(frozen=True, slots=True)
class Origin:
    """o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>."""

    username: str
    session_id: str
    session_version: int
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def __str__(self) -> str:
        return (f"{self.username} {self.session_id} {self.session_version} "
                f"{self.nettype} {self.addrtype} {self.address}")


@dataclass(frozen=True, slots=True)
class Connection:
    """c=<nettype> <addrtype> <connection-address>; `address` keeps any /ttl suffix."""

    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    @property
    def host(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def is_hold_address(self) -> bool:
        """c=0.0.0.0, the RFC 2543 way of putting a call on hold (RFC 3264 section 8.4)."""
        return self.host in ("0.0.0.0", "::")

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True, slots=True)
class Timing:
    """t=<start-time> <stop-time> followed by its r= lines."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RtpMap:
    """a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    def __str__(self) -> str:
        tail = "" if self.channels is None else f"/{self.channels}"
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{tail}"


@dataclass(frozen=True, slots=True)
class Crypto:
    """a=crypto:<tag> <crypto-suite> <key-params> [<session-params>] (RFC 4568 9.1)."""

    tag: int
    suite: str
    key_params: str
    session_params: str = ""

    def __str__(self) -> str:
        tail = f" {self.session_params}" if self.session_params else ""
        return f"{self.tag} {self.suite} {self.key_params}{tail}"


Attribute = tuple[str, str | None]  # a=<name>[:<value>]


def _attr_values(attributes: tuple[Attribute, ...], name: str) -> list[str]:
    return [v for n, v in attributes if n == name and v is not None]


def _direction_of(attributes: tuple[Attribute, ...]) -> Direction | None:
    found = None
    for n, v in attributes:
        if v is None and n in _DIRECTIONS:
            found = _DIRECTIONS[n]
    return found


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One m= section: m=<media> <port>[/<count>] <proto> <fmt> ... and its lines."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    info: str | None = None
    connection: Connection | None = None
    bandwidths: tuple[str, ...] = ()
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()

    @property
    def rejected(self) -> bool:
        """Port 0 marks a rejected or disabled stream (RFC 3264 sections 6 and 8.2)."""
        return self.port == 0

    @property
    def explicit_direction(self) -> Direction | None:
        return _direction_of(self.attributes)

    @property
    def direction(self) -> Direction:
        """The stream's own direction attribute, sendrecv when absent (RFC 3264 5.1)."""
        return self.explicit_direction or Direction.SENDRECV

    @property
    def payload_types(self) -> tuple[int, ...]:
        return tuple(int(f) for f in self.formats if f.isdigit())

    @property
    def rtpmap(self) -> dict[int, RtpMap]:
        """Payload type -> rtpmap; static types without a line get their RFC 3551 entry."""
        out: dict[int, RtpMap] = {}
        for pt in self.payload_types:
            static = STATIC_PAYLOAD_TYPES.get(pt)
            if static is not None:
                out[pt] = RtpMap(pt, static[0], static[1])
        for v in _attr_values(self.attributes, "rtpmap"):
            rm = parse_rtpmap(v)
            out[rm.payload_type] = rm
        return out

    @property
    def fmtp(self) -> dict[str, str]:
        """Format -> fmtp parameters (a=fmtp:<format> <parameters>)."""
        out: dict[str, str] = {}
        for v in _attr_values(self.attributes, "fmtp"):
            fmt, _, params = v.partition(" ")
            out[fmt] = params.strip()
        return out

    @property
    def ptime(self) -> int | None:
        for v in _attr_values(self.attributes, "ptime"):
            text = v.strip().split(".", 1)[0]
            if text.isdigit():
                return int(text)
        return None

    @property
    def crypto(self) -> tuple[Crypto, ...]:
        return tuple(parse_crypto(v) for v in _attr_values(self.attributes, "crypto"))

    @property
    def telephone_event(self) -> int | None:
        """The payload type of RFC 4733 telephone-event at 8 kHz, if offered."""
        for pt, rm in self.rtpmap.items():
            if rm.encoding.lower() == "telephone-event" and rm.clock_rate == 8000:
                return pt
        return None

    def attribute(self, name: str) -> str | None:
        for n, v in self.attributes:
            if n == name:
                return "" if v is None else v
        return None

    def with_direction(self, direction: Direction) -> MediaDescription:
        attrs = tuple(a for a in self.attributes if not (a[1] is None and a[0] in _DIRECTIONS))
        return dataclasses.replace(self, attributes=(*attrs, (direction.value, None)))


@dataclass(frozen=True, slots=True)
class SessionDescription:
    origin: Origin
    session_name: str = "-"
    version: int = 0
    info: str | None = None
    uri: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    connection: Connection | None = None
    bandwidths: tuple[str, ...] = ()
    timings: tuple[Timing, ...] = (Timing(),)
    zone: str | None = None
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()

    def connection_of(self, m: MediaDescription) -> Connection | None:
        """The media-level c= line, or the session-level one (RFC 8866 5.7)."""
        return m.connection or self.connection

    def direction_of(self, m: MediaDescription) -> Direction:
        """Media-level direction, else session-level, else sendrecv (RFC 3264 5.1)."""
        return m.explicit_direction or _direction_of(self.attributes) or Direction.SENDRECV

    def to_str(self) -> str:
        return serialize(self)

    def to_bytes(self) -> bytes:
        return serialize(self).encode("utf-8")

    def __str__(self) -> str:
        return serialize(self)


# -- typed attribute values ---------------------------------------------------------------


def parse_rtpmap(value: str) -> RtpMap:
    pt_text, _, rest = value.strip().partition(" ")
    parts = rest.strip().split("/")
    if not pt_text.isdigit() or int(pt_text) > 127 or len(parts) not in (2, 3):
        raise SdpError(f"bad rtpmap {value[:40]!r}")
    enc, rate = parts[0], parts[1]
    channels = parts[2] if len(parts) == 3 else None
    if not enc or not rate.isdigit() or (channels is not None and not channels.isdigit()):
        raise SdpError(f"bad rtpmap {value[:40]!r}")
    return RtpMap(int(pt_text), enc, int(rate), None if channels is None else int(channels))


def parse_crypto(value: str) -> Crypto:
    parts = value.split()
    if len(parts) < 3 or not parts[0].isdigit() or len(parts[0]) > 9:
        raise SdpError(f"bad crypto attribute {value[:40]!r}")
    return Crypto(int(parts[0]), parts[1], parts[2], " ".join(parts[3:]))


# -- parsing --------------------------------------------------------------------------------


def _int(text: str, what: str, maximum: int | None = None) -> int:
    if not text.isdigit() or len(text) > 20:
        raise SdpError(f"{what} is not a number: {text[:20]!r}")
    value = int(text)
    if maximum is not None and value > maximum:
        raise SdpError(f"{what} out of range")
    return value


def _parse_origin(value: str) -> Origin:
    f = value.split(" ")
    if len(f) != 6 or not all(f):
        raise SdpError("o= needs 6 fields")
    _int(f[1], "o= session id")
    return Origin(f[0], f[1], _int(f[2], "o= session version"), f[3], f[4], f[5])


def _parse_connection(value: str) -> Connection:
    f = value.split(" ")
    if len(f) != 3 or not all(f):
        raise SdpError("c= needs 3 fields")
    return Connection(f[2], f[0], f[1])


def _parse_media_line(value: str) -> MediaDescription:
    f = value.split(" ")
    if len(f) < 3 or not all(f):
        raise SdpError(f"bad m= line {value[:40]!r}")
    port_text, _, count_text = f[1].partition("/")
    port = _int(port_text, "m= port", 65535)
    count = _int(count_text, "m= port count") if count_text else None
    formats = tuple(f[3:])
    if not formats and port != 0:
        raise SdpError("m= line without formats")
    if f[2].upper().startswith("RTP/") and not all(x.isdigit() and int(x) <= 127 for x in formats):
        raise SdpError("RTP payload type out of range")
    return MediaDescription(f[0], port, f[2], formats, count)


_PLAIN_RTPMAP = re.compile(r"([0-9]{1,3}) [A-Za-z0-9_.+-]+/[0-9]{1,9}(?:/[0-9]{1,3})?")


def _parse_attribute(value: str) -> Attribute:
    name, sep, val = value.partition(":")
    if not name or " " in name:
        raise SdpError(f"bad attribute {value[:40]!r}")
    if sep and name == "rtpmap":
        # the usual "<pt> <enc>/<rate>[/<channels>]" is valid as it stands; anything else
        # goes through the full check
        fast = _PLAIN_RTPMAP.fullmatch(val)
        if fast is None or int(fast[1]) > 127:
            parse_rtpmap(val)
    elif sep and name == "crypto":
        parse_crypto(val)
    return (name, val if sep else None)


class _MediaBuilder:
    __slots__ = ("attributes", "bandwidths", "connection", "head", "info", "key", "seen")

    def __init__(self, head: MediaDescription) -> None:
        self.head = head
        self.seen: set[str] = set()
        self.info: str | None = None
        self.connection: Connection | None = None
        self.key: str | None = None
        self.bandwidths: list[str] = []
        self.attributes: list[Attribute] = []

    def build(self) -> MediaDescription:
        # constructed field by field: dataclasses.replace re-reads the fields each call and
        # cost 4.2 % of an anchored call's samples (issue 21)
        head = self.head
        return MediaDescription(
            media=head.media, port=head.port, proto=head.proto, formats=head.formats,
            port_count=head.port_count, info=self.info, connection=self.connection,
            bandwidths=tuple(self.bandwidths), key=self.key, attributes=tuple(self.attributes))


# An anchored call parses the same body several times (the offer when the call is routed,
# anchored and negotiated; each leg's answer twice): the result is an immutable tree, so a
# small cache keyed on the body returns it again (issue 21). Only bodies of a usual size are
# kept (256 x 4 KB at most); an invalid body raises and is not cached.
_CACHED_BODY_MAX = 4096


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP body (RFC 8866 section 5); raises `SdpError` (400) when invalid."""
    if len(data) <= _CACHED_BODY_MAX:
        return _parse_cached(data)
    return _parse(data)


@functools.lru_cache(maxsize=256)
def _parse_cached(data: bytes | str) -> SessionDescription:
    return _parse(data)


def _parse(data: bytes | str) -> SessionDescription:
    if len(data) > MAX_SDP_SIZE:
        raise SdpError("too large")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SdpError("not UTF-8") from None
    lines = data.split("\n")
    session: dict[str, str] = {}  # s i u z k, and v as a marker
    origin: Origin | None = None
    s_conn: Connection | None = None
    s_attrs: list[Attribute] = []
    s_bw: list[str] = []
    emails: list[str] = []
    phones: list[str] = []
    timings: list[Timing] = []
    media: list[_MediaBuilder] = []
    order = 0  # position in _SESSION_ORDER of the last session-level line
    m_order = 0
    for raw in lines:
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line:
            continue  # tolerate a blank last line and bare LF ends
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"bad line {line[:40]!r}")
        kind, value = line[0], line[2:]
        if kind not in _KNOWN:
            # RFC 8866 section 5: a description with an unknown type letter is ignored;
            # for us it is unusable, so it is refused.
            raise SdpError(f"unknown line type {kind!r}")
        if kind == "m":
            if len(media) >= MAX_MEDIA:
                raise SdpError("too many m= lines")
            if origin is None or "s" not in session:
                raise SdpError("m= before the session lines")
            media.append(_MediaBuilder(_parse_media_line(value)))
            m_order = 0
            continue
        if media:
            mb = media[-1]
            pos = _MEDIA_ORDER.find(kind)
            if pos < m_order or pos < 1:
                raise SdpError(f"{kind}= line out of order in a media section")
            m_order = pos
            if kind == "a":
                mb.attributes.append(_parse_attribute(value))
            elif kind == "b":
                mb.bandwidths.append(value)
            elif kind in mb.seen:
                raise SdpError(f"repeated {kind}= line in a media section")
            else:
                mb.seen.add(kind)
                if kind == "i":
                    mb.info = value
                elif kind == "c":
                    mb.connection = _parse_connection(value)
                else:  # k
                    mb.key = value
            continue
        pos = _SESSION_ORDER.find("t" if kind == "r" else kind)
        if pos < order or ("v" not in session and kind != "v") or (kind == "r" and not timings):
            raise SdpError(f"{kind}= line out of order")
        order = pos
        if kind == "a":
            s_attrs.append(_parse_attribute(value))
        elif kind == "b":
            s_bw.append(value)
        elif kind == "e":
            emails.append(value)
        elif kind == "p":
            phones.append(value)
        elif kind == "t":
            f = value.split(" ")
            if len(f) != 2:
                raise SdpError("t= needs 2 fields")
            timings.append(Timing(_int(f[0], "t= start"), _int(f[1], "t= stop")))
        elif kind == "r":
            last = timings[-1]
            timings[-1] = Timing(last.start, last.stop, (*last.repeats, value))
        elif kind in session:
            raise SdpError(f"repeated {kind}= line")
        elif kind == "v":
            if value != "0":
                raise SdpError("v= must be 0")
            session["v"] = value
        elif kind == "o":
            session["o"] = value
            origin = _parse_origin(value)
        elif kind == "c":
            session["c"] = value
            s_conn = _parse_connection(value)
        else:  # s i u z k
            session[kind] = value
    if origin is None or "s" not in session:
        raise SdpError("missing v=, o= or s=")
    built = tuple(mb.build() for mb in media)
    if any(s_conn is None and m.connection is None and not m.rejected for m in built):
        raise SdpError("a media section has no c= line (RFC 8866 5.7)")
    return SessionDescription(
        origin=origin, session_name=session["s"], info=session.get("i"), uri=session.get("u"),
        emails=tuple(emails), phones=tuple(phones), connection=s_conn, bandwidths=tuple(s_bw),
        timings=tuple(timings) or (Timing(),), zone=session.get("z"), key=session.get("k"),
        attributes=tuple(s_attrs), media=built,
    )


# -- serialisation --------------------------------------------------------------------------


def _attr_lines(attributes: Iterable[Attribute]) -> list[str]:
    return [f"a={n}" if v is None else f"a={n}:{v}" for n, v in attributes]


def serialize(sdp: SessionDescription) -> str:
    """Lines in RFC 8866 order, CRLF-terminated. A description without t= gets t=0 0."""
    out = [f"v={sdp.version}", f"o={sdp.origin}", f"s={sdp.session_name}"]
    if sdp.info is not None:
        out.append(f"i={sdp.info}")
    if sdp.uri is not None:
        out.append(f"u={sdp.uri}")
    out.extend(f"e={e}" for e in sdp.emails)
    out.extend(f"p={p}" for p in sdp.phones)
    if sdp.connection is not None:
        out.append(f"c={sdp.connection}")
    out.extend(f"b={b}" for b in sdp.bandwidths)
    for t in sdp.timings or (Timing(),):
        out.append(f"t={t.start} {t.stop}")
        out.extend(f"r={r}" for r in t.repeats)
    if sdp.zone is not None:
        out.append(f"z={sdp.zone}")
    if sdp.key is not None:
        out.append(f"k={sdp.key}")
    out.extend(_attr_lines(sdp.attributes))
    for m in sdp.media:
        port = str(m.port) if m.port_count is None else f"{m.port}/{m.port_count}"
        out.append(" ".join((f"m={m.media}", port, m.proto, *m.formats)))
        if m.info is not None:
            out.append(f"i={m.info}")
        if m.connection is not None:
            out.append(f"c={m.connection}")
        out.extend(f"b={b}" for b in m.bandwidths)
        if m.key is not None:
            out.append(f"k={m.key}")
        out.extend(_attr_lines(m.attributes))
    return "\r\n".join(out) + "\r\n"
