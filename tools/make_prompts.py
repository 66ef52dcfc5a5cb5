"""Generate the French prompts the switch ships, from the texts beside them.

Every `prompts/fr/*.txt` holds lines `name|text` (blank lines and `#` comments ignored);
each becomes `prompts/fr/<name>.wav`, 8 kHz mono 16-bit PCM (the media engine's format),
spoken by espeak-ng's French voice. The WAV files are committed, so the switch speaks
without any download or TTS engine; run this only to change or add a prompt:

    apt-get install espeak-ng          # once, on the machine that regenerates
    .venv/bin/python tools/make_prompts.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import io
import logging
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

log = logging.getLogger("make_prompts")
ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "prompts" / "fr"
RATE = 8000


def texts(directory: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for source in sorted(directory.glob("*.txt")):
        for lineno, raw in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, text = line.partition("|")
            if not sep or not name.strip() or not text.strip():
                raise SystemExit(f"{source}:{lineno}: expected 'name|text'")
            if name.strip() in found:
                raise SystemExit(f"{source}:{lineno}: prompt {name.strip()!r} defined twice")
            found[name.strip()] = text.strip()
    return found


def speak(text: str) -> np.ndarray:
    """espeak-ng's WAV (22050 Hz) resampled to 8 kHz by linear interpolation after a
    moving-average low-pass (speech prompts need nothing finer)."""
    wav = subprocess.run(["espeak-ng", "-v", "fr-fr", "-s", "150", "--stdout", text],
                         check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    kernel = np.ones(3) / 3
    smooth = np.convolve(pcm, kernel, mode="same")
    n = int(len(smooth) * RATE / rate)
    out = np.interp(np.arange(n) * rate / RATE, np.arange(len(smooth)), smooth)
    peak = float(np.max(np.abs(out))) or 1.0
    out = out * (0.6 * 32767 / peak)  # same level for every prompt
    return out.astype("<i2")


def write_wav(path: Path, pcm: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="regenerate these prompts only")
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        log.error("espeak-ng is not installed (apt-get install espeak-ng)")
        return 1
    wanted = texts(PROMPTS)
    names = args.only or sorted(wanted)
    for i, name in enumerate(names, 1):
        if name not in wanted:
            log.error("no text for prompt %s", name)
            return 1
        write_wav(PROMPTS / f"{name}.wav", speak(wanted[name]))
        log.info("[%d/%d] %s", i, len(names), name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
