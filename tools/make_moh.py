"""Generate the music on hold shipped with the switch: `prompts/moh/default.wav`.

A calm 20 s loop written for this project (royalty-free: it is generated here, from nothing
but the note table below): the chord progression C - G - Am - F twice, each chord a soft pad
of three sine notes under a plucked sine melody, 8 kHz mono 16-bit PCM (the media engine's
format). Every sound in it is a pure sine at one of the equal-tempered pitches of
:data:`NOTE_HZ`, all below 1 kHz, so a test can tell it from a phone's test tone by the
frequencies a listener hears. The WAV is committed; run this only to change the music:

    .venv/bin/python tools/make_moh.py [--out prompts/moh/default.wav]
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import wave
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger("make_moh")
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "prompts" / "moh" / "default.wav"
RATE = 8000
CHORD_SECONDS = 2.5
BEAT = CHORD_SECONDS / 4


def pitch(name: str) -> float:
    """Equal temperament, A4 = 440 Hz: "C4" -> 261.63."""
    steps = {"C": -9, "D": -7, "E": -5, "F": -4, "G": -2, "A": 0, "B": 2}[name[0]]
    octave = int(name[1:])
    return float(440.0 * 2.0 ** ((steps + 12 * (octave - 4)) / 12))


# (chord notes, melody notes with their length in beats), one bar of 4 beats per chord
BARS: tuple[tuple[tuple[str, ...], tuple[tuple[str, float], ...]], ...] = (
    (("C4", "E4", "G4"), (("E5", 1), ("G5", 1), ("A5", 1), ("G5", 1))),
    (("G3", "B3", "D4"), (("D5", 1), ("B4", 1), ("D5", 1), ("G5", 1))),
    (("A3", "C4", "E4"), (("C5", 1), ("E5", 1), ("A5", 1), ("E5", 1))),
    (("F3", "A3", "C4"), (("A5", 1), ("G5", 1), ("F5", 1), ("C5", 1))),
    (("C4", "E4", "G4"), (("G5", 1), ("E5", 1), ("C5", 1), ("E5", 1))),
    (("G3", "B3", "D4"), (("D5", 1), ("G5", 1), ("D5", 1), ("B4", 1))),
    (("A3", "C4", "E4"), (("E5", 1), ("C5", 1), ("A4", 1), ("C5", 1))),
    (("F3", "A3", "C4"), (("F5", 1), ("A5", 1), ("G5", 2))),
)

#: every pitch the track contains, in Hz (what a listener's spectrum shows)
NOTE_HZ: tuple[float, ...] = tuple(sorted({
    pitch(n) for chord, melody in BARS for n in (*chord, *(m for m, _ in melody))
}))


def _note(freq: float, seconds: float, amplitude: float, attack: float, decay: float
          ) -> NDArray[np.float64]:
    """A sine with a raised-cosine attack, an exponential decay and a short release."""
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    env = np.exp(-t / decay)
    a = min(n, int(attack * RATE))
    env[:a] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / max(a, 1))
    r = min(n, int(0.06 * RATE))
    env[n - r:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(r) / max(r, 1))
    out: NDArray[np.float64] = amplitude * env * np.sin(2 * np.pi * freq * t)
    return out


def render() -> NDArray[np.int16]:
    bar_len = round(CHORD_SECONDS * RATE)
    track = np.zeros(bar_len * len(BARS))
    for i, (chord, melody) in enumerate(BARS):
        start = i * bar_len
        for name in chord:  # the pad: slow attack, long decay
            pad = _note(pitch(name), CHORD_SECONDS, 0.11, 0.25, 3.0)
            track[start:start + len(pad)] += pad
        pos = start
        for name, beats in melody:  # the melody: plucked
            note = _note(pitch(name), beats * BEAT, 0.16, 0.02, 0.45 * beats)
            track[pos:pos + len(note)] += note
            pos += len(note)
    peak = float(np.max(np.abs(track))) or 1.0
    track *= 0.5 / peak  # -6 dBFS peak: room for G.711, not tiring on a handset
    return np.round(track * 32767).astype(np.int16)


def wav_bytes(pcm: NDArray[np.int16]) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pcm = render()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(wav_bytes(pcm))
    log.info("%s: %.1f s, notes %s Hz", args.out, len(pcm) / RATE,
             ", ".join(f"{f:.1f}" for f in NOTE_HZ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
