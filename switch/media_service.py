"""Media for calls: anchoring through the relay, and the switch's own test services.

Anchoring (default per site): the caller's offer goes to the callee with the relay's B-leg
address, and the callee's answer goes back with the relay's A-leg address, so RTP always
crosses the switch (NAT-safe; needed later for hold, recording and transfer). Both legs
keep the codec the callee chose from the caller's offer, so the relay only forwards.

Test services (issue 6): `*43` echoes what the caller sends, `*44` plays a steady 1 kHz
tone until the caller hangs up. Operators use them to diagnose one-way audio and codecs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from media import MediaEndpoint, MediaEngine, PortsExhausted, Relay
from switch.dialog.offeranswer import (
    MediaCapabilities,
    SdpVersioner,
    build_answer,
    negotiated_streams,
    rewrite_connection,
)
from switch.dialog.sdp import SessionDescription, parse_sdp
from switch.sip import SipError

if TYPE_CHECKING:
    from switch.app import Switch

log = logging.getLogger("switch.media")

SUPPORTED_CODECS = ("PCMU", "PCMA")
TEST_TONE_HZ = 1000.0


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

    def offer_for_callee(self) -> bytes:
        leg = self.relay.leg_b
        sdp = rewrite_connection(restrict_codecs(self.offer), leg.local_host, leg.local_port)
        return self.versioner_b.stamp(sdp).to_bytes()

    def answer_for_caller(self, leg: int, body: bytes) -> bytes:
        """Latch the relay onto the callee's answer; give the caller the relay's A side."""
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
                                            s.telephone_event)
                self.relay.leg_a.set_remote(remote_a[0], remote_a[1], s.payload_type, codec,
                                            s.telephone_event)
        leg = self.relay.leg_a
        sdp = rewrite_connection(answer, leg.local_host, leg.local_port)
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

    def answer_reoffer(self, side: str, body: bytes) -> bytes:
        """Answer a re-INVITE/UPDATE offer from one side (hold, resume, new address) on the
        relay leg that faces it (RFC 3264 section 8); the other side is not disturbed."""
        leg = self.relay.leg_a if side == "a" else self.relay.leg_b
        versioner = self.versioner_a if side == "a" else self.versioner_b
        offer = parse_sdp(body)
        codecs = (self.codec,) if self.codec else SUPPORTED_CODECS
        caps = MediaCapabilities(leg.local_host, leg.local_port, codecs=codecs)
        answer = versioner.stamp(build_answer(offer, caps))
        streams = negotiated_streams(answer, offer)
        if streams and streams[0].encoding.upper() in SUPPORTED_CODECS:
            s = streams[0]
            leg.set_remote(s.remote_address, s.remote_port, s.payload_type, s.encoding.upper(),
                           s.telephone_event)
        return answer.to_bytes()

    async def close(self) -> None:
        await self.relay.close()


class MediaService:
    def __init__(self, host: str, port_min: int, port_max: int) -> None:
        self.host = host
        self.port_min = port_min
        self.port_max = port_max
        self.engine: MediaEngine | None = None
        self.recordings: Path | None = None
        self._session_ids = itertools.count(secrets.randbelow(2**31))

    async def start(self, switch: Switch) -> None:
        host = switch.sip_address[0]
        self.recordings = switch.options.data_dir / "recordings"
        self.engine = MediaEngine(host, self.port_min, self.port_max)
        await self.engine.start()
        log.info("media engine on %s ports %d-%d", host, self.port_min, self.port_max)

    async def stop(self, switch: Switch) -> None:
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

    async def test_service(self, feature: str, offer_body: bytes,
                           call_id: str = "") -> tuple[Any, bytes]:
        """Answer the caller with a media endpoint running `feature` (echo or tone)."""
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
            answer = self._versioner().stamp(build_answer(offer, caps))
            streams = negotiated_streams(answer, offer)
            if not streams:
                raise SipError(488, "Not Acceptable Here")
            s = streams[0]
            endpoint.set_remote(s.remote_address, s.remote_port, s.payload_type,
                                s.encoding.upper(), s.telephone_event, s.ptime or 20)
            if feature == "echo_test":
                endpoint.echo(True)
            elif feature == "record_test":
                assert self.recordings is not None
                self.recordings.mkdir(parents=True, exist_ok=True)
                path = self.recordings / f"record-test-{secrets.token_hex(6)}.wav"
                endpoint.play(beep())
                endpoint.start_recording(str(path), max_seconds=120, stop_on_dtmf=False)
                log.info("record test call=%s recording path=%s", call_id, path)
            else:
                endpoint.play_tone(TEST_TONE_HZ)
        except BaseException:
            with contextlib.suppress(Exception):
                await endpoint.close()
            raise
        log.info("test service %s answering on %s:%d", feature, endpoint.local_host,
                 endpoint.local_port)
        return ServiceSession(endpoint, call_id), answer.to_bytes()


def beep(seconds: float = 1.0, freq: float = TEST_TONE_HZ) -> np.ndarray:
    """A 1 kHz prompt, 8 kHz 16-bit mono (the media engine's PCM format)."""
    t = np.arange(int(8000 * seconds)) / 8000.0
    return (0.3 * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


class ServiceSession:
    """A test service's endpoint plus a task that reports every DTMF digit it receives."""

    def __init__(self, endpoint: MediaEndpoint, call_id: str) -> None:
        self.endpoint = endpoint
        self.call_id = call_id
        self.digits: list[str] = []
        self._task = asyncio.ensure_future(self._report_digits())

    async def _report_digits(self) -> None:
        while True:
            digit = await self.endpoint.next_digit(3600.0)
            if digit is None:
                continue
            self.digits.append(digit.digit)
            log.info("dtmf call=%s digit=%s source=%s duration_ms=%d", self.call_id, digit.digit,
                     digit.source.value, digit.duration_ms)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.endpoint.close()
        result = await self.endpoint.wait_recording()
        if result is not None:
            log.info("record test call=%s saved=%s seconds=%.2f path=%s digits=%s", self.call_id,
                     result.saved, result.duration_s, result.path, "".join(self.digits))


async def close_media(media: Any) -> None:
    if media is not None:
        with contextlib.suppress(Exception):
            await media.close()
