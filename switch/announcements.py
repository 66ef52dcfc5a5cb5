"""`wte announcements`: operators add a customer's announcements (and music on hold).

    wte announcements add FILE --customer ID --name NAME [--config FILE] [--data-dir DIR]
    wte announcements list [--customer ID] [--data-dir DIR]

An upload (WAV or MP3, any rate and channel count; also FLAC and Ogg) is decoded once, here,
with pydub (the project's choice, /work/shared/DESIGN.md) driving the ffmpeg binary of the
imageio-ffmpeg wheel, mixed down to mono and resampled band-limited to 8 kHz, then stored
atomically as raw s16le at `DATA/announcements/<customer>/<name>.pcm`: the media engine plays
it without decoding anything on a call. `switch.services.applications.PromptLibrary` finds it
by name (`Prompt(name, customer=ID)`); the name `moh` is the customer's music on hold.

What is not audio (a text file, a truncated download) is refused with the reason and exit
status 1, and nothing is stored; so is an unknown customer or a bad name.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from media.audio import atomic_write, resample
from media.codecs import Pcm

log = logging.getLogger("switch.announcements")

RATE = 8000
NAME = re.compile(r"[a-z0-9_-]{1,64}")
CUSTOMER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # a customer id usable as a folder
MAX_SECONDS = 30 * 60  # an announcement, or an hour-long loop of music, is far shorter
_CHUNK_SECONDS = 10.0  # resampled piecewise: memory stays small for long files
_PAD_SECONDS = 0.25  # context on each side of a piece (the FFT's edge effects stay in it)


class AnnouncementError(ValueError):
    """An upload refused: the message says why (shown to the operator as is)."""


@dataclass(frozen=True, slots=True)
class Stored:
    customer: str
    name: str
    path: Path
    seconds: float


def announcements_dir(data_dir: Path) -> Path:
    return data_dir / "announcements"


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise AnnouncementError(f"bad name {name!r}: 1 to 64 of a-z, 0-9, '_' and '-'")
    return name


# --- decoding (pydub) -----------------------------------------------------------------------
def _sniff(head: bytes) -> tuple[str, str | None]:
    """(pydub/ffmpeg format, decoder to force) from the first bytes; AnnouncementError when
    they are no audio container we read. Forcing the decoder spares pydub its ffprobe call
    (the imageio-ffmpeg wheel ships ffmpeg only)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        decoder = _wav_decoder(head)
        if decoder is None:
            raise AnnouncementError("a WAV file without a format we know (fmt chunk)")
        return "wav", decoder
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3", "mp3"
    if head[:4] == b"fLaC":
        return "flac", "flac"
    if head[:4] == b"OggS":
        return "ogg", "opus" if b"OpusHead" in head[:128] else "vorbis"
    raise AnnouncementError("not an audio file (WAV or MP3 expected)")


def _wav_decoder(head: bytes) -> str | None:
    """The ffmpeg decoder of a WAV file's `fmt ` chunk (pydub reads plain PCM itself)."""
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if chunk == b"fmt " and pos + 24 <= len(head):
            tag = int.from_bytes(head[pos + 8:pos + 10], "little")
            bits = int.from_bytes(head[pos + 22:pos + 24], "little")
            if tag == 0xFFFE and pos + 34 <= len(head):  # WAVE_FORMAT_EXTENSIBLE: subformat
                tag = int.from_bytes(head[pos + 32:pos + 34], "little")
            return {1: "pcm_u8" if bits == 8 else f"pcm_s{bits}le", 3: f"pcm_f{bits}le",
                    6: "pcm_alaw", 7: "pcm_mulaw", 2: "adpcm_ms", 0x11: "adpcm_ima_wav"
                    }.get(tag)
        pos += 8 + size + (size & 1)
    return None


def _pydub() -> Any:
    """pydub's AudioSegment, pointed at the bundled ffmpeg (no system package needed)."""
    with warnings.catch_warnings():  # "couldn't find ffmpeg" (set below), audioop deprecation
        warnings.simplefilter("ignore")
        import imageio_ffmpeg
        from pydub import AudioSegment
    AudioSegment.converter = imageio_ffmpeg.get_ffmpeg_exe()
    return AudioSegment


