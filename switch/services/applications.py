"""The one runner of call applications: an application, a call and a media endpoint.

The runner turns what the media endpoint reports (digits with their source, playback and
recording ends) and the runner's single timer into `ivr.application` events, hands them to
the application (through `ivr.session.ApplicationSession`, which does digit collection) and
performs the commands it returns on the endpoint and on the call (`CallControl`). It knows
no application by name: a new feature is a new application plus a row in the call
manager's decision table (`switch.b2bua.decisions`), never a branch here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import wave
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ivr.application import (
    Answered,
    AppEvent,
    CallApplication,
    CallInfo,
    Command,
    Digit,
    DigitSource,
    Echo,
    FarEndHungUp,
    HangUp,
    MusicOnHold,
    Play,
    PlayTone,
    PromptFinished,
    PromptItem,
    Record,
    Recording,
    RecordingFinished,
    StopPlaying,
    StopRecording,
    Tone,
    Transfer,
)
from ivr.diagnostics import why_not_saved
from ivr.session import ApplicationSession
from media import DtmfDigit, RecordingResult, load_pcm
from media import MusicOnHold as MohSource
from media.codecs import Pcm

log = logging.getLogger("switch.applications")

RATE = 8000
DIGIT_WAIT = 3600.0  # the digit reader's poll: digits arrive long before this


class ApplicationMedia(Protocol):
    """What the runner uses of a `media.MediaEndpoint` (a fake in unit tests)."""

    def play(self, pcm: Pcm | Sequence[Pcm], *, loop: bool = False,
             interruptible: bool = True) -> None: ...

    def play_tone(self, freq_hz: float, *, amplitude: float = 0.3) -> None: ...

    def play_moh(self, source: MohSource) -> None: ...

    def stop_playing(self) -> None: ...

    async def wait_played(self) -> bool: ...

    def echo(self, enabled: bool) -> None: ...

    def start_recording(self, path: str, *, max_seconds: float, stop_on_dtmf: bool = True,
                        silence_seconds: float | None = None,
                        keep_silence: bool = False) -> None: ...

    def stop_recording(self) -> None: ...

    async def wait_recording(self) -> RecordingResult | None: ...

    async def next_digit(self, timeout: float) -> DtmfDigit | None: ...

    async def close(self) -> None: ...


class CallControl(Protocol):
    """What an application may do to its call's signalling."""

    def hang_up(self, cause: str) -> None: ...

    def transfer(self, target: str) -> None: ...


