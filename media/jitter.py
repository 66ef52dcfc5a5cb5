"""Fixed-delay jitter buffer with packet-loss concealment, for audio the switch consumes.

Pure: ``push`` decoded packets keyed by RTP timestamp, ``pop`` one frame per clock tick.
Works in timestamp space (not packet counts), so a peer's ptime (10, 20, 30, 60 ms) need not
match our 20 ms tick.  Loss concealment repeats the last good audio with a fading gain for up
to 60 ms then plays silence -- a simplification of ITU-T G.711 Appendix I (pitch-period
repetition), good enough for DTMF detection, recording and conferencing.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from enum import Enum

import numpy as np

from media.codecs import Pcm
from media.rtp import ts_diff

log = logging.getLogger(__name__)


class BufferState(Enum):
    FILLING = "filling"  # waiting for ``prefetch`` of audio before playout starts
    PLAYING = "playing"


class FrameKind(Enum):
    AUDIO = "audio"  # real samples (perhaps partly concealed at the edges)
    CONCEALED = "concealed"  # entirely synthesised (loss)
    SILENCE = "silence"  # nothing to play: not started or the source went quiet


@dataclass(frozen=True, slots=True)
class Frame:
    pcm: Pcm
    kind: FrameKind
    timestamp: int | None  # RTP timestamp of the first sample, when playing


class JitterBuffer:
    def __init__(
        self,
        frame_samples: int = 160,
        prefetch_ms: int = 40,
        max_ms: int = 400,
        clock_rate: int = 8000,
        plc_ms: int = 60,
        resync_ms: int = 1000,
    ) -> None:
        self.frame_samples = frame_samples
        self.prefetch = prefetch_ms * clock_rate // 1000
        self.max_span = max_ms * clock_rate // 1000
        self.plc_samples = plc_ms * clock_rate // 1000
        self.resync = resync_ms * clock_rate // 1000
        self.state = BufferState.FILLING
        self._keys: list[int] = []  # extended timestamps, sorted
        self._data: dict[int, Pcm] = {}
        self._ref: int | None = None  # extended timestamp used to unwrap new ones
        self._cursor = 0
        self._last_good = np.zeros(frame_samples, np.int16)
        self._conceal_run = 0
        self._silent_frames = 0
        self.late = 0
        self.duplicates = 0
        self.overflows = 0
        self.concealed_frames = 0
        self.resyncs = 0

    def _unwrap(self, ts: int) -> int:
        if self._ref is None:
            self._ref = ts
            return ts
        ext = self._ref + ts_diff(ts, self._ref & 0xFFFFFFFF)
        self._ref = ext
        return ext

    def reset(self) -> None:
        """Forget everything (SSRC change, new talk spurt far away in time)."""
        self._keys.clear()
        self._data.clear()
        self._ref = None
        self.state = BufferState.FILLING

    def push(self, timestamp: int, pcm: Pcm) -> bool:
        """Insert one decoded packet; False if it was late, duplicate or dropped."""
        ext = self._unwrap(timestamp)
        if self.state is BufferState.PLAYING:
            if ext + len(pcm) <= self._cursor:
                if self._cursor - ext > self.resync:
                    return self._resync(timestamp, pcm)
                self.late += 1
                return False
            if ext - self._cursor > self.resync:
                return self._resync(timestamp, pcm)
        if ext in self._data:
            self.duplicates += 1
            return False
        bisect.insort(self._keys, ext)
        self._data[ext] = pcm
        while self._keys and self._keys[-1] - self._keys[0] > self.max_span:
            old = self._keys.pop(0)  # too much buffered: drop the oldest
            del self._data[old]
            self.overflows += 1
            if self.state is BufferState.PLAYING:
                self._cursor = max(self._cursor, self._keys[0])
        return True

    def _resync(self, timestamp: int, pcm: Pcm) -> bool:
        log.debug("jitter buffer resync at ts=%d", timestamp)
        self.resyncs += 1
        self.reset()
        return self.push(timestamp, pcm)

    def buffered_samples(self) -> int:
        if not self._keys:
            return 0
        last = self._keys[-1]
        return last + len(self._data[last]) - self._keys[0]

    def pop(self) -> Frame:
        """One frame of ``frame_samples``, concealing gaps; call once per clock tick."""
        n = self.frame_samples
        if self.state is BufferState.FILLING:
            if not self._keys or self.buffered_samples() < self.prefetch:
                return Frame(np.zeros(n, np.int16), FrameKind.SILENCE, None)
            self.state = BufferState.PLAYING
            self._cursor = self._keys[0]
        start = self._cursor
        out = np.empty(n, np.int16)
        pos = 0
        real = 0
        while pos < n:
            # drop whatever lies entirely before the cursor
            while self._keys and self._keys[0] + len(self._data[self._keys[0]]) <= self._cursor:
                del self._data[self._keys.pop(0)]
            if self._keys and self._keys[0] <= self._cursor:
                k = self._keys[0]
                chunk = self._data[k]
                off = self._cursor - k
                take = min(n - pos, len(chunk) - off)
                out[pos : pos + take] = chunk[off : off + take]
                real += take
            else:
                gap = (self._keys[0] - self._cursor) if self._keys else n - pos
                take = min(n - pos, gap)
                out[pos : pos + take] = self._conceal(take)
            pos += take
            self._cursor += take
        if real:
            self._last_good = out.copy()
            self._conceal_run = 0
            self._silent_frames = 0
            return Frame(out, FrameKind.AUDIO, start & 0xFFFFFFFF)
        self.concealed_frames += 1
        if not self._keys:
            self._silent_frames += 1
            if self._silent_frames * n > self.plc_samples:
                self.state = BufferState.FILLING  # source went quiet: re-prefetch on return
                self._ref = None
                return Frame(np.zeros(n, np.int16), FrameKind.SILENCE, None)
        return Frame(out, FrameKind.CONCEALED, start & 0xFFFFFFFF)

    def _conceal(self, count: int) -> Pcm:
        run = self._conceal_run
        self._conceal_run += count
        if run >= self.plc_samples:
            return np.zeros(count, np.int16)
        src = np.resize(self._last_good, count)
        gain = np.clip(1.0 - (run + np.arange(count)) / self.plc_samples, 0.0, 1.0)
        return (src * gain).astype(np.int16)
