"""One WebRTC leg terminated by the switch: an aiortc RTCPeerConnection bridged to plain RTP.

Browser side (aiortc): full ICE (aioice gathers host candidates, and server-reflexive ones
when STUN servers are configured; it answers and sends connectivity checks, RFC 8445; the
switch is not ICE-lite), DTLS-SRTP (RFC 5763/5764), Opus or PCMU/PCMA decoded to PCM by
aiortc's decoders and encoded by its encoders.

Switch side: one UDP socket on the media host, a plain RTP/G.711 phone as far as the relay
or an application endpoint can tell (its address is in the plain SDP the edge shows the
switch). PCM from the browser is resampled to 8 kHz mono (libav's resampler, via PyAV),
encoded with the media engine's G.711 tables and sent every 20 ms as the browser's frames
arrive; RTP from the switch is decoded into a small queue that the browser-bound track
reads on aiortc's 20 ms clock (silence when it is empty: no buffering of delay).

Digits: RFC 4733 events from the switch side are played to the browser as in-band DTMF
(ITU-T Q.23 tone pairs), since aiortc negotiates no telephone-event payload; digits from
the browser arrive as SIP INFO (the switch's existing dtmf-relay handling, RFC 6086), which
the edge passes through untouched.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fractions
import logging
import secrets
import socket
import time
from typing import Any

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from media.codecs import get_codec
from media.dtmf import DtmfReceiver
from media.rtp import RtpError, RtpPacket, parse_rtp

from .sdp import PlainPeer

log = logging.getLogger("switch.webrtc")

RATE = 8000
FRAME = 160  # 20 ms at 8 kHz
QUEUE_FRAMES = 6  # 120 ms: beyond it the oldest audio is dropped (latency over completeness)
# Q.23 DTMF pairs (Hz), for digits the switch side sends as RFC 4733 events
_DTMF_PAIRS = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}


def dtmf_frames(digit: str, ms: int = 100) -> list[np.ndarray[Any, np.dtype[np.int16]]]:
    """`ms` of the digit's tone pair then 60 ms of silence, as 20 ms frames."""
    low, high = _DTMF_PAIRS[digit]
    t = np.arange(RATE * ms // 1000) / RATE
    tone = (0.25 * 32767 * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)) / 2)
    pcm = np.concatenate([tone, np.zeros(RATE * 60 // 1000)]).astype(np.int16)
    pad = (-len(pcm)) % FRAME
    pcm = np.concatenate([pcm, np.zeros(pad, dtype=np.int16)])
    return [pcm[i:i + FRAME] for i in range(0, len(pcm), FRAME)]


class SwitchAudioTrack(MediaStreamTrack):
    """What the browser hears: PCM decoded from the switch side, paced at 20 ms."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.queue: collections.deque[np.ndarray[Any, np.dtype[np.int16]]] = (
            collections.deque(maxlen=QUEUE_FRAMES))
        self.digits: collections.deque[np.ndarray[Any, np.dtype[np.int16]]] = collections.deque()
        self._start: float | None = None
        self._pts = 0
        self._silence = np.zeros(FRAME, dtype=np.int16)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += FRAME
            wait = self._start + self._pts / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        if self.digits:
            pcm = self.digits.popleft()
        elif self.queue:
            pcm = self.queue.popleft()
        else:
            pcm = self._silence
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        return frame


class _PlainSide(asyncio.DatagramProtocol):
    def __init__(self, gateway: WebRtcGateway) -> None:
        self.gateway = gateway

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.gateway._from_switch(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("webrtc plain socket: %s", exc)


class WebRtcGateway:
    """One browser's call leg. `open()` binds the plain socket (sync, so the edge can put
    its port in the plain SDP at once); the peer connection is made by `answer()` (the
    browser offered) or `offer()` (the switch calls the browser), then `accept()`."""

    def __init__(self, host: str, *, prefer: tuple[str, ...] = ("PCMU", "opus"),
                 stun_servers: tuple[str, ...] = (), label: str = "") -> None:
        self.host = host
        self.prefer = prefer
        self.stun_servers = stun_servers
        self.label = label
        self.sock: socket.socket | None = None
        self.rtcp_sock: socket.socket | None = None
        self.port = 0
        self.pc: RTCPeerConnection | None = None
        self.track = SwitchAudioTrack()
        self.peer: PlainPeer | None = None
        self.local_sdp: str | None = None
        self.remote_sdp: str | None = None
        self.codec: str | None = None  # negotiated with the browser, for logs and bench
        self._transport: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._seq = secrets.randbelow(1 << 16)
        self._ts = secrets.randbelow(1 << 32)
        self._ssrc = secrets.randbelow(1 << 32)
        self._dtmf = DtmfReceiver()
        self._pending = np.zeros(0, dtype=np.int16)
        self.closed = False
        self.frames_in = 0  # 20 ms frames from the browser sent on (bench, tests)
        self.frames_out = 0  # 20 ms frames from the switch queued for the browser

    # -- plain side --

    def open(self) -> int:
        """Bind an even RTP port and the RTCP port above it (RFC 3550 section 11): the
        relay sends its RTCP reports to port + 1, which must be ours, not a stranger's."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(50):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind((self.host, 0))
            port = int(sock.getsockname()[1])
            if port % 2 == 0 and port < 65535:
                rtcp = socket.socket(family, socket.SOCK_DGRAM)
                rtcp.setblocking(False)
                try:
                    rtcp.bind((self.host, port + 1))
                except OSError:
                    rtcp.close()
                else:
                    self.sock, self.rtcp_sock, self.port = sock, rtcp, port
                    return port
            sock.close()
        raise OSError("no free RTP/RTCP port pair for a WebRTC leg")

    async def _listen(self) -> None:
        if self._transport is None and self.sock is not None:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(lambda: _PlainSide(self),
                                                               sock=self.sock)
            self._transport = transport
            if self.rtcp_sock is not None:  # the relay's reports: read and dropped
                self._rtcp, _ = await loop.create_datagram_endpoint(
                    asyncio.DatagramProtocol, sock=self.rtcp_sock)

    def set_peer(self, peer: PlainPeer) -> None:
        """Where the switch side listens and which G.711 it wants (from the plain SDP)."""
        self.peer = peer

    def _from_switch(self, data: bytes, addr: tuple[Any, int]) -> None:
        peer = self.peer
        if peer is None or addr[1] != peer.port or addr[0] != peer.host:
            return  # only the switch's own media (relay or endpoint) is taken
        try:
            pkt = parse_rtp(data)
        except RtpError:
            return
        if peer.telephone_event is not None and pkt.payload_type == peer.telephone_event:
            for d in self._dtmf.receive(pkt.timestamp, pkt.payload, time.monotonic()):
                if d.digit in _DTMF_PAIRS:
                    self.track.digits.extend(dtmf_frames(d.digit))
            return
        if pkt.payload_type != peer.payload_type:
            return
        pcm = get_codec(peer.codec).decode(pkt.payload)
        for i in range(0, len(pcm), FRAME):
            chunk = pcm[i:i + FRAME]
            if len(chunk) == FRAME:
                self.track.queue.append(chunk)
                self.frames_out += 1

    def _to_switch(self, pcm: np.ndarray[Any, np.dtype[np.int16]]) -> None:
        peer, transport = self.peer, self._transport
        self._pending = np.concatenate([self._pending, pcm]) if len(self._pending) else pcm
        while len(self._pending) >= FRAME:
            chunk, self._pending = self._pending[:FRAME], self._pending[FRAME:]
            self._ts = (self._ts + FRAME) & 0xFFFFFFFF
            self._seq = (self._seq + 1) & 0xFFFF
            if peer is None or transport is None or not peer.sends:
                continue
            payload = get_codec(peer.codec).encode(chunk)
            pkt = RtpPacket(payload_type=peer.payload_type, sequence=self._seq,
                            timestamp=self._ts, ssrc=self._ssrc, payload=payload)
            transport.sendto(pkt.build(), (peer.host, peer.port))
            self.frames_in += 1

    # -- browser side --

    def _new_pc(self) -> RTCPeerConnection:
        servers = [RTCIceServer(urls=u) for u in self.stun_servers]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers or None))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._spawn(self._pump(track))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            log.info("webrtc %s connection %s", self.label, pc.connectionState)
            if pc.connectionState == "failed":
                await self.close()

        self.pc = pc
        return pc

    def _prefer_codecs(self, transceiver: Any) -> None:
        caps = RTCRtpSender.getCapabilities("audio").codecs
        order = {name.lower(): i for i, name in enumerate(self.prefer)}
        chosen = sorted((c for c in caps if c.mimeType.split("/")[1].lower() in order),
                        key=lambda c: order[c.mimeType.split("/")[1].lower()])
        if chosen:
            transceiver.setCodecPreferences(chosen)

    async def answer(self, offer_sdp: str) -> str:
        """The browser offered: our answer (candidates included, no trickle)."""
        if self.local_sdp is not None:
            return self.local_sdp
        await self._listen()
        pc = self._new_pc()
        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        self.remote_sdp = offer_sdp
        for t in pc.getTransceivers():
            if t.kind == "audio":
                self._prefer_codecs(t)
                t.sender.replaceTrack(self.track)
                t.direction = "sendrecv"
                break
        await pc.setLocalDescription(await pc.createAnswer())
        self.local_sdp = pc.localDescription.sdp
        self._note_codec()
        return self.local_sdp

    async def offer(self) -> str:
        """The switch calls the browser: our offer."""
        if self.local_sdp is not None:
            return self.local_sdp
        await self._listen()
        pc = self._new_pc()
        t = pc.addTransceiver(self.track, direction="sendrecv")
        self._prefer_codecs(t)
        await pc.setLocalDescription(await pc.createOffer())
        self.local_sdp = pc.localDescription.sdp
        return self.local_sdp

    async def accept(self, answer_sdp: str) -> None:
        """The browser's answer to our offer."""
        if self.pc is None or self.remote_sdp is not None:
            return
        self.remote_sdp = answer_sdp
        await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        self._note_codec()

    def _note_codec(self) -> None:
        pc = self.pc
        if pc is None:
            return
        for t in pc.getTransceivers():
            codecs = getattr(t, "_codecs", None) or []
            if codecs:
                self.codec = str(codecs[0].mimeType.split("/")[1])
        log.info("webrtc %s codec=%s plain port=%d", self.label, self.codec, self.port)

    async def _pump(self, track: MediaStreamTrack) -> None:
        """Browser audio (48 kHz Opus or 8 kHz G.711, decoded by aiortc) -> 8 kHz mono."""
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        while not self.closed:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            for out in resampler.resample(frame):
                self._to_switch(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.track.stop()
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()
        for task in list(self._tasks):
            task.cancel()
        if self._transport is not None:
            self._transport.close()
        elif self.sock is not None:
            self.sock.close()
        if self._rtcp is not None:
            self._rtcp.close()
        elif self.rtcp_sock is not None:
            self.rtcp_sock.close()
        log.info("webrtc %s closed (frames to switch=%d, to browser=%d)", self.label,
                 self.frames_in, self.frames_out)