def tone_pcm(freq_hz: float, seconds: float, amplitude: float = 0.3) -> Pcm:
    """A sine tone, 8 kHz 16-bit mono (the media engine's PCM format)."""
    t = np.arange(int(RATE * seconds)) / RATE
    return (amplitude * 32767 * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


SHIPPED_PROMPTS = Path(__file__).resolve().parents[2] / "prompts" / "fr"


def load_wav(path: Path) -> Pcm:
    """A shipped prompt: a WAV file in the engine's own format (8 kHz mono 16-bit)."""
    with wave.open(str(path)) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
            raise ValueError(f"{path}: not 8 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


class PromptLibrary:
    """Named prompts, converted ahead of time (raw 8 kHz s16le, `NAME.pcm`), loaded once,
    and the music on hold (`moh.pcm` there, else a soft two-tone chime). A name the
    operator's directory lacks is taken from the prompts shipped with the switch
    (`prompts/fr/NAME.wav`, made by `tools/make_prompts.py`)."""

    def __init__(self, directory: Path | None, shipped: Path | None = SHIPPED_PROMPTS) -> None:
        self.directory = directory
        self.shipped = shipped
        self._cache: dict[PromptItem, Pcm] = {}
        self._moh: MohSource | None = None

    @property
    def music_on_hold(self) -> MohSource:
        """One shared source for every caller on hold (encoded once per codec)."""
        if self._moh is None:
            path = self.directory / "moh.pcm" if self.directory is not None else None
            if path is not None and path.is_file():
                self._moh = MohSource(load_pcm(path))
            else:
                silence = np.zeros(RATE, dtype=np.int16)
                chime = np.concatenate([tone_pcm(523.25, 0.4, 0.1), tone_pcm(659.25, 0.6, 0.1),
                                        silence, silence])
                self._moh = MohSource(chime)
        return self._moh

    def pcm(self, item: PromptItem) -> Pcm:
        if isinstance(item, Recording):  # a message or greeting: read each time, not cached
            return load_wav(Path(item.path))
        cached = self._cache.get(item)
        if cached is not None:
            return cached
        if isinstance(item, Tone):
            pcm = tone_pcm(item.freq_hz, item.seconds)
        else:
            pcm = self._named(Path(item.name).name)
        self._cache[item] = pcm
        return pcm


    def _named(self, name: str) -> Pcm:
        if self.directory is not None:
            path = self.directory / f"{name}.pcm"
            if path.is_file():
                return load_pcm(path)
        if self.shipped is not None:
            wav = self.shipped / f"{name}.wav"
            if wav.is_file():
                return load_wav(wav)
        raise FileNotFoundError(f"no prompt {name!r} (operator's or shipped)")


class ApplicationRunner:
    """One application on one call. `start()` then `answered()` when the caller has the
    200 OK; `close()` when the call ended (it closes the endpoint)."""

    def __init__(self, app: CallApplication, media: ApplicationMedia, control: CallControl,
                 info: CallInfo, *, recordings: Path, prompts: PromptLibrary,
                 moh: MohSource | None = None) -> None:
        self.session = ApplicationSession(app)
        self.media = media
        self.control = control
        self.info = info
        self.recordings = recordings
        self.prompts = prompts
        self.moh = moh
        self._loop = asyncio.get_running_loop()
        self._clock = self._loop.time  # the application's deadlines are loop times
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._digits: asyncio.Future[None] | None = None
        self._recording: asyncio.Future[None] | None = None
        self._play_generation = 0
        self.closed = False

    # -- what the call service calls --

    def start(self) -> None:
        self._perform(self.session.start(self._clock()))
        self._digits = self._spawn(self._read_digits())

    def answered(self) -> None:
        self.deliver(Answered())

    def deliver(self, event: AppEvent) -> None:
        """An event from outside the media stream (SIP INFO digits, answer)."""
        if isinstance(event, Digit):
            self._log_digit(event)
        self._perform(self.session.receive(event, self._clock()))

    async def close(self, cause: str = "call ended") -> None:
        if self.closed:
            return
        self.closed = True
        self.session.receive(FarEndHungUp(cause), self._clock())
        if self._timer is not None:
            self._timer.cancel()
        if self._digits is not None:
            self._digits.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._digits
        await self.media.close()  # stops a running recording: its result comes next
        if self._recording is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._recording), 10)
        for task in list(self._tasks):
            task.cancel()

    # -- commands --

    def _perform(self, commands: list[Command]) -> None:
        for cmd in commands:
            try:
                self._command(cmd)
            except Exception:
                log.exception("call %s: application command %s failed", self.info.call_id,
                              type(cmd).__name__)
        self._arm()

    def _command(self, cmd: Command) -> None:
        m = self.media
        if isinstance(cmd, Play):
            pcm = [self.prompts.pcm(item) for item in cmd.items]
            m.play(pcm, loop=cmd.loop, interruptible=cmd.interruptible)
            self._play_generation += 1
            self._spawn(self._watch_playback(self._play_generation))
        elif isinstance(cmd, PlayTone):
            self._play_generation += 1
            m.play_tone(cmd.freq_hz)
        elif isinstance(cmd, MusicOnHold):
            self._play_generation += 1
            m.play_moh(self.moh or self.prompts.music_on_hold)
        elif isinstance(cmd, StopPlaying):
            m.stop_playing()
        elif isinstance(cmd, Echo):
            m.echo(cmd.enabled)
        elif isinstance(cmd, Record):
            self.recordings.mkdir(parents=True, exist_ok=True)
            path = self.recordings / Path(cmd.name).name
            m.start_recording(str(path), max_seconds=cmd.max_seconds,
                              stop_on_dtmf=cmd.stop_on_hash, keep_silence=cmd.keep_silence)
            log.info("recording call=%s path=%s", self.info.call_id, path)
            self._recording = self._spawn(self._watch_recording(str(path)))
        elif isinstance(cmd, StopRecording):
            m.stop_recording()
        elif isinstance(cmd, HangUp):
            self.control.hang_up(cmd.cause)
        elif isinstance(cmd, Transfer):
            self.control.transfer(cmd.target)

    # -- what the media endpoint reports --

    def _log_digit(self, digit: Digit) -> None:
        # operators and tests read this line: keep its words (call=, digit=, source=)
        log.info("dtmf call=%s digit=%s source=%s duration_ms=%d", self.info.call_id,
                 digit.digit, digit.source.value, digit.duration_ms)

    async def _read_digits(self) -> None:
        while True:
            got = await self.media.next_digit(DIGIT_WAIT)
            if got is None:
                continue
            self.deliver(Digit(got.digit, DigitSource(got.source.value), got.duration_ms))

    async def _watch_playback(self, generation: int) -> None:
        completed = await self.media.wait_played()
        if generation == self._play_generation and not self.closed:
            self._perform(self.session.receive(PromptFinished(interrupted=not completed),
                                               self._clock()))

    async def _watch_recording(self, path: str) -> None:
        result = await self.media.wait_recording()
        event = (RecordingFinished(path, 0.0, saved=False) if result is None else
                 RecordingFinished(result.path, result.duration_s, result.saved))
        if not event.saved:  # say why, with what the endpoint received (issue 24)
            log.info("recording call=%s not saved: why=%s", self.info.call_id,
                     why_not_saved(self._packets_received()))
        self._perform(self.session.receive(event, self._clock()))

    def _packets_received(self) -> int | None:
        """RTP packets the endpoint received, when it counts them (the UDP endpoint does)."""
        stats = getattr(self.media, "stats", None)
        if not callable(stats):
            return None
        try:
            count = getattr(stats(), "packets_received", None)
        except Exception:  # a closed endpoint: the reason is then unknown, not an error
            return None
        return count if isinstance(count, int) else None

    # -- the one timer --

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.session.next_deadline()
        if deadline is not None and not self.closed:
            self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self._clock()
        self._perform(self.session.handle_timer(now))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
