"""The asyncio adapter: UDP ports, the media engine, endpoints and relays.

Everything here is thin: sockets, the shared 20 ms :class:`~media.clock.MediaClock`, futures
for the application.  Logic lives in the pure modules (:mod:`media.session`, :mod:`media.latch`,
:mod:`media.rtcp`...).  RTP uses an even port and RTCP the next odd one (RFC 3550 section 11).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import numpy as np

from media import rtcp
from media.clock import MediaClock
from media.codecs import Pcm, get_codec, transcode_table
from media.dtmf import DtmfDigit
from media.hold import HoldState, LegHold, Party, next_state, plan_for
from media.latch import Addr, Latch
from media.player import MusicOnHold, Source
from media.recorder import Recorder, RecordingResult
from media.relay_hold import HoldingLeg
from media.rtp import RtpError, payload_offset
from media.session import (
    DigitReceived,
    EndpointSession,
    PlaybackFinished,
    RecordingFinished,
    RemoteDescription,
)
from media.srtp import SrtpContext
from media.stats import RtpStats

log = logging.getLogger(__name__)
_rng = random.SystemRandom()


class PortsExhausted(RuntimeError):
    """No free even/odd port pair in the configured range."""


class _Ports:
    """Even/odd port pairs from a range, bound on demand (another process may hold some).

    Each pair is drawn at random among the free ones (``secrets``): ports handed out in
    sequence let a third party predict the next call's relay port and send to it first.
    """

    _TRIES = 16  # random draws before falling back to a shuffled scan of the free pairs

    def __init__(self, host: str, port_min: int, port_max: int) -> None:
        if port_min < 1024 or port_max > 65535 or port_max - port_min < 1:
            raise ValueError(f"bad RTP port range {port_min}-{port_max}")
        self.host = host
        self.pairs = list(range(port_min + (port_min & 1), port_max, 2))
        self._used: set[int] = set()

    def _candidates(self) -> Iterator[int]:
        pairs, used = self.pairs, self._used
        for _ in range(self._TRIES):
            port = pairs[secrets.randbelow(len(pairs))]
            if port not in used:
                yield port
        # nearly full (or unlucky): every free pair once, in a random order
        free = [p for p in pairs if p not in used]
        _rng.shuffle(free)
        yield from free

    def bind_pair(self) -> tuple[socket.socket, socket.socket]:
        tried: set[int] = set()
        for port in self._candidates():
            if port in tried or port in self._used:
                continue
            tried.add(port)
            rtp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtp_sock.bind((self.host, port))
                rtcp_sock.bind((self.host, port + 1))
            except OSError:
                rtp_sock.close()
                rtcp_sock.close()
                continue
            rtp_sock.setblocking(False)
            rtcp_sock.setblocking(False)
            self._used.add(port)
            return rtp_sock, rtcp_sock
        raise PortsExhausted(f"no free RTP port pair on {self.host}")

    def release(self, port: int) -> None:
        self._used.discard(port)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, handler: Any) -> None:
        self.datagram_received = handler  # type: ignore[method-assign]

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)  # ICMP port unreachable from a phone gone away


async def _open(sock: socket.socket, handler: Any) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(handler), sock=sock)
    return transport


class MediaEngine:
    """One per process: the port range, the 20 ms clock, every endpoint and relay."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port_min: int = 20000,
        port_max: int = 29999,
        *,
        rtcp_interval: float = 5.0,
    ) -> None:
        self.host = host
        self.rtcp_interval = rtcp_interval
        self.ports = _Ports(host, port_min, port_max)
        self.clock = MediaClock()
        self._endpoints: set[MediaEndpoint] = set()
        self._relays: set[Relay] = set()
        # Relay packets dropped since start, for /metrics: from a source that is not the
        # leg's phone (hijack attempts, stale senders, sources in probation) and malformed.
        self.foreign_dropped = 0
        self.malformed_dropped = 0

    def counters(self) -> dict[str, int]:
        """Process-wide relay drop counters (the per-leg ones are in ``RelayLeg``)."""
        return {"rtp_foreign_dropped": self.foreign_dropped,
                "rtp_malformed_dropped": self.malformed_dropped,
                "rtp_port_pairs_in_use": len(self.ports._used),
                "rtp_port_pairs": len(self.ports.pairs)}

    async def start(self) -> None:
        await self.clock.start()

    async def stop(self) -> None:
        for ep in list(self._endpoints):
            await ep.close()
        for r in list(self._relays):
            await r.close()
        await self.clock.stop()

    async def open_endpoint(self) -> MediaEndpoint:
        rtp_sock, rtcp_sock = self.ports.bind_pair()
        ep = MediaEndpoint(self, rtp_sock, rtcp_sock)
        await ep._open()
        self._endpoints.add(ep)
        return ep

    async def open_relay_leg(self) -> RelayLeg:
        """One relay leg on its own, for a party an application hands its caller to; it
        becomes half of a relay with :meth:`bridge` (or is closed with ``_close``)."""
        rtp_sock, rtcp_sock = self.ports.bind_pair()
        leg = RelayLeg(self, rtp_sock, rtcp_sock)
        await leg._open()
        return leg

    def bridge(self, endpoint: MediaEndpoint, leg_b: RelayLeg) -> Relay:
        """The application that answered on ``endpoint`` hands its caller to the party on
        ``leg_b``: the endpoint's sockets become the caller's relay leg, so the caller keeps
        sending to the same port and needs no re-INVITE."""
        relay = Relay(self, endpoint._hand_over(), leg_b)
        self._relays.add(relay)
        return relay

    async def open_relay(self) -> Relay:
        legs = []
        for _ in range(2):
            rtp_sock, rtcp_sock = self.ports.bind_pair()
            leg = RelayLeg(self, rtp_sock, rtcp_sock)
            await leg._open()
            legs.append(leg)
        relay = Relay(self, legs[0], legs[1])
        self._relays.add(relay)
        return relay


