"""A media endpoint's logic, sans-IO: RTP/RTCP in, RTP/RTCP out, events pulled.

The switch terminates media here (prompts, music on hold, voicemail, IVR digits, echo test).
Driven by the adapter in :mod:`media.udp`: ``receive_rtp``/``receive_rtcp`` with the source
address and ``now``; ``tick(now)`` once per 20 ms clock tick returns the datagrams to send;
``next_event()`` yields :class:`DigitReceived`, :class:`PlaybackFinished` and
:class:`RecordingFinished`.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from media import rtcp
from media.codecs import G711, Codec, Pcm, get_codec
from media.dtmf import DtmfDigit, DtmfReceiver, DtmfSender
from media.inband import InbandDetector
from media.jitter import FrameKind, JitterBuffer
from media.latch import Addr, Latch
from media.player import MohListener, MusicOnHold, PromptPlayer, Source, ToneSource
from media.recorder import Recorder
from media.rtp import RtpError, build_header, parse_rtp
from media.srtp import SrtpContext, SrtpError
from media.stats import ReceptionStats, RtpStats

log = logging.getLogger(__name__)

TICK_MS = 20


@dataclass(frozen=True, slots=True)
class RemoteDescription:
    """What the SDP negotiation decided for this stream (plain values, no SDP here)."""

    host: str
    port: int
    payload_type: int
    codec: str
    dtmf_payload_type: int | None = None
    ptime_ms: int = 20
    inband_dtmf: bool = True


@dataclass(frozen=True, slots=True)
class DigitReceived:
    digit: DtmfDigit


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    interrupted: bool


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    recorder: Recorder


MediaEvent = DigitReceived | PlaybackFinished | RecordingFinished


class EndpointSession:
    def __init__(
        self,
        *,
        ssrc: int | None = None,
        cname: str = "wte",
        rtcp_interval: float = 5.0,
        rng: random.Random | None = None,
        dedup_window: float = 0.3,
    ) -> None:
        self._rng = rng or random.Random()
        self.ssrc = ssrc if ssrc is not None else self._rng.getrandbits(32)
        self.cname = cname
        self.rtcp_interval = rtcp_interval
        self.dedup_window = dedup_window
        self.remote: RemoteDescription | None = None
        self.codec: Codec = get_codec("PCMU")
        self.latch = Latch()
        self.rtcp_source: Addr | None = None
        self.srtp: SrtpContext | None = None
        # sending
        self._seq = self._rng.getrandbits(16)  # random initial values, RFC 3550 section 5.1
        self._ts = self._rng.getrandbits(32)
        self._frames_per_packet = 1
        self._pending: list[Pcm] = []
        self._source: Source | None = None
        self._echo = False
        self._echo_frame: Pcm | None = None
        self._dtmf_out = DtmfSender()
        self._silence = b""
        self.sent_packets = 0
        self.sent_octets = 0
        # receiving
        self.rx = ReceptionStats()
        self.jitter = JitterBuffer()
        self._dtmf_in = DtmfReceiver()
        self._inband = InbandDetector()
        self._recent: deque[DtmfDigit] = deque(maxlen=8)
        self.recorder: Recorder | None = None
        # a conference room's tap (issue 16): each tick's received frame, None for a gap
        self.sink: Callable[[Pcm | None], None] | None = None
        self.dropped = 0
        # RTCP
        self._next_rtcp: float | None = None
        self._last_sr: tuple[int, float] | None = None  # (LSR middle bits, arrival now)
        self._remote_block: rtcp.ReportBlock | None = None
        self.rtt: float | None = None
        self._events: deque[MediaEvent] = deque()

    # --- configuration -------------------------------------------------------------------
    def set_remote(self, desc: RemoteDescription) -> None:
        self.codec = get_codec(desc.codec)
        if self.codec.clock_rate != 8000 or self.codec.sample_rate != 8000:
            raise ValueError(f"{desc.codec}: only 8 kHz codecs are wired to the 20 ms clock yet")
        self.remote = desc
        self._frames_per_packet = max(1, round(desc.ptime_ms / TICK_MS))
        self._silence = self.codec.encode(np.zeros(160, np.int16))
        self.latch.set_expected((desc.host, desc.port))

    def set_srtp(self, context: SrtpContext | None) -> None:
        self.srtp = context

    # --- control --------------------------------------------------------------------------
    def play(self, source: Source) -> None:
        if self._source is not None:
            self._events.append(PlaybackFinished(interrupted=True))
        self._source = source

    def play_prompts(self, prompts: list[Pcm], *, loop: bool, interruptible: bool) -> None:
        self.play(PromptPlayer(prompts, loop=loop, interruptible=interruptible))

    def play_tone(self, freq_hz: float, amplitude: float) -> None:
        self.play(ToneSource(freq_hz, amplitude))

    def play_moh(self, moh: MusicOnHold) -> None:
        self.play(moh.listener())

    def stop_playing(self) -> None:
        if self._source is not None:
            self._source = None
            self._events.append(PlaybackFinished(interrupted=True))

    @property
    def playing(self) -> bool:
        return self._source is not None

    def set_echo(self, enabled: bool) -> None:
        self._echo = enabled
        self._echo_frame = None

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Send digits as RFC 4733 events (needs a negotiated telephone-event type)."""
        self._dtmf_out.queue(digits, duration_ms)

    def start_recording(self, recorder: Recorder) -> None:
        if self.recorder is not None and self.recorder.stop():
            self._events.append(RecordingFinished(self.recorder))
        self.recorder = recorder

    def stop_recording(self) -> None:
        if self.recorder is not None and self.recorder.stop():
            self._events.append(RecordingFinished(self.recorder))

    def next_event(self) -> MediaEvent | None:
        return self._events.popleft() if self._events else None

    # --- receiving ------------------------------------------------------------------------
    def receive_rtp(self, data: bytes, addr: Addr, now: float) -> None:
        remote = self.remote
        if remote is None:
            self.dropped += 1
            return
        try:
            if self.srtp is not None:
                data = self.srtp.unprotect(data)
            pkt = parse_rtp(data)
        except (RtpError, SrtpError) as exc:
            log.debug("dropping datagram from %s: %s", addr, exc)
            self.dropped += 1
            return
        if not self.latch.check(addr, pkt.sequence, now, pkt.ssrc):
            self.dropped += 1
            return
        previous_ssrc = self.rx.ssrc
        if not self.rx.update(pkt.ssrc, pkt.sequence, pkt.timestamp, len(pkt.payload), now):
            return
        if previous_ssrc is not None and pkt.ssrc != previous_ssrc:
            log.info("SSRC change %08x -> %08x", previous_ssrc, pkt.ssrc)
            self.jitter.reset()
            self._dtmf_in = DtmfReceiver()
        if pkt.payload_type == remote.dtmf_payload_type:
            try:
                digits = self._dtmf_in.receive(pkt.timestamp, pkt.payload, now)
            except ValueError:
                self.dropped += 1
                return
            for d in digits:
                self._digit(d)
        elif pkt.payload_type == remote.payload_type:
            self.jitter.push(pkt.timestamp, self.codec.decode(pkt.payload))
        else:
            self.dropped += 1  # comfort noise and unnegotiated types are not played

    def receive_rtcp(self, data: bytes, addr: Addr, now: float, wall: float) -> None:
        if not self.latch.rtcp_allowed(addr, self.rtcp_source):
            self.dropped += 1  # a stranger's reports: not read, and never our RTCP target
            return
        try:
            if self.srtp is not None:
                data = self.srtp.unprotect_rtcp(data)
            packets = rtcp.parse_rtcp(data)
        except (rtcp.RtcpError, SrtpError, IndexError, ValueError) as exc:
            log.debug("dropping RTCP from %s: %s", addr, exc)
            self.dropped += 1
            return
        self.rtcp_source = addr
        for p in packets:
            if isinstance(p, rtcp.RtcpReport):
                if p.sender is not None:
                    self._last_sr = (rtcp.ntp_middle(p.sender.ntp_timestamp), now)
                for b in p.blocks:
                    if b.ssrc == self.ssrc:
                        self._remote_block = b
                        rtt = rtcp.rtt_seconds(b, wall)
                        if rtt is not None:
                            self.rtt = rtt

    def _digit(self, d: DtmfDigit) -> None:
        """Deliver once: drop a digit the other detection path already reported."""
        end = d.started + d.duration_ms / 1000
        for r in self._recent:
            if r.digit == d.digit and r.source is not d.source:
                r_end = r.started + r.duration_ms / 1000
                if d.started <= r_end + self.dedup_window and r.started <= end + self.dedup_window:
                    return
        self._recent.append(d)
        self._events.append(DigitReceived(d))
        if self._source is not None and self._source.interruptible:
            self._source = None
            self._events.append(PlaybackFinished(interrupted=True))
        if self.recorder is not None and self.recorder.on_digit(d.digit):
            self._events.append(RecordingFinished(self.recorder))

    # --- the 20 ms tick -------------------------------------------------------------------
    def tick(self, now: float) -> list[bytes]:
        """Consume one frame of received audio and produce what to send to ``target``."""
        self._consume(now)
        if self.remote is None:
            return []
        out = self._produce()
        if self.srtp is not None:
            out = [self.srtp.protect(p) for p in out]
        return out

    @property
    def target(self) -> Addr | None:
        return self.latch.target

    def _consume(self, now: float) -> None:
        late = self._dtmf_in.check_timeout(now)
        if late is not None:
            self._digit(late)
        if self.rx.ssrc is None and self.recorder is None:
            return  # nothing ever received: skip the DSP (music-on-hold listeners)
        frame = self.jitter.pop()
        if self.sink is not None:
            self.sink(frame.pcm if frame.kind is FrameKind.AUDIO else None)
        remote = self.remote
        if frame.kind is FrameKind.AUDIO and remote is not None and remote.inband_dtmf:
            for d in self._inband.feed(frame.pcm, now):
                self._digit(d)
        if self.recorder is not None and self.recorder.feed(
                frame.pcm, received=frame.kind is FrameKind.AUDIO):
            self._events.append(RecordingFinished(self.recorder))
        if self.recorder is not None and self.recorder.reason is not None:
            self.recorder = None
        if self._echo:
            self._echo_frame = frame.pcm if frame.kind is not FrameKind.SILENCE else None

    def _produce(self) -> list[bytes]:
        remote = self.remote
        if remote is None:
            return []
        ts = self._ts
        self._ts = (ts + 160) & 0xFFFFFFFF
        if self._dtmf_out.busy and remote.dtmf_payload_type is not None:
            ev = self._dtmf_out.tick(ts)
            if ev is not None:
                self._pending.clear()
                return [self._packet(remote.dtmf_payload_type, ev.timestamp, ev.payload, ev.marker)]
        payload = self._next_payload()
        if self._frames_per_packet == 1:
            return [self._packet(remote.payload_type, ts, payload, False)]
        self._pending.append(self.codec.decode(payload))  # ptime > 20 ms: gather frames
        if len(self._pending) < self._frames_per_packet:
            return []
        pcm = np.concatenate(self._pending)
        self._pending.clear()
        first_ts = (ts - 160 * (self._frames_per_packet - 1)) & 0xFFFFFFFF
        return [self._packet(remote.payload_type, first_ts, self.codec.encode(pcm), False)]

    def _next_payload(self) -> bytes:
        if self._echo:
            frame, self._echo_frame = self._echo_frame, None
            return self.codec.encode(frame) if frame is not None else self._silence
        src = self._source
        if src is None:
            return self._silence
        if isinstance(src, MohListener) and isinstance(self.codec, G711):
            return src.next_payload(self.codec.name)
        payload = self.codec.encode(src.read(160))
        if src.finished:
            self._source = None
            self._events.append(PlaybackFinished(interrupted=False))
        return payload

    def _packet(self, pt: int, ts: int, payload: bytes, marker: bool) -> bytes:
        seq = self._seq
        self._seq = (seq + 1) & 0xFFFF
        self.sent_packets += 1
        self.sent_octets += len(payload)
        return build_header(pt, seq, ts, self.ssrc, marker) + payload

    # --- RTCP -----------------------------------------------------------------------------
    def rtcp_target(self) -> Addr | None:
        if self.rtcp_source is not None:
            return self.rtcp_source
        t = self.latch.target
        return (t[0], t[1] + 1) if t is not None else None

    def rtcp_due(self, now: float) -> bool:
        """True when the (randomised, section 6.3.1) report interval is over: build one."""
        if self.remote is None:
            return False
        if self._next_rtcp is None:
            self._next_rtcp = now + self.rtcp_interval * self._rng.uniform(0.5, 1.5)
            return False
        if now < self._next_rtcp:
            return False
        self._next_rtcp = now + self.rtcp_interval * self._rng.uniform(0.5, 1.5)
        return True

    def build_rtcp(self, now: float, wall: float, bye: bool = False) -> bytes:
        blocks: tuple[rtcp.ReportBlock, ...] = ()
        if self.rx.ssrc is not None:
            fixed, _ = self.rx.interval_fraction()
            lsr, dlsr = 0, 0
            if self._last_sr is not None:
                lsr = self._last_sr[0]
                dlsr = int((now - self._last_sr[1]) * 65536)
            blocks = (
                rtcp.ReportBlock(
                    self.rx.ssrc,
                    fixed,
                    self.rx.lost,
                    self.rx.extended_max,
                    int(self.rx.jitter),
                    lsr,
                    dlsr,
                ),
            )
        sender = None
        if self.sent_packets:
            sender = rtcp.SenderInfo(
                rtcp.ntp_time(wall), self._ts, self.sent_packets, self.sent_octets
            )
        data = rtcp.build_report(rtcp.RtcpReport(self.ssrc, sender, blocks))
        data += rtcp.build_sdes(self.ssrc, self.cname)
        if bye:
            data += rtcp.build_bye((self.ssrc,))
        return self.srtp.protect_rtcp(data) if self.srtp is not None else data

    def stats(self) -> RtpStats:
        b = self._remote_block
        return RtpStats(
            packets_sent=self.sent_packets,
            bytes_sent=self.sent_octets,
            packets_received=self.rx.received,
            bytes_received=self.rx.octets,
            packets_lost=self.rx.lost,
            fraction_lost=(self.rx.lost / self.rx.expected) if self.rx.expected > 0 else 0.0,
            jitter_ms=self.rx.jitter_ms,
            remote_packets_lost=b.cumulative_lost if b else None,
            remote_fraction_lost=b.fraction_lost / 256 if b else None,
            remote_jitter_ms=b.jitter / 8.0 if b else None,
            rtt_ms=self.rtt * 1000 if self.rtt is not None else None,
            ssrc_changes=self.rx.ssrc_changes,
            dropped=self.dropped + self.jitter.late,
        )
