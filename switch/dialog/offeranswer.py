"""The offer/answer model (RFC 3264) with SIP's rules on where offers go (RFC 3261 13.2.1,
RFC 3262, RFC 3311).

- `build_offer` / `build_answer` make descriptions from our `MediaCapabilities`;
- `SdpVersioner` stamps o= so the version moves on every change (RFC 3264 section 8);
- `rewrite_connection` points a description at the media relay (anchoring);
- `OfferAnswer` tracks, per dialog, who owes an answer, and refuses glare with 491.

Answers are pure functions; a missing transition of the tracker raises `OfferAnswerError`,
a `SipError` whose status is the one to answer the request that carried the SDP with.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from switch.sip import SipError

from .sdp import (
    Attribute,
    Connection,
    Crypto,
    Direction,
    MediaDescription,
    Origin,
    SessionDescription,
    Timing,
)

log = logging.getLogger(__name__)

# name -> (static payload type or None, clock rate, channels); RFC 3551 table 4.
KNOWN_CODECS: dict[str, tuple[int | None, int, int | None]] = {
    "PCMU": (0, 8000, None), "PCMA": (8, 8000, None), "G722": (9, 8000, None),
    "G729": (18, 8000, None), "GSM": (3, 8000, None), "OPUS": (None, 48000, 2),
}
RTP_PROTOS = ("RTP/AVP", "RTP/SAVP")
FIRST_DYNAMIC_PT = 96
TELEPHONE_EVENT_FMTP = "0-16"
# Attributes that describe the far end's transport and are wrong once media is anchored.
_TRANSPORT_ATTRS = frozenset((
    "rtcp", "candidate", "remote-candidates", "end-of-candidates", "ice-ufrag", "ice-pwd",
    "ice-options", "ice-lite", "ice-mismatch",
))


def addrtype_of(address: str) -> str:
    try:
        return "IP6" if ipaddress.ip_address(address).version == 6 else "IP4"
    except ValueError:
        return "IP4"  # a host name: RFC 8866 allows FQDNs, IP4 is the usual tag


@dataclass(frozen=True, slots=True)
class MediaCapabilities:
    """What our side of a leg can do; `codecs` are names in preference order."""

    address: str
    port: int
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    telephone_event: bool = True
    telephone_event_pt: int = 101  # used in our offers; answers reuse the offered one
    ptime: int | None = 20
    single_codec: bool = True  # answer with the one best common codec
    srtp_keys: tuple[tuple[str, str], ...] = ()  # (crypto suite, key params) for RTP/SAVP
    username: str = "-"
    session_name: str = "-"


@dataclass(frozen=True, slots=True)
class StreamParams:
    """What the media layer needs for one accepted stream after negotiation."""

    index: int
    media: str
    remote_address: str
    remote_port: int
    payload_type: int
    encoding: str
    clock_rate: int
    telephone_event: int | None
    direction: Direction  # ours, as written in the local description
    ptime: int | None


def _codec_spec(name: str) -> tuple[str, int | None, int, int | None]:
    """"PCMU" or "opus/48000/2" -> (name, static pt, clock rate, channels)."""
    parts = name.split("/")
    known = KNOWN_CODECS.get(parts[0].upper())
    if len(parts) == 1 and known is not None:
        return parts[0], known[0], known[1], known[2]
    if len(parts) in (2, 3) and all(p.isdigit() for p in parts[1:]):
        return parts[0], None, int(parts[1]), int(parts[2]) if len(parts) == 3 else None
    raise ValueError(f"unknown codec {name!r}: give name/clock[/channels]")


def _origin(caps: MediaCapabilities) -> Origin:
    return Origin(caps.username, "0", 0, "IN", addrtype_of(caps.address), caps.address)


def _session(caps: MediaCapabilities, media: tuple[MediaDescription, ...]) -> SessionDescription:
    return SessionDescription(
        origin=_origin(caps), session_name=caps.session_name,
        connection=Connection(caps.address, "IN", addrtype_of(caps.address)),
        timings=(Timing(),), media=media,
    )


def build_offer(caps: MediaCapabilities, *, direction: Direction = Direction.SENDRECV,
                proto: str = "RTP/AVP") -> SessionDescription:
    """One audio stream with our codecs (RFC 3264 section 5); o= is stamped by the caller."""
    formats: list[str] = []
    attrs: list[Attribute] = []
    dynamic = FIRST_DYNAMIC_PT
    used = {caps.telephone_event_pt} if caps.telephone_event else set()
    for name in caps.codecs:
        enc, static, clock, channels = _codec_spec(name)
        if static is not None:
            pt = static
        else:
            while dynamic in used:
                dynamic += 1
            pt = dynamic
        used.add(pt)
        formats.append(str(pt))
        tail = "" if channels is None else f"/{channels}"
        attrs.append(("rtpmap", f"{pt} {enc}/{clock}{tail}"))
    if caps.telephone_event:
        pt = caps.telephone_event_pt
        formats.append(str(pt))
        attrs.append(("rtpmap", f"{pt} telephone-event/8000"))
        attrs.append(("fmtp", f"{pt} {TELEPHONE_EVENT_FMTP}"))
    if proto == "RTP/SAVP":
        attrs.extend(("crypto", str(Crypto(i + 1, s, k))) for i, (s, k) in enumerate(caps.srtp_keys))
    if caps.ptime is not None:
        attrs.append(("ptime", str(caps.ptime)))
    attrs.append((direction.value, None))
    m = MediaDescription("audio", caps.port, proto, tuple(formats), attributes=tuple(attrs))
    return _session(caps, (m,))


def _rejected(m: MediaDescription) -> MediaDescription:
    """RFC 3264 section 6: a refused stream keeps its m= line with port 0."""
    return MediaDescription(m.media, 0, m.proto, m.formats or ("0",))


def offered_is_hold(offer: SessionDescription, m: MediaDescription) -> bool:
    """RFC 3264 section 8.4: sendonly or inactive, or the RFC 2543 c=0.0.0.0."""
    conn = offer.connection_of(m)
    if conn is not None and conn.is_hold_address:
        return True
    return not offer.direction_of(m).receives


def is_hold(sdp: SessionDescription) -> bool:
    """True when every active audio stream of `sdp` asks the peer not to send to it."""
    active = [m for m in sdp.media if m.media == "audio" and not m.rejected]
    return bool(active) and all(offered_is_hold(sdp, m) for m in active)


def _answer_stream(offer: SessionDescription, m: MediaDescription, caps: MediaCapabilities,
                   local: Direction) -> MediaDescription | None:
    if m.rejected or m.media != "audio" or m.proto.upper() not in RTP_PROTOS:
        return None
    crypto: Crypto | None = None
    if m.proto.upper() == "RTP/SAVP":
        # RFC 4568 section 5.1.2: answer one offered crypto line, keeping its tag.
        keys = dict(caps.srtp_keys)
        crypto = next((Crypto(c.tag, c.suite, keys[c.suite]) for c in m.crypto if c.suite in keys), None)
        if crypto is None:
            return None
    rtpmap = m.rtpmap
    chosen: list[int] = []
    for name in caps.codecs:
        enc, _, clock, _ = _codec_spec(name)
        for pt in m.payload_types:
            rm = rtpmap.get(pt)
            if rm is not None and rm.encoding.lower() == enc.lower() and rm.clock_rate == clock:
                if pt not in chosen:
                    chosen.append(pt)
                break
        if chosen and caps.single_codec:
            break
    if not chosen:
        return None
    te = m.telephone_event if caps.telephone_event else None
    formats = [*chosen, *([te] if te is not None else [])]
    fmtp = m.fmtp
    attrs: list[Attribute] = []
    for pt in formats:
        attrs.append(("rtpmap", str(rtpmap[pt])))
        params = fmtp.get(str(pt))
        if params is None and pt == te:
            params = TELEPHONE_EVENT_FMTP
        if params:
            attrs.append(("fmtp", f"{pt} {params}"))
    if crypto is not None:
        attrs.append(("crypto", str(crypto)))
    if caps.ptime is not None:
        attrs.append(("ptime", str(caps.ptime)))
    # RFC 3264 section 6.1: sendonly is answered recvonly and the reverse; c=0.0.0.0 means
    # the offerer will not receive (section 8.4).
    offered = offer.direction_of(m)
    conn = offer.connection_of(m)
    peer_receives = offered.receives and not (conn is not None and conn.is_hold_address)
    direction = Direction.of(peer_receives and local.sends, offered.sends and local.receives)
    attrs.append((direction.value, None))
    return MediaDescription(m.media, caps.port, m.proto, tuple(str(f) for f in formats),
                            attributes=tuple(attrs))


def build_answer(offer: SessionDescription, caps: MediaCapabilities, *,
                 direction: Direction = Direction.SENDRECV) -> SessionDescription:
    """The answer to `offer` (RFC 3264 section 6): as many m= lines, in the same order.

    We accept the first usable audio stream; other streams are refused with port 0. With
    no usable stream at all the offer is refused: SipError 488 (RFC 3261 21.4.26).
    `direction` is what we want locally (sendonly to put the peer on hold).
    """
    out: list[MediaDescription] = []
    accepted = False
    for m in offer.media:
        answered = None if accepted else _answer_stream(offer, m, caps, direction)
        if answered is None:
            out.append(_rejected(m))
        else:
            out.append(answered)
            accepted = True
    if not accepted:
        raise SipError(488, "Not Acceptable Here: no common media format")
    return _session(caps, tuple(out))


def negotiated_streams(local: SessionDescription, remote: SessionDescription) -> tuple[StreamParams, ...]:
    """The streams both sides accepted, with the codec to send: the first payload type of
    the remote m= line that the local one also lists (RFC 3264 sections 6.1 and 7)."""
    out: list[StreamParams] = []
    for i, (lm, rm) in enumerate(zip(local.media, remote.media, strict=False)):
        if lm.rejected or rm.rejected:
            continue
        conn = remote.connection_of(rm)
        if conn is None:
            continue
        te = rm.telephone_event
        ours = set(lm.payload_types)
        rtpmap = rm.rtpmap
        pick = next((pt for pt in rm.payload_types if pt in ours and pt != te and pt in rtpmap), None)
        if pick is None:
            continue
        out.append(StreamParams(
            i, rm.media, conn.host, rm.port, pick, rtpmap[pick].encoding, rtpmap[pick].clock_rate,
            te if te in ours else None, local.direction_of(lm), rm.ptime or lm.ptime,
        ))
    return tuple(out)


def rewrite_connection(sdp: SessionDescription, address: str, ports: int | Sequence[int], *,
                       strip_transport: bool = True) -> SessionDescription:
    """Point every accepted stream at `address` and its port (media anchoring).

    `ports` is one port for all streams or one per m= line; rejected streams keep port 0.
    The far end's rtcp and ICE attributes are dropped when `strip_transport`. The o= line
    is left alone: `SdpVersioner.stamp` owns it.
    """
    addrtype = addrtype_of(address)
    media: list[MediaDescription] = []
    for i, m in enumerate(sdp.media):
        if m.rejected:
            media.append(m)
            continue
        port = ports if isinstance(ports, int) else ports[i]
        attrs = m.attributes
        if strip_transport:
            attrs = tuple(a for a in attrs if a[0] not in _TRANSPORT_ATTRS)
        media.append(dataclasses.replace(m, port=port, connection=None, attributes=attrs))
    s_attrs = sdp.attributes
    if strip_transport:
        s_attrs = tuple(a for a in s_attrs if a[0] not in _TRANSPORT_ATTRS)
    return dataclasses.replace(sdp, connection=Connection(address, "IN", addrtype),
                               attributes=s_attrs, media=tuple(media))


def bump_version(sdp: SessionDescription) -> SessionDescription:
    o = sdp.origin
    return dataclasses.replace(sdp, origin=dataclasses.replace(o, session_version=o.session_version + 1))


class SdpVersioner:
    """Our o= line for one leg: a fixed session id, a version that grows by one whenever
    the description changes, and stays when it is sent again unchanged (RFC 3264 8)."""

    def __init__(self, session_id: int, *, username: str = "-", first_version: int | None = None) -> None:
        self.session_id = str(session_id)
        self.username = username
        self.version = session_id if first_version is None else first_version
        self._last: SessionDescription | None = None

    def stamp(self, sdp: SessionDescription) -> SessionDescription:
        o = sdp.origin
        if self._last is not None:
            probe = dataclasses.replace(sdp, origin=self._last.origin)
            if probe == self._last:
                return self._last
            self.version += 1
        origin = Origin(self.username, self.session_id, self.version, o.nettype, o.addrtype, o.address)
        self._last = dataclasses.replace(sdp, origin=origin)
        return self._last


# -- who owes whom an answer ----------------------------------------------------------------


class OAState(Enum):
    NO_OFFER = "no-offer"
    OFFER_SENT = "offer-sent"
    OFFER_RECEIVED = "offer-received"
    COMPLETE = "complete"


class OAEvent(Enum):
    SEND_OFFER = "send-offer"
    RECEIVE_OFFER = "receive-offer"
    SEND_ANSWER = "send-answer"
    RECEIVE_ANSWER = "receive-answer"
    ROLLBACK = "rollback"  # the transaction that carried the offer failed


class SdpKind(Enum):
    OFFER = "offer"
    ANSWER = "answer"
    REPEAT = "repeat"  # the same description again (same o= id and version): no change


class OfferAnswerError(SipError):
    """A missing transition: glare (491), an offer while one is pending (500), our bug."""


S, E = OAState, OAEvent
TRANSITIONS: dict[tuple[OAState, OAEvent], OAState] = {
    (S.NO_OFFER, E.SEND_OFFER): S.OFFER_SENT,
    (S.NO_OFFER, E.RECEIVE_OFFER): S.OFFER_RECEIVED,
    (S.COMPLETE, E.SEND_OFFER): S.OFFER_SENT,
    (S.COMPLETE, E.RECEIVE_OFFER): S.OFFER_RECEIVED,
    (S.OFFER_SENT, E.RECEIVE_ANSWER): S.COMPLETE,
    (S.OFFER_RECEIVED, E.SEND_ANSWER): S.COMPLETE,
}
del S, E


# Requests whose body can only be an offer (RFC 3261 13.2.1, RFC 3311 5.1).
_OFFER_METHODS = frozenset(("INVITE", "UPDATE"))


def _same(a: SessionDescription | None, b: SessionDescription) -> bool:
    return a is not None and a.origin == b.origin


class OfferAnswer:
    """The offer/answer state of one dialog (RFC 3264 section 4, RFC 3261 13.2.1).

    Offers travel in INVITE, in a 2xx or reliable 1xx to an INVITE without one (late
    offer), in PRACK and UPDATE; answers in the matching response, in PRACK, or in the ACK
    for a late offer. `local`/`remote` are the descriptions of the current session.
    """

    def __init__(self, *, context: str = "", retry_after: int = 5) -> None:
        self.state = OAState.NO_OFFER
        self.local: SessionDescription | None = None
        self.remote: SessionDescription | None = None
        self.pending: SessionDescription | None = None  # the outstanding offer
        self._before: OAState = OAState.NO_OFFER
        self._context = context
        self._retry_after = retry_after

    @property
    def is_complete(self) -> bool:
        return self.state is OAState.COMPLETE

    def _go(self, event: OAEvent) -> None:
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            if event is OAEvent.RECEIVE_OFFER and self.state is OAState.OFFER_SENT:
                # RFC 3261 14.2 and RFC 3311 5.2: we have an offer out -> glare.
                raise OfferAnswerError(491, "Request Pending")
            if event is OAEvent.RECEIVE_OFFER and self.state is OAState.OFFER_RECEIVED:
                # RFC 3311 5.2: an offer of theirs still unanswered -> 500 + Retry-After.
                raise OfferAnswerError(500, "Offer Pending",
                                       headers=(("Retry-After", str(self._retry_after)),))
            if event is OAEvent.RECEIVE_ANSWER:
                raise OfferAnswerError(400, f"answer without an offer in state {self.state.value}")
            raise OfferAnswerError(500, f"offer/answer: no {event.value} in state {self.state.value}")
        log.debug("offer/answer %s: %s --%s--> %s", self._context, self.state.value, event.value, new.value)
        if new in (OAState.OFFER_SENT, OAState.OFFER_RECEIVED):
            self._before = self.state
        self.state = new

    def send_offer(self, sdp: SessionDescription) -> None:
        self._go(OAEvent.SEND_OFFER)
        self.pending = sdp

    def receive_offer(self, sdp: SessionDescription) -> None:
        self._go(OAEvent.RECEIVE_OFFER)
        self.pending = sdp

    def send_answer(self, sdp: SessionDescription) -> None:
        self._go(OAEvent.SEND_ANSWER)
        self.remote, self.local, self.pending = self.pending, sdp, None

    def receive_answer(self, sdp: SessionDescription) -> None:
        self._go(OAEvent.RECEIVE_ANSWER)
        self.local, self.remote, self.pending = self.pending, sdp, None

    def rollback(self) -> None:
        """The request or response carrying the pending offer failed (a non-2xx final
        response, 491, a CANCEL): the session stays as it was (RFC 3261 14.1)."""
        if self.state not in (OAState.OFFER_SENT, OAState.OFFER_RECEIVED):
            raise OfferAnswerError(500, f"offer/answer: no rollback in state {self.state.value}")
        log.debug("offer/answer %s: %s --rollback--> %s", self._context, self.state.value, self._before.value)
        self.state, self.pending = self._before, None

    def receive(self, sdp: SessionDescription, *, request: str | None = None) -> SdpKind:
        """Classify and record a description the peer sent.

        `request` is the method of the request that carried it, None for a response. An
        INVITE or UPDATE body is always an offer (so it raises 491 on glare or 500 while
        their previous offer is unanswered); ACK goes through `receive_ack`. Otherwise it
        is the answer when we wait for one, a repeat of the current one (the answer of an
        unreliable 183 again in the 200, RFC 3261 13.2.1), else a new offer.
        """
        if request == "ACK":
            kind = self.receive_ack(sdp)
            return SdpKind.REPEAT if kind is None else kind
        if request in _OFFER_METHODS:
            if self.state is OAState.OFFER_RECEIVED and _same(self.pending, sdp):
                return SdpKind.REPEAT
            self.receive_offer(sdp)
            return SdpKind.OFFER
        if self.state is OAState.OFFER_SENT:
            self.receive_answer(sdp)
            return SdpKind.ANSWER
        if self.state is OAState.COMPLETE and _same(self.remote, sdp):
            return SdpKind.REPEAT
        if self.state is OAState.OFFER_RECEIVED and _same(self.pending, sdp):
            return SdpKind.REPEAT
        self.receive_offer(sdp)
        return SdpKind.OFFER

    def send(self, sdp: SessionDescription, *, request: str | None = None) -> SdpKind:
        """Classify and record a description we send (`request` as for `receive`): the
        answer when one is owed, a repeat of the current local one, else a new offer."""
        if request in _OFFER_METHODS:
            if self.state is OAState.OFFER_SENT and _same(self.pending, sdp):
                return SdpKind.REPEAT
            self.send_offer(sdp)
            return SdpKind.OFFER
        if self.state is OAState.OFFER_RECEIVED:
            self.send_answer(sdp)
            return SdpKind.ANSWER
        if self.state is OAState.COMPLETE and _same(self.local, sdp):
            return SdpKind.REPEAT
        if self.state is OAState.OFFER_SENT and _same(self.pending, sdp):
            return SdpKind.REPEAT
        self.send_offer(sdp)
        return SdpKind.OFFER

    def receive_ack(self, sdp: SessionDescription | None) -> SdpKind | None:
        """The ACK for a 2xx: it carries the answer when our 2xx carried a late offer and
        nothing else (RFC 3261 13.2.1). It cannot be answered, so a violation raises with
        status 400 and the caller ends the session with BYE."""
        if self.state is OAState.OFFER_SENT:
            if sdp is None:
                self.rollback()
                raise OfferAnswerError(400, "ACK without the answer to our offer")
            self.receive_answer(sdp)
            return SdpKind.ANSWER
        if sdp is None or (self.state is OAState.COMPLETE and _same(self.remote, sdp)):
            return None if sdp is None else SdpKind.REPEAT
        raise OfferAnswerError(400, "ACK carries an offer")