class MediaEndpoint:
    """Media terminated by the switch: prompts, tones, MoH, echo, recording, DTMF."""

    def __init__(self, engine: MediaEngine, rtp_sock: socket.socket, rtcp_sock: socket.socket):
        self._engine = engine
        self.local_host, self.local_port = cast(Addr, rtp_sock.getsockname())
        self._socks = (rtp_sock, rtcp_sock)
        self.session = EndpointSession(rtcp_interval=engine.rtcp_interval)
        self._loop = asyncio.get_running_loop()
        self._rtp: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._digits: asyncio.Queue[DtmfDigit] = asyncio.Queue()
        self._recording: asyncio.Future[RecordingResult] | None = None
        self._played: asyncio.Future[bool] | None = None
        self._tick_id: int | None = None
        self.closed = False

    async def _open(self) -> None:
        self._rtp = await _open(self._socks[0], self._on_rtp)
        self._rtcp = await _open(self._socks[1], self._on_rtcp)
        self._tick_id = self._engine.clock.add(self._tick)

    # --- what the SIP side calls ------------------------------------------------------------
    def set_remote(
        self,
        host: str,
        port: int,
        payload_type: int,
        codec: str,
        dtmf_payload_type: int | None,
        ptime_ms: int = 20,
        *,
        inband_dtmf: bool = True,
    ) -> None:
        self.session.set_remote(
            RemoteDescription(
                host, port, payload_type, codec, dtmf_payload_type, ptime_ms, inband_dtmf
            )
        )

    def set_srtp(self, local_key_b64: str, remote_key_b64: str, suite: str) -> None:
        """SDES keys from the offer/answer (RFC 4568); call before media flows."""
        self.session.set_srtp(SrtpContext(local_key_b64, remote_key_b64, suite))

    def play(
        self,
        pcm: Pcm | Sequence[Pcm],
        *,
        loop: bool = False,
        interruptible: bool = True,
    ) -> None:
        prompts = [pcm] if isinstance(pcm, np.ndarray) else list(pcm)
        self.session.play_prompts(prompts, loop=loop, interruptible=interruptible)
        self._arm_played()

    def play_tone(self, freq_hz: float, *, amplitude: float = 0.3) -> None:
        self.session.play_tone(freq_hz, amplitude)
        self._arm_played()

    def play_moh(self, source: MusicOnHold) -> None:
        self.session.play_moh(source)
        self._arm_played()

    def stop_playing(self) -> None:
        self.session.stop_playing()
        self._drain()

    def play_source(self, source: Source) -> None:
        """Play any source until replaced (a conference room's feed, issue 16)."""
        self.session.play(source)
        self._arm_played()

    def set_sink(self, sink: Callable[[Pcm | None], None] | None) -> None:
        """Hand each tick's received frame (None: a gap) to `sink` (a conference room)."""
        self.session.sink = sink

    async def wait_played(self) -> bool:
        """Wait for the current playback: True if it ran to its end, False if interrupted."""
        return await self._played if self._played is not None else True

    def echo(self, enabled: bool) -> None:
        self.session.set_echo(enabled)

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        self.session.send_dtmf(digits, duration_ms)

    def start_recording(
        self,
        path: str,
        *,
        max_seconds: float,
        stop_on_dtmf: bool = True,
        silence_seconds: float | None = None,
        keep_silence: bool = False,
    ) -> None:
        rec = Recorder(
            path,
            max_seconds=max_seconds,
            stop_on_dtmf=stop_on_dtmf,
            silence_seconds=silence_seconds,
            keep_silence=keep_silence,
        )
        self.session.start_recording(rec)
        self._drain()
        self._recording = self._loop.create_future()

    def stop_recording(self) -> None:
        self.session.stop_recording()
        self._drain()

    async def wait_recording(self) -> RecordingResult | None:
        return await self._recording if self._recording is not None else None

    async def next_digit(self, timeout: float) -> DtmfDigit | None:
        try:
            return await asyncio.wait_for(self._digits.get(), timeout)
        except TimeoutError:
            return None

    def stats(self) -> RtpStats:
        return self.session.stats()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.session.stop_recording()
        self._drain()
        if self._tick_id is not None:
            self._engine.clock.remove(self._tick_id)
        target = self.session.rtcp_target()
        if self._rtcp is not None and target is not None:
            self._rtcp.sendto(self.session.build_rtcp(self._loop.time(), time.time(), True), target)
        if self._recording is not None:
            await asyncio.shield(self._recording)
        for t in (self._rtp, self._rtcp):
            if t is not None:
                t.close()
        self._engine.ports.release(self.local_port)
        self._engine._endpoints.discard(self)

    def _hand_over(self) -> RelayLeg:
        """Stop being an endpoint and give the sockets, already bound and receiving, to a
        relay leg: the engine's clock no longer ticks us; a recording still running ends
        (and is saved) as at a close."""
        self.closed = True
        self.session.stop_recording()
        self._drain()
        if self._tick_id is not None:
            self._engine.clock.remove(self._tick_id)
            self._tick_id = None
        leg = RelayLeg(self._engine, *self._socks)
        for transport, handler in ((self._rtp, leg._on_rtp), (self._rtcp, leg._on_rtcp)):
            if transport is not None:
                protocol = cast(_Datagrams, transport.get_protocol())
                protocol.datagram_received = handler  # type: ignore[method-assign]
        leg.transport, leg.rtcp_transport = self._rtp, self._rtcp
        self._rtp = self._rtcp = None
        self._engine._endpoints.discard(self)
        return leg

    # --- adapter plumbing ---------------------------------------------------------------------
    def _arm_played(self) -> None:
        self._drain()  # the previous playback's PlaybackFinished resolves the old future
        self._played = self._loop.create_future()

    def _on_rtp(self, data: bytes, addr: Addr) -> None:
        self.session.receive_rtp(data, addr, self._loop.time())
        self._drain()

    def _on_rtcp(self, data: bytes, addr: Addr) -> None:
        self.session.receive_rtcp(data, addr, self._loop.time(), time.time())

    def _tick(self, now: float) -> None:
        s = self.session
        packets = s.tick(now)
        target = s.target
        if packets and target is not None and self._rtp is not None:
            for p in packets:
                self._rtp.sendto(p, target)
        if s.rtcp_due(now) and self._rtcp is not None:
            dest = s.rtcp_target()
            if dest is not None:
                self._rtcp.sendto(s.build_rtcp(now, time.time()), dest)
        if s._events:
            self._drain()

    def _drain(self) -> None:
        while (ev := self.session.next_event()) is not None:
            if isinstance(ev, DigitReceived):
                self._digits.put_nowait(ev.digit)
            elif isinstance(ev, PlaybackFinished):
                if self._played is not None and not self._played.done():
                    self._played.set_result(not ev.interrupted)
            elif isinstance(ev, RecordingFinished):
                fut = self._recording
                if fut is None or fut.done():
                    fut = self._recording = self._loop.create_future()
                task = self._loop.run_in_executor(None, ev.recorder.save)
                task.add_done_callback(functools.partial(_settle, fut))


