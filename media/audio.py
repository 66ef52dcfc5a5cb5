"""Prompt conversion (once, at upload or build time) and safe WAV writing.

Prompts are stored as raw 8 kHz, 16-bit little-endian, mono PCM (``.pcm``).  WAV files are
read with the standard ``wave`` module; other formats (MP3, OGG...) are decoded by the ffmpeg
binary shipped by the ``imageio-ffmpeg`` wheel, through pydub when ``ffprobe`` is available
(see :func:`decode_any`).  Both are imported lazily, so WAV works without them.  Resampling is done in the frequency domain (band-limited, no aliasing).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from media.codecs import Pcm

log = logging.getLogger(__name__)
RATE = 8000


class AudioError(ValueError):
    """An upload we cannot turn into a prompt (bad format, missing decoder)."""


def resample(x: NDArray[np.float64], src_rate: int, dst_rate: int = RATE) -> NDArray[np.float64]:
    """Band-limited resampling by FFT truncation/zero-padding."""
    if src_rate == dst_rate or len(x) == 0:
        return x
    n_out = max(1, round(len(x) * dst_rate / src_rate))
    spec = np.fft.rfft(x)
    keep = n_out // 2 + 1
    if keep <= len(spec):
        spec = spec[:keep]
    else:
        spec = np.concatenate([spec, np.zeros(keep - len(spec), complex)])
    return np.fft.irfft(spec, n_out) * (n_out / len(x))


def _to_int16(x: NDArray[np.float64]) -> Pcm:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _frames_to_float(raw: bytes, width: int, channels: int) -> NDArray[np.float64]:
    if width == 1:
        a = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) * 256.0
    elif width == 2:
        a = np.frombuffer(raw, "<i2").astype(np.float64)
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        a = (np.where(v & 0x800000, v - 0x1000000, v) / 256.0).astype(np.float64)
    elif width == 4:
        a = np.frombuffer(raw, "<i4").astype(np.float64) / 65536.0
    else:
        raise AudioError(f"unsupported sample width {width}")
    if channels > 1:
        a = a.reshape(-1, channels).mean(axis=1)
    return a


def read_wav(path: str | os.PathLike[str]) -> Pcm:
    """Any PCM WAV to 8 kHz mono int16."""
    try:
        with wave.open(str(path), "rb") as w:
            raw = w.readframes(w.getnframes())
            x = _frames_to_float(raw, w.getsampwidth(), w.getnchannels())
            return _to_int16(resample(x, w.getframerate()))
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"{path}: {exc}") from exc


def decode_any(path: str | os.PathLike[str]) -> Pcm:
    """WAV via ``wave``; anything else via pydub + ffmpeg (optional dependencies).

    pydub's ``from_file`` probes the input with ``ffprobe``, which the imageio-ffmpeg wheel
    does not ship; without an ``ffprobe`` on PATH the bundled ffmpeg is run directly (the
    same command pydub would run) to decode to 8 kHz mono s16le.
    """
    p = Path(path)
    if p.suffix.lower() == ".wav":
        try:
            return read_wav(p)
        except AudioError:
            log.info("%s is not plain PCM WAV, trying ffmpeg", p)
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise AudioError(f"{p.suffix} needs imageio-ffmpeg (and pydub) installed") from exc
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    if shutil.which("ffprobe") is not None:
        try:
            from pydub import AudioSegment
        except ImportError:
            pass
        else:
            AudioSegment.converter = ffmpeg
            try:
                seg = AudioSegment.from_file(str(p))
            except Exception as exc:  # CouldntDecodeError, OSError...
                raise AudioError(f"{p}: cannot decode: {exc}") from exc
            seg = seg.set_channels(1).set_sample_width(2)
            x = np.frombuffer(seg.raw_data, "<i2").astype(np.float64)
            return _to_int16(resample(x, seg.frame_rate))
    cmd = [ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(p), "-vn", "-ac", "1"]
    cmd += ["-ar", str(RATE), "-f", "s16le", "-acodec", "pcm_s16le", "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise AudioError(f"{p}: cannot decode: {proc.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(proc.stdout, "<i2").astype(np.int16)


def convert_prompt(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Pcm:
    """Upload/build-time conversion: decode ``src`` once, store raw 8 kHz PCM at ``dst``."""
    pcm = decode_any(src)
    atomic_write(dst, pcm.astype("<i2").tobytes())
    return pcm


def load_pcm(path: str | os.PathLike[str]) -> Pcm:
    """Load a converted prompt (raw 8 kHz s16le mono)."""
    return np.fromfile(str(path), dtype="<i2").astype(np.int16)


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Temporary file in the same directory, fsync, rename, fsync the directory.

    A crash leaves either the previous file or the complete new one, never half a file.
    """
    dst = Path(path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dirfd = os.open(dst.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def wav_bytes(pcm: Pcm, rate: int = RATE) -> bytes:
    """A complete mono 16-bit WAV file image."""
    import io

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()


def write_wav(path: str | os.PathLike[str], pcm: Pcm, rate: int = RATE) -> None:
    atomic_write(path, wav_bytes(pcm, rate))
