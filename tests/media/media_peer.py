"""A test-side phone: one UDP socket that sends and receives G.711 RTP (and RFC 4733)."""

from __future__ import annotations

import asyncio
import random
import struct
import time

import numpy as np

from media.codecs import get_codec
from media.dtmf import DtmfSender
from media.inband import dtmf_tone


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, peer: RtpPeer) -> None:
        self.peer = peer

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.peer.received.append((data, addr, time.monotonic()))


class RtpPeer:
    def __init__(self, codec: str = "PCMU", pt: int = 0, dtmf_pt: int = 101) -> None:
        self.codec = get_codec(codec)
        self.pt = pt
        self.dtmf_pt = dtmf_pt
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        self.received: list[tuple[bytes, tuple[str, int], float]] = []
        self.remote: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def create(cls, codec: str = "PCMU", pt: int = 0, dtmf_pt: int = 101) -> RtpPeer:
        peer = cls(codec, pt, dtmf_pt)
        loop = asyncio.get_running_loop()
        peer.transport, _ = await loop.create_datagram_endpoint(
            lambda: _Proto(peer), local_addr=("127.0.0.1", 0)
        )
        return peer

    @property
    def addr(self) -> tuple[str, int]:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[:2]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _send(self, pt: int, ts: int, payload: bytes, marker: bool = False) -> None:
        assert self.transport is not None and self.remote is not None
        hdr = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq, ts, self.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        self.transport.sendto(hdr + payload, self.remote)

    async def send_pcm(self, pcm: np.ndarray) -> None:
        """Packetise into 20 ms G.711 frames, paced on absolute deadlines."""
        pcm = np.asarray(pcm, dtype=np.int16)
        pcm = np.concatenate([pcm, np.zeros(-len(pcm) % 160, np.int16)])
        start = time.monotonic()
        for i in range(len(pcm) // 160):
            self._send(self.pt, self.ts, self.codec.encode(pcm[i * 160 : (i + 1) * 160]))
            self.ts = (self.ts + 160) & 0xFFFFFFFF
            delay = start + (i + 1) * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def send_tone(self, freq: float, seconds: float, amplitude: float = 8000.0) -> None:
        t = np.arange(int(8000 * seconds)) / 8000
        await self.send_pcm(np.round(amplitude * np.sin(2 * np.pi * freq * t)))

    async def send_rfc4733(self, digits: str, duration_ms: int = 100) -> None:
        sender = DtmfSender()
        sender.queue(digits, duration_ms, gap_ms=100)
        start = time.monotonic()
        i = 0
        while sender.busy:
            ev = sender.tick(self.ts)
            if ev is not None:
                self._send(self.dtmf_pt, ev.timestamp, ev.payload, ev.marker)
            else:
                self._send(self.pt, self.ts, self.codec.encode(np.zeros(160, np.int16)))
            self.ts = (self.ts + 160) & 0xFFFFFFFF
            i += 1
            delay = start + i * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def send_inband(self, digits: str, on_ms: int = 100, off_ms: int = 100) -> None:
        parts = []
        for d in digits:
            parts.append(dtmf_tone(d, on_ms, amplitude=6000.0))
            parts.append(np.zeros(8 * off_ms))
        parts.append(np.zeros(8 * 200))
        await self.send_pcm(np.round(np.concatenate(parts)))

    def audio(self, pt: int | None = None) -> np.ndarray:
        """Decoded audio of received packets of our codec's payload type, in arrival order."""
        pt = self.pt if pt is None else pt
        frames = []
        for data, _addr, _t in self.received:
            if len(data) > 12 and data[1] & 0x7F == pt:
                frames.append(self.codec.decode(data[12:]))
        return np.concatenate(frames) if frames else np.zeros(0, np.int16)


def dominant_frequency(pcm: np.ndarray, rate: int = 8000) -> float:
    x = np.asarray(pcm, dtype=np.float64)
    x = x - x.mean()
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(np.argmax(spec))
    if 0 < k < len(spec) - 1:  # parabolic interpolation of the peak
        a, b, c = np.log(spec[k - 1 : k + 2] + 1e-12)
        k = k + 0.5 * (a - c) / (a - 2 * b + c)
    return float(k * rate / len(x))


def voiced(pcm: np.ndarray, level: float = 500.0) -> np.ndarray:
    """The part of a signal between its first and last loud sample."""
    idx = np.nonzero(np.abs(pcm.astype(np.int32)) > level)[0]
    return pcm[idx[0] : idx[-1] + 1] if len(idx) else pcm[:0]