def _settle(fut: asyncio.Future[RecordingResult], task: asyncio.Future[RecordingResult]) -> None:
    if fut.done():
        return
    exc = task.exception()
    if exc is not None:
        log.error("saving a recording failed: %s", exc)
        fut.set_exception(exc)
    else:
        fut.set_result(task.result())


class RelayLeg(HoldingLeg):
    """One side of an anchored call.  Receives from its phone, sends through the other leg.

    The per-packet path (:meth:`_on_rtp`) is a comparison with the latched source, three
    counters, a sequence update and one ``sendto``; rewriting (payload type numbers, PCMU<->PCMA
    by ``bytes.translate``) happens only when the two legs negotiated differently, and holding
    back only on hold (:meth:`Relay.set_hold`, :class:`media.relay_hold.HoldingLeg`).
    """

    def __init__(self, engine: MediaEngine, rtp_sock: socket.socket, rtcp_sock: socket.socket):
        self._engine = engine
        self.local_host, self.local_port = cast(Addr, rtp_sock.getsockname())
        self._socks = (rtp_sock, rtcp_sock)
        self.latch = Latch()
        self.peer: RelayLeg | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.rtcp_transport: asyncio.DatagramTransport | None = None
        self.dest: Addr | None = None  # where this leg's phone gets media
        self.rtcp_dest: Addr | None = None
        self.latched: Addr | None = None
        self.payload_type: int | None = None
        self.dtmf_payload_type: int | None = None
        self.codec: str | None = None
        self._rewrite = False
        self._xlate: bytes | None = None
        self._hold: LegHold | None = None  # set on a first hold (the hot path never reads it)
        self._loop = asyncio.get_running_loop()
        self.rx_packets = self.rx_bytes = self.tx_packets = self.tx_bytes = 0
        self.dropped = 0  # every packet not relayed: malformed plus foreign
        self.foreign_dropped = 0  # RTP and RTCP from a source other than this leg's phone
        self._rtcp_source: Addr | None = None  # RTCP's own NAT mapping, locked once seen
        self._base_seq: int | None = None
        self._max_seq = 0
        self._cycles = 0
        self._remote_block: rtcp.ReportBlock | None = None

    async def _open(self) -> None:
        self.transport = await _open(self._socks[0], self._on_rtp)
        self.rtcp_transport = await _open(self._socks[1], self._on_rtcp)

    def set_remote(
        self,
        host: str,
        port: int,
        payload_type: int,
        codec: str,
        dtmf_payload_type: int | None = None,
        *,
        nat_host: str | None = None,
    ) -> None:
        """The phone's SDP (offer/answer, re-INVITE): where it wants media, with what types.

        ``nat_host`` is the address its signalling came from, when known: then only a source
        on that IP may be learned if media does not come from the SDP address (see
        :mod:`media.latch` for the whole rule).  A different address re-learns the source.
        """
        get_codec(codec)  # KeyError names an unknown codec
        self.payload_type, self.codec, self.dtmf_payload_type = (
            payload_type,
            codec,
            dtmf_payload_type,
        )
        before = self.latch.expected
        self.latch.set_expected((host, port), nat_host)
        self.latched = self.latch.latched
        self.dest = self.latch.target
        if self.latch.expected != before or self._rtcp_source is None:
            self._rtcp_source = None
            self.rtcp_dest = (host, port + 1)
        self._configure()
        if self.peer is not None:
            self.peer._configure()

    def _configure(self) -> None:
        """Decide whether packets to the peer need a look: rewriting (types or codec differ)
        or holding back (hold).  One flag, so the plain path tests one attribute."""
        p = self.peer
        held = self._hold is not None and self._hold.muted
        if p is None or self.codec is None or p.codec is None:
            self._rewrite = held
            return
        self._xlate = transcode_table(self.codec, p.codec)
        self._rewrite = held or (
            self._xlate is not None
            or self.payload_type != p.payload_type
            or self.dtmf_payload_type != p.dtmf_payload_type
        )

    def _on_rtp(self, data: bytes, addr: Addr) -> None:
        if addr != self.latched:
            # the slow path: a packet from anyone but the locked source (media.latch decides)
            if len(data) < 12 or data[0] >> 6 != 2:
                self.dropped += 1
                self._engine.malformed_dropped += 1
                return
            if not self.latch.check(addr, (data[2] << 8) | data[3], self._loop.time(),
                                    int.from_bytes(data[8:12], "big")):
                self.dropped += 1
                self.foreign_dropped += 1
                self._engine.foreign_dropped += 1
                return
            self.latched = self.dest = addr
        else:
            self.latch.last_seen = self._loop.time()
        self.rx_packets += 1
        self.rx_bytes += len(data)
        seq = (data[2] << 8) | data[3]
        if self._base_seq is None:
            self._base_seq = self._max_seq = seq
        elif (seq - self._max_seq) & 0xFFFF < 3000:  # RFC 3550 A.1 in-order window
            if seq < self._max_seq:
                self._cycles += 0x10000
            self._max_seq = seq
        peer = self.peer
        if peer is None or peer.dest is None or peer.transport is None:
            return
        if self._rewrite:
            data = self._rewritten(data, peer)
            if not data:
                return
        peer.transport.sendto(data, peer.dest)
        peer.tx_packets += 1
        peer.tx_bytes += len(data)

    def _rewritten(self, data: bytes, peer: RelayLeg) -> bytes:
        if self._hold is not None and self._hold.muted:
            return b""  # on hold: nothing crosses
        pt = data[1] & 0x7F
        if pt == self.dtmf_payload_type and peer.dtmf_payload_type is not None:
            out_pt, xlate = peer.dtmf_payload_type, None
        elif pt == self.payload_type and peer.payload_type is not None:
            out_pt, xlate = peer.payload_type, self._xlate
        else:
            return b""  # a type the other side did not negotiate
        try:
            off = payload_offset(data)
        except (RtpError, IndexError):
            return b""
        head = bytes((data[0], (data[1] & 0x80) | out_pt)) + data[2:off]
        body = data[off:]
        return head + (body.translate(xlate) if xlate is not None else body)

    def _on_rtcp(self, data: bytes, addr: Addr) -> None:
        """Forward RTCP unchanged to the other phone; read its report blocks on the way.

        Accepted only from where the phone's RTCP comes from (:meth:`Latch.rtcp_allowed`), so a
        stranger can neither inject reports nor redirect the other phone's reports to itself.
        """
        if not self.latch.rtcp_allowed(addr, self._rtcp_source):
            self.dropped += 1
            self.foreign_dropped += 1
            self._engine.foreign_dropped += 1
            return
        if addr != self._rtcp_source:  # first RTCP, or the RTP source moved (NAT rebinding)
            self._rtcp_source = self.rtcp_dest = addr
        try:
            for p in rtcp.parse_rtcp(data):
                if isinstance(p, rtcp.RtcpReport) and p.blocks:
                    self._remote_block = p.blocks[0]
        except (rtcp.RtcpError, IndexError, ValueError):
            pass  # SRTCP or garbage: still forwarded, just not read
        peer = self.peer
        if peer is not None and peer.rtcp_transport is not None and peer.rtcp_dest is not None:
            peer.rtcp_transport.sendto(data, peer.rtcp_dest)

    def stats(self) -> RtpStats:
        expected = (
            0 if self._base_seq is None else self._cycles + self._max_seq - self._base_seq + 1
        )
        lost = max(0, expected - self.rx_packets)
        b = self._remote_block
        return RtpStats(
            packets_sent=self.tx_packets,
            bytes_sent=self.tx_bytes,
            packets_received=self.rx_packets,
            bytes_received=self.rx_bytes,
            packets_lost=lost,
            fraction_lost=lost / expected if expected else 0.0,
            remote_packets_lost=b.cumulative_lost if b else None,
            remote_fraction_lost=b.fraction_lost / 256 if b else None,
            remote_jitter_ms=b.jitter / 8.0 if b else None,
            dropped=self.dropped,
        )

    def _close(self) -> None:
        self._play_music(None)
        for t in (self.transport, self.rtcp_transport):
            if t is not None:
                t.close()
        self._engine.ports.release(self.local_port)


