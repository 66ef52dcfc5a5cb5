"""WebRTC or plain RTP? and the plain descriptions a WebRTC leg shows the switch. Pure.

A WebRTC description (RFC 8829 section 5.2, RFC 8843/8842) carries, per audio m= line, the
`UDP/TLS/RTP/SAVPF` profile (RFC 5764 section 8), ICE credentials (`a=ice-ufrag`, RFC 8839
section 5.4) and a DTLS certificate fingerprint (`a=fingerprint`, RFC 8122 section 5),
at media or session level. A plain phone offers `RTP/AVP` (or SDES `RTP/SAVP`) with none of
them. The gateway terminates the first kind and shows the switch the second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from switch.dialog.offeranswer import (
    MediaCapabilities,
    SdpVersioner,
    build_answer,
    build_offer,
    negotiated_streams,
)
from switch.dialog.sdp import (
    Direction,
    MediaDescription,
    SdpError,
    SessionDescription,
    parse_sdp,
)

PLAIN_CODECS = ("PCMU", "PCMA")  # what the media engine relays without transcoding
_WEBRTC_PROFILES = ("UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVP", "RTP/SAVPF", "TCP/TLS/RTP/SAVPF")


def _has(sdp: SessionDescription, m: MediaDescription, name: str) -> bool:
    return m.attribute(name) is not None or any(a == name for a, _ in sdp.attributes)


def webrtc_audio(sdp: SessionDescription) -> MediaDescription | None:
    """The first active audio stream that is WebRTC: a DTLS-SRTP profile, ICE credentials
    and a fingerprint (RFC 8829 5.2.1); None when the description is plain RTP."""
    for m in sdp.media:
        if m.media != "audio" or m.rejected:
            continue
        if (m.proto.upper() in _WEBRTC_PROFILES and _has(sdp, m, "fingerprint")
                and _has(sdp, m, "ice-ufrag")):
            return m
    return None


def is_webrtc(body: bytes) -> bool:
    """Does this SIP body hold a WebRTC description? Unparseable bodies are not (the core
    answers them as it answers any bad SDP)."""
    if b"fingerprint" not in body or b"ice-ufrag" not in body:
        return False  # the cheap test first: most bodies are plain phones'
    try:
        return webrtc_audio(parse_sdp(body)) is not None
    except (SdpError, ValueError):
        return False


def direction_of(body: bytes | str) -> Direction:
    """The direction the WebRTC side asks for (hold is sendonly or inactive, RFC 3264 8.4)."""
    sdp = parse_sdp(body)
    m = webrtc_audio(sdp) or next((x for x in sdp.media if x.media == "audio"), None)
    return sdp.direction_of(m) if m is not None else Direction.SENDRECV


@dataclass(frozen=True, slots=True)
class PlainPeer:
    """Where and how the gateway sends plain RTP toward the switch (the relay or an
    application endpoint), as negotiated on the plain side."""

    host: str
    port: int
    payload_type: int
    codec: str  # "PCMU" | "PCMA"
    telephone_event: int | None
    sends: bool  # False while the switch side holds us (sendonly/inactive toward it)


def plain_offer(versioner: SdpVersioner, host: str, port: int,
                direction: Direction = Direction.SENDRECV) -> SessionDescription:
    """What the switch gets instead of the browser's offer: G.711 and RFC 4733 events on
    the gateway's plain socket (RFC 3264 section 5)."""
    caps = MediaCapabilities(host, port, codecs=PLAIN_CODECS, username="wte-webrtc")
    return versioner.stamp(build_offer(caps, direction=direction))


def plain_answer(versioner: SdpVersioner, offer: SessionDescription, host: str, port: int,
                 direction: Direction = Direction.SENDRECV) -> SessionDescription:
    """What the switch gets instead of the browser's answer to its plain offer; raises
    SipError 488 when the offer has no G.711 (RFC 3264 section 6)."""
    caps = MediaCapabilities(host, port, codecs=PLAIN_CODECS, username="wte-webrtc")
    return versioner.stamp(build_answer(offer, caps, direction=direction))


def plain_peer(local: SessionDescription, remote: SessionDescription) -> PlainPeer | None:
    """The switch side's address and the codec to send it (RFC 3264 sections 6.1, 7)."""
    streams = negotiated_streams(local, remote)
    if not streams or streams[0].encoding.upper() not in PLAIN_CODECS:
        return None
    s = streams[0]
    remote_m = remote.media[s.index]
    return PlainPeer(s.remote_address, s.remote_port, s.payload_type, s.encoding.upper(),
                     s.telephone_event, remote.direction_of(remote_m).receives)


# the line ends are left alone (lookahead): a description keeps its CRLFs
_DIRECTION_LINE = re.compile(r"^a=(sendrecv|sendonly|recvonly|inactive)(?=\r?$)", re.M)
_ORIGIN_LINE = re.compile(r"^o=(\S+) (\S+) (\d+) ([^\r\n]*)", re.M)
_SETUP_LINE = re.compile(r"^a=setup:(\w+)(?=\r?$)", re.M)


def restamp(sdp: str, direction: Direction, *, version: int,
            setup: str | None = None) -> str:
    """Our last WebRTC description again, with another direction and a new o= version: the
    answer to a browser's hold or resume re-offer that changes nothing else (RFC 3264
    section 8: same transport, ICE and DTLS; `setup` pins the DTLS role already
    established, RFC 5763 section 5, when the description was our offer with actpass)."""
    text = _DIRECTION_LINE.sub(f"a={direction.value}", sdp)
    text = _ORIGIN_LINE.sub(lambda m: f"o={m.group(1)} {m.group(2)} {version} {m.group(4)}",
                            text, count=1)
    if setup is not None:
        text = _SETUP_LINE.sub(f"a=setup:{setup}", text)
    return text


def origin_version(sdp: str) -> int:
    m = _ORIGIN_LINE.search(sdp)
    return int(m.group(3)) if m else 0


def setup_of(sdp: str) -> str | None:
    m = _SETUP_LINE.search(sdp)
    return m.group(1) if m else None


def answering_setup(remote_setup: str | None) -> str:
    """The DTLS role our answer keeps given the browser's a=setup (RFC 5763 section 5):
    active when it is passive, passive otherwise."""
    return "active" if remote_setup == "passive" else "passive"