def _to_8k(x: NDArray[np.float64], rate: int) -> Pcm:
    """Band-limited resampling (media.audio.resample) piece by piece, each piece with some
    context on both sides that is cut off again."""
    if rate == RATE:
        out = x
    else:
        step, pad = int(_CHUNK_SECONDS * rate), int(_PAD_SECONDS * rate)
        parts = []
        for start in range(0, len(x), step):
            lo, hi = max(0, start - pad), min(len(x), start + step + pad)
            y = resample(x[lo:hi], rate, RATE)
            head = round((start - lo) * RATE / rate)
            n = round(min(step, len(x) - start) * RATE / rate)
            parts.append(y[head:head + n])
        out = np.concatenate(parts) if parts else x[:0]
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def decode_upload(path: Path) -> Pcm:
    """Decode an uploaded file once to 8 kHz mono 16-bit PCM; AnnouncementError if it is
    not audio, holds no sound, or is too long."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError as exc:
        raise AnnouncementError(f"cannot read {path}: {exc.strerror or exc}") from None
    fmt, decoder = _sniff(head)
    segment_class = _pydub()
    try:
        seg = segment_class.from_file(str(path), format=fmt, codec=decoder)
    except Exception as exc:  # pydub's CouldntDecodeError, wave/struct errors...
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        raise AnnouncementError(f"cannot decode {fmt.upper()} ({lines[-1] if lines else exc})"
                                ) from None
    if seg.duration_seconds > MAX_SECONDS:
        raise AnnouncementError(f"{seg.duration_seconds:.0f} s is too long "
                                f"(at most {MAX_SECONDS // 60} minutes)")
    width, channels = seg.sample_width, seg.channels
    x = np.array(seg.get_array_of_samples(), dtype=np.float64) * (32768.0 / 2 ** (8 * width - 1))
    if channels > 1:
        x = x[: len(x) - len(x) % channels].reshape(-1, channels).mean(axis=1)
    pcm = _to_8k(x, seg.frame_rate)
    if len(pcm) < RATE // 50:
        raise AnnouncementError("no sound in the file (shorter than 20 ms)")
    return pcm


# --- storing and listing ----------------------------------------------------------------------
def add_announcement(src: Path, *, customer: str, name: str, customers: set[str],
                     data_dir: Path) -> Stored:
    """Check, decode and store one announcement; nothing is written when anything fails."""
    check_name(name)
    if customer not in customers or not CUSTOMER.fullmatch(customer):
        known = ", ".join(sorted(customers)) or "none"
        raise AnnouncementError(f"customer {customer!r} is not in the plan (known: {known})")
    pcm = decode_upload(src)
    dst = announcements_dir(data_dir) / customer / f"{name}.pcm"
    atomic_write(dst, pcm.astype("<i2").tobytes())
    log.info("announcement customer=%s name=%s seconds=%.2f from %s", customer, name,
             len(pcm) / RATE, src)
    return Stored(customer, name, dst, len(pcm) / RATE)


def list_announcements(data_dir: Path, customer: str | None = None) -> list[Stored]:
    root = announcements_dir(data_dir)
    found: list[Stored] = []
    if customer is not None and not CUSTOMER.fullmatch(customer):
        return found
    dirs = [root / customer] if customer is not None else sorted(root.glob("*"))
    for d in dirs:
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.pcm")):
            if NAME.fullmatch(f.stem):
                found.append(Stored(d.name, f.stem, f, f.stat().st_size / 2 / RATE))
    return found


# --- the command line ---------------------------------------------------------------------
def _plan_customers(config: Path) -> set[str]:
    from dialplan.loader import load_plan_data
    from dialplan.yamlsource import load_yaml_file

    plan = load_plan_data(load_yaml_file(config))
    return {c.id for c in plan.customers}


def _cmd_add(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from dialplan.yamlsource import ConfigError

    src = Path(args.file)
    try:
        customers = _plan_customers(Path(args.config))
    except (ConfigError, OSError) as exc:
        err.write(f"wte announcements add: cannot load {args.config}: {exc}\n")
        return 2
    try:
        stored = add_announcement(src, customer=args.customer, name=args.name,
                                  customers=customers, data_dir=Path(args.data_dir))
    except AnnouncementError as exc:
        err.write(f"wte announcements add: {src}: {exc}; nothing stored\n")
        return 1
    out.write(f"stored {stored.customer}/{stored.name}: {stored.seconds:.2f} s, 8 kHz mono "
              f"({stored.path})\n")
    return 0


def _cmd_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    for s in list_announcements(Path(args.data_dir), args.customer):
        out.write(json.dumps({"customer": s.customer, "name": s.name,
                              "seconds": round(s.seconds, 2), "path": str(s.path)}) + "\n")
    return 0


def add_arguments(parser: argparse.ArgumentParser, default_config: str,
                  default_data: str) -> None:
    sub = parser.add_subparsers(dest="announcements_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="convert a WAV or MP3 once and store it for a customer",
                         description="Decodes FILE (WAV or MP3, any rate or channels) once to "
                         "8 kHz mono and stores DATA/announcements/CUSTOMER/NAME.pcm. The "
                         "name 'moh' is the customer's music on hold. A file that is not "
                         "audio is refused (exit status 1) and nothing is stored.")
    add.add_argument("file", metavar="FILE")
    add.add_argument("--customer", required=True, help="customer id (from the plan)")
    add.add_argument("--name", required=True, help="1-64 of a-z 0-9 _ - ('moh': music on hold)")
    add.add_argument("--config", default=default_config, help="configuration YAML (the plan)")
    add.add_argument("--data-dir", default=default_data, help="data directory (default var/)")
    add.set_defaults(action=_cmd_add)
    lst = sub.add_parser("list", help="the stored announcements, one JSON line each")
    lst.add_argument("--customer", default=None, help="only this customer's")
    lst.add_argument("--data-dir", default=default_data, help="data directory (default var/)")
    lst.set_defaults(action=_cmd_list)


def announcements_main(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    result: int = args.action(args, out, err)
    return result