class Relay:
    """Two legs of one call bridged in the switch (media anchored)."""

    def __init__(self, engine: MediaEngine, leg_a: RelayLeg, leg_b: RelayLeg) -> None:
        self._engine = engine
        self.leg_a, self.leg_b = leg_a, leg_b
        leg_a.peer, leg_b.peer = leg_b, leg_a
        self.hold_state = HoldState.TALKING

    def set_hold(self, leg: RelayLeg, holding: bool, music: MusicOnHold | None = None) -> None:
        """The phone behind ``leg`` put the call on hold (or resumed): while one party holds
        the relay forwards nothing and the other party hears ``music`` (None: silence)."""
        party = Party.A if leg is self.leg_a else Party.B
        self.hold_state = next_state(self.hold_state, party, holding)
        plan = plan_for(self.hold_state)
        self.leg_a._mute(not plan.forward_a_to_b)
        self.leg_b._mute(not plan.forward_b_to_a)
        for target, wanted in ((self.leg_a, plan.music_to_a), (self.leg_b, plan.music_to_b)):
            if not wanted or not target.playing_music:  # a playing track plays on
                target._play_music(music if wanted else None)

    def stats(self) -> tuple[RtpStats, RtpStats]:
        return self.leg_a.stats(), self.leg_b.stats()

    async def close(self) -> None:
        self.leg_a._close()
        self.leg_b._close()
        self._engine._relays.discard(self)
