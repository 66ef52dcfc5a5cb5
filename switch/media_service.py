"""Media for calls: anchoring through the relay, and the switch's own test services.

Anchoring (default per site): the caller's offer goes to the callee with the relay's B-leg
address, and the callee's answer goes back with the relay's A-leg address, so RTP always
crosses the switch (NAT-safe; needed later for hold, recording and transfer). Both legs
keep the codec the callee chose from the caller's offer, so the relay only forwards.

Endpoints for call applications: the switch answers the caller itself (test services,
and later auto-attendants, queues, voicemail); what plays on them is decided by the
application (`ivr.application`) and performed by `switch.services.applications`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import secrets
import weakref
from dataclasses import dataclass
from typing import Protocol

from media import MediaEndpoint, MediaEngine, MusicOnHold, PortsExhausted, Relay, RelayLeg
from switch.b2bua.effects import Side
from switch.dialog.offeranswer import (
    MediaCapabilities,
    SdpVersioner,
    build_answer,
    build_offer,
    negotiated_streams,
    offered_is_hold,
    rewrite_connection,
)
from switch.dialog.sdp import SessionDescription, parse_sdp
from switch.sip import SipError

log = logging.getLogger("switch.media")

SUPPORTED_CODECS = ("PCMU", "PCMA")


def _first_audio(sdp: SessionDescription) -> tuple[str, int] | None:
    for m in sdp.media:
        if m.media == "audio" and not m.rejected:
            conn = sdp.connection_of(m)
            if conn is not None:
                return conn.host, m.port
    return None


def restrict_codecs(sdp: SessionDescription,
                    names: tuple[str, ...] = (*SUPPORTED_CODECS, "TELEPHONE-EVENT")
                    ) -> SessionDescription:
    """Keep only the payload types the media engine handles, with their rtpmap/fmtp lines.

    The relay can then read every packet it forwards (loss figures, DTMF, later recording
    and transcoding); a caller offering none of them gets 488 from the callee.
    """
    media = []
    for m in sdp.media:
        if m.rejected or m.media != "audio":
            media.append(m)
            continue
        rtpmap = m.rtpmap
        keep = [f for f in m.formats
                if f.isdigit() and int(f) in rtpmap and rtpmap[int(f)].encoding.upper() in names]
        if not keep:
            media.append(m)
            continue

        attributes = tuple(
            (name, value) for name, value in m.attributes
            if name not in ("rtpmap", "fmtp") or not value or value.split(" ", 1)[0] in keep
        )
        media.append(dataclasses.replace(m, formats=tuple(keep), attributes=attributes))
    return dataclasses.replace(sdp, media=tuple(media))


@dataclass
class Anchor:
    """One call's relay and the two descriptions it rewrites."""

    relay: Relay
    offer: SessionDescription
    versioner_a: SdpVersioner
    versioner_b: SdpVersioner
    codec: str | None = None
    # what a party hears while the other holds (the call's customer's source, given by the
    # call service); None: silence
    hold_music: MusicOnHold | None = None

    def offer_for_callee(self) -> bytes:
        leg = self.relay.leg_b
        sdp = rewrite_connection(restrict_codecs(self.offer), leg.local_host, leg.local_port)
        return self.versioner_b.stamp(sdp).to_bytes()

    def latch(self, body: bytes, *, caller_host: str | None = None,
              callee_host: str | None = None) -> None:
        """Point the relay at the callee's answer (B) and the caller's offer (A), with the
        codec the callee chose, so the relay only forwards. The hosts the signalling came
        from let a phone behind NAT (media from another address than its SDP says) be
        learned from that host only (media.latch)."""
        answer = parse_sdp(body)
        streams = negotiated_streams(answer, self.offer)
        remote_a = _first_audio(self.offer)
        remote_b = _first_audio(answer)
        if streams and remote_a and remote_b:
            s = streams[0]
            codec = s.encoding.upper()
            if codec in SUPPORTED_CODECS:
                self.codec = codec
                self.relay.leg_b.set_remote(remote_b[0], remote_b[1], s.payload_type, codec,
                                            s.telephone_event, nat_host=callee_host)
                self.relay.leg_a.set_remote(remote_a[0], remote_a[1], s.payload_type, codec,
                                            s.telephone_event, nat_host=caller_host)

    def answer_for_caller(self, leg: object, body: bytes) -> bytes:
        """The callee's answer as the caller gets it: the relay's A side in it."""
        relay_leg = self.relay.leg_a
        sdp = rewrite_connection(parse_sdp(body), relay_leg.local_host, relay_leg.local_port)
        return self.versioner_a.stamp(sdp).to_bytes()

    def quality(self) -> tuple[float | None, float | None]:
        """(loss fraction, jitter in ms) for the call record: the worse of the two legs, from
        the relay's own sequence accounting and the phones' RTCP reports (RFC 3550 6.4)."""
        legs = self.relay.stats()
        if not any(s.packets_received for s in legs):
            return None, None
        loss = max(max(s.fraction_lost, s.remote_fraction_lost or 0.0) for s in legs)
        jitter = max(max(s.jitter_ms, s.remote_jitter_ms or 0.0) for s in legs)
        return round(loss, 4), round(jitter, 2)

    def relay_leg(self, side: Side) -> RelayLeg:
        """The relay leg facing the caller (A) or the callee (B)."""
        return self.relay.leg_a if side is Side.CALLER else self.relay.leg_b

    def answer_reoffer(self, side: Side, body: bytes, nat_host: str | None = None) -> bytes:
        """Answer a re-INVITE/UPDATE offer from one side (hold, resume, new address) on the
        relay leg that faces it (RFC 3264 section 8); the other side gets no re-INVITE.

        A hold (sendonly or inactive, or the RFC 2543 c=0.0.0.0: section 8.4) is answered
        recvonly or inactive (section 6.1, `build_answer`) and the other party hears
        `hold_music` from the relay until this side resumes (`set_holding`). A c=0.0.0.0
        address only says "do not send": the leg keeps the phone's previous address."""
        leg = self.relay_leg(side)
        versioner = self.versioner_a if side is Side.CALLER else self.versioner_b
        offer = parse_sdp(body)
        codecs = (self.codec,) if self.codec else SUPPORTED_CODECS
        caps = MediaCapabilities(leg.local_host, leg.local_port, codecs=codecs)
        answer = versioner.stamp(build_answer(offer, caps))
        streams = negotiated_streams(answer, offer)
        if streams and streams[0].encoding.upper() in SUPPORTED_CODECS:
            s = streams[0]
            if s.remote_address not in ("0.0.0.0", "::"):
                leg.set_remote(s.remote_address, s.remote_port, s.payload_type,
                               s.encoding.upper(), s.telephone_event, nat_host=nat_host)
        if streams:
            self.set_holding(side, offered_is_hold(offer, offer.media[streams[0].index]))
        return answer.to_bytes()

    def set_holding(self, side: Side, holding: bool) -> None:
        """This side holds (or resumes, or was replaced by a transfer target): while one
        side holds the relay bridges nothing and the other side hears `hold_music`."""
        self.relay.set_hold(self.relay_leg(side), holding, self.hold_music)

    async def close(self) -> None:
        await self.relay.close()


