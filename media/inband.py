"""In-band DTMF detection (ITU-T Q.23 frequencies, Q.24-style acceptance) with Goertzel filters.

Pure.  Audio is cut into blocks of 205 samples at 8 kHz (25.6 ms, the classic Goertzel size:
bins land close to the eight DTMF frequencies).  For each block the detector measures the
power at the eight frequencies exactly -- the value a Goertzel filter computes
(:func:`goertzel_power`), vectorised here as one complex dot product per frequency -- and
accepts a digit only if

- one row and one column tone each stand 6 dB above the other tones of their group,
- both are loud enough and their twist (level difference) is under 8 dB,
- together they carry most (70 %) of the block's energy: speech, music and noise spread
  their energy and are rejected here,
- the second harmonics of both tones are 9 dB down (speech is harmonic; DTMF is not).

A digit starts after two consecutive agreeing blocks (>= 40 ms, Q.24) and ends after two
blocks without it; it is delivered once, at its end, with its duration.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from media.codecs import Pcm
from media.dtmf import DtmfDigit, DtmfSource

ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
BLOCK = 205


def goertzel_power(x: NDArray[np.float64], freq: float, rate: int = 8000) -> float:
    """Squared magnitude at ``freq`` by the Goertzel recursion (reference for the tests)."""
    w = 2.0 * math.pi * freq / rate
    coeff = 2.0 * math.cos(w)
    s1 = s2 = 0.0
    for v in x:
        s1, s2 = float(v) + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def dtmf_tone(
    digit: str, ms: int, rate: int = 8000, amplitude: float = 8000.0, phase: float = 0.0
) -> NDArray[np.float64]:
    """Synthesise a DTMF digit (both tones at ``amplitude``), for players and tests."""
    for r, line in enumerate(KEYPAD):
        c = line.find(digit.upper())
        if c >= 0:
            t = np.arange(int(rate * ms / 1000)) / rate
            return amplitude * (
                np.sin(2 * np.pi * ROWS[r] * t + phase) + np.sin(2 * np.pi * COLS[c] * t + phase)
            )
    raise ValueError(f"not a DTMF digit: {digit!r}")


class InbandDetector:
    def __init__(
        self,
        rate: int = 8000,
        min_amplitude: float = 200.0,
        energy_fraction: float = 0.7,
        max_twist_db: float = 8.0,
    ) -> None:
        self.rate = rate
        freqs = np.array(ROWS + COLS + tuple(2 * f for f in ROWS + COLS))
        n = np.arange(BLOCK)
        self._basis = np.exp(-2j * np.pi * np.outer(freqs, n) / rate)
        self.min_power = (min_amplitude * BLOCK / 2) ** 2
        self.energy_fraction = energy_fraction
        self.max_twist = 10 ** (max_twist_db / 10)
        self._pending = np.zeros(0, np.float64)
        self._current: str | None = None  # digit being held
        self._candidate: str | None = None
        self._agree = 0
        self._miss = 0
        self._blocks_on = 0
        self._started = 0.0
        self._block_s = BLOCK / rate

    def classify(self, block: NDArray[np.float64]) -> str | None:
        """The digit present in one 205-sample block, or None."""
        energy = float(np.dot(block, block))
        if energy <= 0.0:
            return None
        p = np.abs(self._basis @ block) ** 2
        rows, cols, harm = p[:4], p[4:8], p[8:]
        r = int(np.argmax(rows))
        c = int(np.argmax(cols))
        pr, pc = float(rows[r]), float(cols[c])
        if pr < self.min_power or pc < self.min_power:
            return None
        if pr > self.max_twist * pc or pc > self.max_twist * pr:
            return None
        if np.sum(rows > pr / 4) > 1 or np.sum(cols > pc / 4) > 1:
            return None
        if 2.0 * (pr + pc) / BLOCK < self.energy_fraction * energy:
            return None
        if harm[r] > pr / 8 or harm[4 + c] > pc / 8:  # 1394 Hz catches 1336 Hz leakage
            return None
        return KEYPAD[r][c]

    def feed(self, pcm: Pcm, now: float) -> list[DtmfDigit]:
        """Feed audio (any length); digits whose end was seen come out."""
        out: list[DtmfDigit] = []
        buf = np.concatenate([self._pending, pcm.astype(np.float64)])
        nblocks = len(buf) // BLOCK
        for i in range(nblocks):
            d = self.classify(buf[i * BLOCK : (i + 1) * BLOCK])
            t = now - (len(buf) - (i + 1) * BLOCK) / self.rate  # end time of this block
            self._step(d, t, out)
        self._pending = buf[nblocks * BLOCK :]
        return out

    def _step(self, d: str | None, t: float, out: list[DtmfDigit]) -> None:
        if self._current is not None:
            if d == self._current:
                self._miss = 0
                self._blocks_on += 1
                return
            self._miss += 1
            if self._miss < 2 and d is None:
                return
            ms = round(self._blocks_on * self._block_s * 1000)
            out.append(DtmfDigit(self._current, ms, DtmfSource.INBAND, self._started))
            self._current = None
            self._candidate, self._agree = None, 0
        if d is None:
            self._candidate, self._agree = None, 0
            return
        if d == self._candidate:
            self._agree += 1
        else:
            self._candidate, self._agree = d, 1
        if self._agree >= 2:
            self._current, self._miss, self._blocks_on = d, 0, 2
            self._started = t - 2 * self._block_s

    def flush(self, now: float) -> list[DtmfDigit]:
        """End a digit still held (end of call)."""
        out: list[DtmfDigit] = []
        if self._current is not None:
            self._miss = 1
            self._step(None, now, out)
        return out
