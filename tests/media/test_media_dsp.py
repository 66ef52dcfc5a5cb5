"""In-band DTMF (Goertzel) and the conference mixer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.codecs import get_codec
from media.inband import BLOCK, COLS, ROWS, InbandDetector, dtmf_tone, goertzel_power
from media.mixer import mix, mix_minus

RNG = np.random.default_rng(4733)


def detect(signal: np.ndarray) -> list[tuple[str, int]]:
    det = InbandDetector()
    pcm = np.clip(np.round(signal), -32768, 32767).astype(np.int16)
    pcm = get_codec("PCMU").decode(get_codec("PCMU").encode(pcm))  # through the codec
    out = []
    for i in range(0, len(pcm), 160):
        out += det.feed(pcm[i : i + 160], i / 8000)
    out += det.flush(len(pcm) / 8000)
    return [(d.digit, d.duration_ms) for d in out]


def test_goertzel_recursion_equals_single_bin_dft() -> None:
    x = RNG.normal(size=BLOCK)
    n = np.arange(BLOCK)
    for f in ROWS + COLS:
        dft = abs(np.sum(x * np.exp(-2j * np.pi * f * n / 8000))) ** 2
        assert goertzel_power(x, f) == pytest.approx(dft, rel=1e-9)


@pytest.mark.parametrize("snr_db", [30, 15])
def test_every_digit_detected_once_in_noise(snr_db: int) -> None:
    keys = "0123456789*#ABCD"
    parts = []
    for k in keys:
        tone = dtmf_tone(k, 80, amplitude=5000.0, phase=RNG.uniform(0, 6))
        parts += [tone, np.zeros(int(8000 * RNG.uniform(0.06, 0.12)))]
    sig = np.concatenate([np.zeros(400), *parts])
    noise_rms = 5000.0 / 10 ** (snr_db / 20)  # the two tones together have an RMS of 5000
    got = detect(sig + RNG.normal(scale=noise_rms, size=len(sig)))
    assert "".join(d for d, _ in got) == keys
    assert all(50 <= ms <= 110 for _, ms in got)


def test_twist_and_level() -> None:
    t = np.arange(800) / 8000
    weak_low = 1000 * np.sin(2 * np.pi * 697 * t) + 5000 * np.sin(2 * np.pi * 1209 * t)
    assert detect(weak_low) == []  # 14 dB twist
    assert detect(dtmf_tone("5", 100, amplitude=60.0)) == []  # too quiet
    assert [d for d, _ in detect(dtmf_tone("5", 100, amplitude=600.0))] == ["5"]
    assert detect(dtmf_tone("5", 25, amplitude=5000.0)) == []  # shorter than 40 ms


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Voiced speech caricature: a gliding pitch with harmonics shaped by moving formants."""
    rng = np.random.default_rng(seed)
    n = int(8000 * seconds)
    t = np.arange(n) / 8000
    f0 = 120 + 60 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) + 20 * rng.normal()
    phase = 2 * np.pi * np.cumsum(f0) / 8000
    f1 = 500 + 300 * np.sin(2 * np.pi * 2.1 * t)
    f2 = 1500 + 600 * np.sin(2 * np.pi * 1.3 * t + 1)
    out = np.zeros(n)
    for h in range(1, 30):
        fh = h * f0
        gain = np.exp(-(((fh - f1) / 150) ** 2)) + 0.7 * np.exp(-(((fh - f2) / 200) ** 2))
        out += gain * np.sin(h * phase) * (fh < 3800)
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2  # syllables
    out = out * env
    out += 0.02 * rng.normal(size=n)  # breath noise
    return 12000 * out / np.max(np.abs(out))


@pytest.mark.parametrize("seed", range(6))
def test_no_false_digits_in_speech_like_signals(seed: int) -> None:
    assert detect(speech_like(4.0, seed)) == []


def test_no_false_digits_in_noise_music_and_two_tone_chords() -> None:
    assert detect(RNG.normal(scale=6000, size=32000)) == []
    t = np.arange(32000) / 8000
    chord = sum(np.sin(2 * np.pi * f * t) for f in (440, 554.37, 659.25, 880, 1318.5))
    assert detect(3000 * chord) == []
    # two DTMF frequencies plus a third strong tone: not a clean DTMF pair
    tri = 4000 * (
        np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t) + np.sin(2 * np.pi * 1000 * t)
    )
    assert detect(tri) == []


def test_mixer_each_hears_the_others_not_itself() -> None:
    a, b, c = (np.full(160, v, np.int16) for v in (100, 20, -3))
    out = mix_minus({"a": a, "b": b, "c": c})
    assert (out["a"] == 17).all() and (out["b"] == 97).all() and (out["c"] == 120).all()
    two = mix_minus({1: a, 2: b})
    assert (two[1] == b).all() and (two[2] == a).all()
    assert mix_minus({}) == {}


def test_mixer_clips_instead_of_wrapping() -> None:
    loud = np.full(160, 30000, np.int16)
    out = mix_minus({"x": loud, "y": loud, "z": loud})
    assert (out["x"] == 32767).all()
    assert (mix([-loud, -loud]) == -32768).all()


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.lists(st.integers(-32768, 32767), min_size=8, max_size=8), min_size=1, max_size=8)
)
def test_mixer_properties(frames: list[list[int]]) -> None:
    arr = {i: np.array(f, np.int16) for i, f in enumerate(frames)}
    out = mix_minus(arr)
    total = np.sum([np.array(f, np.int64) for f in frames], axis=0)
    for i, f in enumerate(frames):
        want = np.clip(total - np.array(f, np.int64), -32768, 32767)
        assert out[i].dtype == np.int16 and (out[i] == want).all()