class MediaService:
    """The media engine's lifecycle, relays for anchored calls, endpoints for applications."""

    def __init__(self, host: str, port_min: int, port_max: int) -> None:
        self.host = host
        self.port_min = port_min
        self.port_max = port_max
        self.engine: MediaEngine | None = None
        self._session_ids = itertools.count(secrets.randbelow(2**31))
        # the SDP version line each application endpoint gave its caller: a relay that
        # takes the endpoint over answers later re-INVITEs with the same origin (RFC 3264 8)
        self._endpoint_versioners: weakref.WeakKeyDictionary[MediaEndpoint, SdpVersioner] = (
            weakref.WeakKeyDictionary())

    def counters(self) -> dict[str, int]:
        """For /metrics: relay packets dropped (foreign sources, malformed)."""
        return self.engine.counters() if self.engine is not None else {}

    async def start(self) -> None:
        self.engine = MediaEngine(self.host, self.port_min, self.port_max)
        await self.engine.start()
        log.info("media engine on %s ports %d-%d", self.host, self.port_min, self.port_max)

    async def stop(self) -> None:
        if self.engine is not None:
            await self.engine.stop()

    def _versioner(self) -> SdpVersioner:
        return SdpVersioner(next(self._session_ids), username="wte")

    async def anchor(self, offer_body: bytes) -> Anchor | None:
        """A relay for a call whose INVITE carries an offer; None for a late offer."""
        if not offer_body or self.engine is None:
            return None
        offer = parse_sdp(offer_body)
        if _first_audio(offer) is None:
            return None
        try:
            relay = await self.engine.open_relay()
        except PortsExhausted:
            # every RTP port is in use: the switch is full, the caller may retry elsewhere
            log.warning("no RTP port left for a new call")
            raise SipError(503, "Service Unavailable", headers=(("Retry-After", "30"),)) from None
        return Anchor(relay, offer, self._versioner(), self._versioner())

    async def application_endpoint(self, offer_body: bytes) -> tuple[MediaEndpoint, bytes]:
        """An endpoint that answers the caller's offer (RFC 3264): the switch is the far
        end. Returns the endpoint, ready to play and listen, and the SDP answer."""
        if self.engine is None:
            raise SipError(503, "Media Unavailable")
        if not offer_body:
            raise SipError(488, "Not Acceptable Here")
        offer = parse_sdp(offer_body)
        try:
            endpoint = await self.engine.open_endpoint()
        except PortsExhausted:
            raise SipError(503, "Service Unavailable", headers=(("Retry-After", "30"),)) from None
        try:
            caps = MediaCapabilities(endpoint.local_host, endpoint.local_port,
                                     codecs=SUPPORTED_CODECS)
            versioner = self._versioner()
            self._endpoint_versioners[endpoint] = versioner
            answer = versioner.stamp(build_answer(offer, caps))
            streams = negotiated_streams(answer, offer)
            if not streams:
                raise SipError(488, "Not Acceptable Here")
            s = streams[0]
            endpoint.set_remote(s.remote_address, s.remote_port, s.payload_type,
                                s.encoding.upper(), s.telephone_event, s.ptime or 20)
        except BaseException:
            with contextlib.suppress(Exception):
                await endpoint.close()
            raise
        log.info("application endpoint on %s:%d", endpoint.local_host, endpoint.local_port)
        return endpoint, answer.to_bytes()


    # -- a call the switch places itself (switch/originate.py) --

    async def originating_endpoint(self) -> tuple[MediaEndpoint, bytes]:
        """An endpoint for a call the switch places, and our offer (RFC 3264 section 5):
        the party it rings answers it; `originated_answer` then points the endpoint."""
        if self.engine is None:
            raise SipError(503, "Media Unavailable")
        try:
            endpoint = await self.engine.open_endpoint()
        except PortsExhausted:
            raise SipError(503, "Service Unavailable", headers=(("Retry-After", "30"),)) from None
        versioner = self._versioner()
        self._endpoint_versioners[endpoint] = versioner
        caps = MediaCapabilities(endpoint.local_host, endpoint.local_port,
                                 codecs=SUPPORTED_CODECS)
        return endpoint, versioner.stamp(build_offer(caps)).to_bytes()

    def originated_answer(self, endpoint: MediaEndpoint, offer: bytes, answer: bytes) -> None:
        """The party answered our offer: the endpoint sends where, and with the codec,
        its answer says (RFC 3264 section 6); 488 when it chose nothing we offered."""
        streams = negotiated_streams(parse_sdp(offer), parse_sdp(answer))
        if not streams:
            raise SipError(488, "Not Acceptable Here")
        s = streams[0]
        endpoint.set_remote(s.remote_address, s.remote_port, s.payload_type,
                            s.encoding.upper(), s.telephone_event, s.ptime or 20)

    # -- an application hands its caller to a third party (ivr Transfer) --

    async def divert_leg(self) -> RelayLeg:
        """The relay leg that will face the party an application hands its caller to."""
        if self.engine is None:
            raise SipError(503, "Media Unavailable")
        try:
            return await self.engine.open_relay_leg()
        except PortsExhausted:
            raise SipError(503, "Service Unavailable", headers=(("Retry-After", "30"),)) from None

    def divert_offer(self, endpoint: MediaEndpoint, leg: RelayLeg) -> bytes:
        """Our offer to that party: the leg's address, only the codec the caller already
        uses with the application, so the relay forwards without transcoding."""
        remote = endpoint.session.remote
        codecs = (remote.codec,) if remote is not None else SUPPORTED_CODECS
        caps = MediaCapabilities(leg.local_host, leg.local_port, codecs=codecs)
        return self._versioner().stamp(build_offer(caps)).to_bytes()

    def bridge(self, endpoint: MediaEndpoint, leg_b: RelayLeg, caller_offer: bytes, *,
               caller_host: str | None) -> Anchor:
        """The party answered: the endpoint becomes the caller's relay leg, pointed where
        the endpoint sent its media, and the call is anchored from now on."""
        if self.engine is None:
            raise SipError(503, "Media Unavailable")
        remote = endpoint.session.remote
        versioner = self._endpoint_versioners.pop(endpoint, None) or self._versioner()
        relay = self.engine.bridge(endpoint, leg_b)
        if remote is not None:
            relay.leg_a.set_remote(remote.host, remote.port, remote.payload_type, remote.codec,
                                   remote.dtmf_payload_type, nat_host=caller_host)
        return Anchor(relay, parse_sdp(caller_offer), versioner, self._versioner(),
                      codec=remote.codec if remote is not None else None)


class Closable(Protocol):
    async def close(self) -> None: ...


async def close_media(media: Closable | None) -> None:
    if media is not None:
        with contextlib.suppress(Exception):
            await media.close()
