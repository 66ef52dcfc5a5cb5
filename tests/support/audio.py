"""What a phone heard: the dominant frequency of a recorded WAV."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        frames = w.readframes(w.getnframes())
        width = w.getsampwidth()
        channels = w.getnchannels()
    data = np.frombuffer(frames, dtype=np.int16 if width == 2 else np.uint8).astype(np.float64)
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    return data, rate


def dominant_frequency(path: Path, *, skip_seconds: float = 0.3,
                       max_seconds: float | None = None) -> tuple[float, float]:
    """(frequency in Hz, RMS level) of the loudest tone between `skip_seconds` and
    `max_seconds` (the end when None)."""
    data, rate = read_wav(path)
    end = None if max_seconds is None else int(max_seconds * rate)
    data = data[int(skip_seconds * rate):end]
    if len(data) < rate // 10:
        return 0.0, 0.0
    rms = float(np.sqrt(np.mean(data**2)))
    window = np.hanning(len(data))
    spectrum = np.abs(np.fft.rfft(data * window))
    spectrum[0] = 0
    freqs = np.fft.rfftfreq(len(data), 1.0 / rate)
    return float(freqs[int(np.argmax(spectrum))]), rms


def band_level(data: np.ndarray, rate: int, freq: float) -> float:
    """The spectrum's magnitude around `freq` (+-15 Hz), per sample: how loud one tone is in
    a recording that mixes several."""
    window = np.hanning(len(data))
    spectrum = np.abs(np.fft.rfft(data * window)) / len(data)
    freqs = np.fft.rfftfreq(len(data), 1.0 / rate)
    band = (freqs > freq - 15) & (freqs < freq + 15)
    return float(spectrum[band].max())
