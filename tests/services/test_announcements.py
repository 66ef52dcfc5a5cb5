"""`wte announcements` and the prompt library's customer announcements and music on hold."""

from __future__ import annotations

import asyncio
import os
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ivr.application import Answered, AppEvent, ApplicationBase, Command, MusicOnHold, Prompt
from media import MusicOnHold as MohSource
from media.codecs import Pcm
from switch.__main__ import main
from switch.announcements import decode_upload
from switch.services.applications import SHIPPED_MOH, ApplicationRunner, PromptLibrary
from tools.make_moh import NOTE_HZ

RATE = 8000


def write_wav(path: Path, pcm: np.ndarray, rate: int, channels: int = 1, width: int = 2) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 1:
            w.writeframes((np.asarray(pcm) // 256 + 128).astype(np.uint8).tobytes())
        else:
            w.writeframes(np.asarray(pcm).astype("<i2").tobytes())


def tone(freq: float, seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = np.round(9000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    return np.repeat(x, channels) if channels > 1 else x  # interleaved frames


def peak_hz(pcm: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.argmax(spec) * RATE / len(pcm))


def add(tmp_path: Path, src: Path, *, customer: str = "acme", name: str = "welcome") -> int:
    return main(["announcements", "add", str(src), "--customer", customer, "--name", name,
                 "--config", "config/example.yaml", "--data-dir", str(tmp_path / "data")])


def stored(tmp_path: Path) -> list[Path]:
    root = tmp_path / "data" / "announcements"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize(("rate", "channels", "width"), [(44100, 2, 2), (16000, 1, 2),
                                                         (11025, 2, 1)])
def test_wav_of_any_rate_and_channels_becomes_8k_mono(tmp_path: Path, rate: int, channels: int,
                                                      width: int) -> None:
    src = tmp_path / "in.wav"
    write_wav(src, tone(700, 1.5, rate, channels), rate, channels, width)
    assert add(tmp_path, src) == 0
    out = tmp_path / "data" / "announcements" / "acme" / "welcome.pcm"
    assert stored(tmp_path) == [out]
    pcm = np.fromfile(out, dtype="<i2")
    assert abs(len(pcm) - 12000) <= 1  # 1.5 s at 8 kHz, mono
    assert abs(peak_hz(pcm) - 700) < 2


def test_mp3_is_decoded_once_with_pydub(tmp_path: Path) -> None:
    import imageio_ffmpeg
    from pydub import AudioSegment

    AudioSegment.converter = imageio_ffmpeg.get_ffmpeg_exe()
    raw = tone(500, 2.0, 48000, 2).astype("<i2").tobytes()
    seg = AudioSegment(data=raw, sample_width=2, frame_rate=48000, channels=2)
    src = tmp_path / "music.mp3"
    seg.export(str(src), format="mp3")
    assert src.read_bytes()[:3] == b"ID3" or src.read_bytes()[0] == 0xFF
    assert add(tmp_path, src, name="moh") == 0
    pcm = np.fromfile(tmp_path / "data" / "announcements" / "acme" / "moh.pcm", dtype="<i2")
    assert abs(len(pcm) / RATE - 2.0) < 0.08  # the MP3 encoder pads a frame or so
    assert abs(peak_hz(pcm) - 500) < 3


@pytest.mark.parametrize("content", [b"hello, this is not music\n",
                                     b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"not mp3 frames" * 50,
                                     b"RIFF\x10\x00\x00\x00WAVEjunk"],
                         ids=["text", "fake-mp3", "broken-wav"])
@pytest.mark.parametrize("suffix", [".txt", ".mp3", ".wav"])
def test_what_is_not_audio_is_refused_and_nothing_stored(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, suffix: str) -> None:
    src = tmp_path / f"upload{suffix}"
    src.write_bytes(content)
    assert add(tmp_path, src) == 1
    err = capsys.readouterr().err
    assert "nothing stored" in err and str(src) in err
    assert stored(tmp_path) == []


def test_unknown_customer_and_bad_names_are_refused(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.wav"
    write_wav(src, tone(700, 0.5, 8000), 8000)
    assert add(tmp_path, src, customer="globex") == 1
    assert "customer 'globex' is not in the plan" in capsys.readouterr().err
    for bad in ("Welcome", "../moh", "a" * 65, "x.y"):
        assert add(tmp_path, src, name=bad) == 1
        assert "bad name" in capsys.readouterr().err
    assert stored(tmp_path) == []


def test_list_shows_what_was_added(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    src = tmp_path / "in.wav"
    write_wav(src, tone(700, 0.5, 8000), 8000)
    assert add(tmp_path, src, name="closed") == 0
    capsys.readouterr()
    assert main(["announcements", "list", "--customer", "acme",
                 "--data-dir", str(tmp_path / "data")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["customer"], r["name"], r["seconds"]) for r in rows] == [("acme", "closed", 0.5)]


def test_decoding_keeps_the_band_limit(tmp_path: Path) -> None:
    # 6 kHz is above 4 kHz: filtered away by the resampling, not folded to 2 kHz
    src = tmp_path / "hf.wav"
    write_wav(src, tone(6000, 1.0, 44100) // 2 + tone(700, 1.0, 44100) // 2, 44100)
    pcm = decode_upload(src).astype(np.float64)
    spec = np.abs(np.fft.rfft(pcm))
    assert spec[2000] < 0.01 * spec[700]


# --- the prompt library ----------------------------------------------------------------------
def library(tmp_path: Path) -> PromptLibrary:
    return PromptLibrary(tmp_path / "prompts", announcements=tmp_path / "announcements")


def put(path: Path, pcm: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.asarray(pcm, dtype="<i2").tobytes())


def test_customer_announcement_first_then_operator_then_shipped(tmp_path: Path) -> None:
    lib = library(tmp_path)
    shipped = lib.pcm(Prompt("invalid-entry"))
    put(tmp_path / "announcements" / "acme" / "invalid-entry.pcm", np.ones(800))
    assert len(lib.pcm(Prompt("invalid-entry", customer="acme"))) == 800
    assert len(lib.pcm(Prompt("invalid-entry", customer="globex"))) == len(shipped)
    put(tmp_path / "prompts" / "invalid-entry.pcm", np.ones(400))
    assert len(lib.pcm(Prompt("invalid-entry", customer="globex"))) == 400
    assert len(lib.pcm(Prompt("invalid-entry", customer="../prompts"))) == 400  # not a path
    put(tmp_path / "announcements" / "acme" / "welcome.pcm", np.ones(1600))
    assert len(lib.pcm(Prompt("welcome", customer="acme"))) == 1600  # added while running
    with pytest.raises(FileNotFoundError):
        lib.pcm(Prompt("welcome", customer="globex"))


def test_music_on_hold_per_customer_shared_and_refreshed(tmp_path: Path) -> None:
    lib = library(tmp_path)
    default = lib.music_on_hold_for("acme")
    assert lib.music_on_hold_for("globex") is default is lib.music_on_hold  # one shared source
    assert default.frames * default.frame_samples == 20 * RATE  # the shipped 20 s track
    put(tmp_path / "announcements" / "acme" / "moh.pcm", np.full(3200, 500))
    own = lib.music_on_hold_for("acme")
    assert own is not default and len(own.pcm) == 3200
    assert lib.music_on_hold_for("acme") is own  # cached
    assert lib.music_on_hold_for("globex") is default
    put(tmp_path / "prompts" / "moh.pcm", np.full(4800, 500))
    assert len(lib.music_on_hold_for("globex").pcm) == 4800  # the operator's beats shipped
    assert len(lib.music_on_hold_for(None).pcm) == 4800
    path = tmp_path / "announcements" / "acme" / "moh.pcm"
    put(path, np.full(6400, 500))  # replaced by a new upload
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert len(lib.music_on_hold_for("acme").pcm) == 6400


def test_an_unusable_music_file_does_not_break_calls(tmp_path: Path) -> None:
    put(tmp_path / "announcements" / "acme" / "moh.pcm", np.zeros(0))  # empty
    source = library(tmp_path).music_on_hold_for("acme")
    assert source.frames > 0  # the chime


def test_shipped_track_is_the_generated_melody() -> None:
    with wave.open(str(SHIPPED_MOH)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    assert abs(len(pcm) / RATE - 20.0) < 0.5
    power = np.abs(np.fft.rfft(pcm)) ** 2
    f = np.fft.rfftfreq(len(pcm), 1 / RATE)
    near = np.zeros(len(f), bool)
    for hz in NOTE_HZ:
        near |= np.abs(f - hz) < 2
    assert power[near].sum() > 0.95 * power.sum()  # nothing but its notes


class _Media:
    def __init__(self) -> None:
        self.sources: list[MohSource] = []

    def play(self, pcm: Pcm | Sequence[Pcm], *, loop: bool = False,
             interruptible: bool = True) -> None: ...

    def play_tone(self, freq_hz: float, *, amplitude: float = 0.3) -> None: ...

    def play_moh(self, source: MohSource) -> None:
        self.sources.append(source)

    def stop_playing(self) -> None: ...

    async def wait_played(self) -> bool:
        return True

    def echo(self, enabled: bool) -> None: ...

    def start_recording(self, path: str, *, max_seconds: float, stop_on_dtmf: bool = True,
                        silence_seconds: float | None = None,
                        keep_silence: bool = False) -> None: ...

    def stop_recording(self) -> None: ...

    async def wait_recording(self) -> None:
        return None

    async def next_digit(self, timeout: float) -> None:
        await asyncio.sleep(timeout)

    async def close(self) -> None: ...


class _Control:
    def hang_up(self, cause: str) -> None: ...

    def transfer(self, target: str) -> None: ...


async def test_application_music_on_hold_is_the_callers_customers(tmp_path: Path) -> None:
    from ivr.application import CallInfo

    class Hold(ApplicationBase):
        def receive(self, event: AppEvent, now: float) -> list[Command]:
            return [MusicOnHold(customer="acme")] if isinstance(event, Answered) else []

    lib = library(tmp_path)
    put(tmp_path / "announcements" / "acme" / "moh.pcm", np.full(1600, 700))
    media = _Media()
    runner = ApplicationRunner(Hold(), media, _Control(), CallInfo("c", "501410", "sip:x", "t"),
                               recordings=tmp_path, prompts=lib)
    runner.start()
    runner.answered()
    assert media.sources == [lib.music_on_hold_for("acme")]
    assert len(media.sources[0].pcm) == 1600
    await runner.close()
