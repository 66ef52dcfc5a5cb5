"""Audio sources for an endpoint: prompt sequences, steady tones, shared music on hold.

Pure.  A source yields one frame (``read(n)``) per tick and says when it is finished.
Music on hold is decoded once and its G.711 frames encoded once per codec; every listener
keeps only a frame index into those shared bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from media.codecs import Pcm, get_codec


class Source(Protocol):
    interruptible: bool

    @property
    def finished(self) -> bool: ...

    def read(self, n: int) -> Pcm:
        """The next ``n`` samples (zero-padded at the end)."""
        ...


class PromptPlayer:
    """Prompts played back to back, optionally looped."""

    def __init__(self, prompts: Sequence[Pcm], *, loop: bool = False, interruptible: bool = True):
        self._prompts = [np.asarray(p, dtype=np.int16) for p in prompts if len(p)]
        self.loop = loop
        self.interruptible = interruptible
        self._i = 0
        self._pos = 0

    @property
    def finished(self) -> bool:
        return self._i >= len(self._prompts)

    def read(self, n: int) -> Pcm:
        out = np.zeros(n, np.int16)
        filled = 0
        while filled < n and not self.finished:
            cur = self._prompts[self._i]
            take = min(n - filled, len(cur) - self._pos)
            out[filled : filled + take] = cur[self._pos : self._pos + take]
            filled += take
            self._pos += take
            if self._pos >= len(cur):
                self._i, self._pos = self._i + 1, 0
                if self.finished and self.loop:
                    self._i = 0
        return out


class ToneSource:
    """A steady sine (dial tone, ringback...) until stopped; phase-continuous across frames."""

    interruptible = True
    finished = False

    def __init__(self, freq_hz: float, amplitude: float = 0.3, rate: int = 8000) -> None:
        if not 0.0 <= amplitude <= 1.0:
            raise ValueError("amplitude is a fraction of full scale, 0..1")
        self._step = 2.0 * math.pi * freq_hz / rate
        self._amp = amplitude * 32767.0
        self._n = 0

    def read(self, n: int) -> Pcm:
        k = np.arange(self._n, self._n + n)
        self._n += n
        out: Pcm = np.round(self._amp * np.sin(self._step * k)).astype(np.int16)
        return out


class MusicOnHold:
    """One music source shared by every listener: decoded once, encoded once per codec."""

    def __init__(self, pcm: Pcm, frame_samples: int = 160) -> None:
        pcm = np.asarray(pcm, dtype=np.int16)
        if len(pcm) == 0:
            raise ValueError("empty music on hold source")
        pad = -len(pcm) % frame_samples
        self.pcm = np.concatenate([pcm, np.zeros(pad, np.int16)])
        self.frame_samples = frame_samples
        self.frames = len(self.pcm) // frame_samples
        self._encoded: dict[str, bytes] = {}

    def encoded(self, codec: str) -> bytes:
        """The whole track encoded with ``codec`` (cached: computed once per process)."""
        data = self._encoded.get(codec)
        if data is None:
            data = self._encoded[codec] = get_codec(codec).encode(self.pcm)
        return data

    def listener(self) -> MohListener:
        return MohListener(self)


class MohListener:
    """One caller on hold: an index into the shared track."""

    interruptible = False
    finished = False

    def __init__(self, moh: MusicOnHold) -> None:
        self.moh = moh
        self.index = 0

    def read(self, n: int) -> Pcm:
        m = self.moh
        start = self.index * m.frame_samples
        out: Pcm = np.take(m.pcm, np.arange(start, start + n), mode="wrap")
        self.index = (self.index + max(1, n // m.frame_samples)) % m.frames
        return out

    def next_payload(self, codec: str) -> bytes:
        """Hot path: the next pre-encoded frame (one bytes slice, no DSP)."""
        m = self.moh
        data = m.encoded(codec)
        bpf = len(data) // m.frames
        i = self.index
        self.index = i + 1 if i + 1 < m.frames else 0
        return data[i * bpf : (i + 1) * bpf]
