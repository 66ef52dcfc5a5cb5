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
import stat
import wave
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dialplan import RoutingDecision, User
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
from switch.announcements import CUSTOMER

log = logging.getLogger("switch.applications")

RATE = 8000
DIGIT_WAIT = 3600.0
RINGBACK = Tone(440.0, 1.5)  # the digit reader's poll: digits arrive long before this


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


SHIPPED = Path(__file__).resolve().parents[2] / "prompts"
SHIPPED_PROMPTS = SHIPPED / "fr"
SHIPPED_MOH = SHIPPED / "moh" / "default.wav"  # made by tools/make_moh.py
MOH_NAME = "moh"  # the announcement (or operator prompt) name of the music on hold


def load_wav(path: Path) -> Pcm:
    """A shipped prompt: a WAV file in the engine's own format (8 kHz mono 16-bit)."""
    with wave.open(str(path)) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
            raise ValueError(f"{path}: not 8 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def _load(path: Path) -> Pcm:
    return load_wav(path) if path.suffix == ".wav" else load_pcm(path)


_CHIME = Path("<chime>")


def _chime() -> Pcm:
    """The last resort music on hold: a soft two-tone chime every 2.5 s."""
    silence = np.zeros(RATE, dtype=np.int16)
    return np.concatenate([tone_pcm(523.25, 0.4, 0.1), tone_pcm(659.25, 0.6, 0.1),
                           silence, silence])


def _stamp(path: Path) -> int | None:
    """The file's modification time (ns), None when it is not there."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns if stat.S_ISREG(st.st_mode) else None


class PromptLibrary:
    """Named prompts, converted ahead of time (raw 8 kHz s16le, `NAME.pcm`), and the music
    on hold, found in this order:

    1. the customer's announcements (`announcements/<customer>/NAME.pcm`, added by
       `wte announcements add`), when the prompt names its customer;
    2. the operator's prompts (`directory/NAME.pcm`);
    3. the prompts shipped with the switch (`prompts/fr/NAME.wav`, `tools/make_prompts.py`;
       the music on hold `prompts/moh/default.wav`, `tools/make_moh.py`).

    Files are loaded once; a lookup only stats the candidates, so an announcement added or
    replaced while the switch runs is used from the next call on."""

    def __init__(self, directory: Path | None, shipped: Path | None = SHIPPED_PROMPTS, *,
                 announcements: Path | None = None, shipped_moh: Path | None = SHIPPED_MOH
                 ) -> None:
        self.directory = directory
        self.shipped = shipped
        self.announcements = announcements
        self.shipped_moh = shipped_moh
        self._tones: dict[Tone, Pcm] = {}
        self._files: dict[Path, tuple[int, Pcm]] = {}
        self._moh: dict[Path, tuple[int, MohSource]] = {}

    # -- music on hold --

    @property
    def music_on_hold(self) -> MohSource:
        """The operator's music on hold (no customer's own)."""
        return self.music_on_hold_for(None)

    def music_on_hold_for(self, customer_id: str | None) -> MohSource:
        """The music a party of `customer_id` hears on hold: the customer's `moh`
        announcement, else the operator's `moh.pcm`, else the shipped track (else a soft
        chime). One shared source per file for every listener (encoded once per codec)."""
        key, stamp = self._find(MOH_NAME, customer_id, self.shipped_moh) or (_CHIME, 0)
        cached = self._moh.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            source = MohSource(_chime() if key is _CHIME else _load(key))
        except (OSError, ValueError) as exc:  # an empty or unreadable file: never the call's end
            log.warning("music on hold %s unusable (%s): a chime plays instead", key, exc)
            key, stamp, source = _CHIME, 0, MohSource(_chime())
        self._moh[key] = (stamp, source)
        log.info("music on hold for customer=%s from %s", customer_id, key)
        return source

    # -- prompts --

    def pcm(self, item: PromptItem) -> Pcm:
        if isinstance(item, Recording):  # a message or greeting: read each time, not cached
            return load_wav(Path(item.path))
        if isinstance(item, Tone):
            cached = self._tones.get(item)
            if cached is None:
                cached = self._tones[item] = tone_pcm(item.freq_hz, item.seconds)
            return cached
        name = Path(item.name).name
        shipped = self.shipped / f"{name}.wav" if self.shipped is not None else None
        found = self._find(name, item.customer, shipped)
        if found is None:
            raise FileNotFoundError(f"no prompt {name!r} (customer's, operator's or shipped)")
        path, stamp = found
        hit = self._files.get(path)
        if hit is None or hit[0] != stamp:
            hit = self._files[path] = (stamp, _load(path))
        return hit[1]

    def _find(self, name: str, customer: str | None, shipped: Path | None
              ) -> tuple[Path, int] | None:
        """The first existing file for `name`, with its modification time."""
        candidates: list[Path] = []
        if customer and self.announcements is not None and CUSTOMER.fullmatch(customer):
            candidates.append(self.announcements / customer / f"{name}.pcm")
        if self.directory is not None:
            candidates.append(self.directory / f"{name}.pcm")
        if shipped is not None:
            candidates.append(shipped)
        for path in candidates:
            stamp = _stamp(path)
            if stamp is not None:
                return path, stamp
        return None


def call_customer(caller: User | None, decision: RoutingDecision) -> str | None:
    """Whose music a held party hears: the caller's customer for a call from a user, the
    called entity's (or the trunk's) customer for a call from the public network."""
    if caller is not None:
        return caller.customer.id
    for owner in (decision.target, decision.trunk):
        customer = getattr(owner, "customer", None)
        if customer is not None and isinstance(getattr(customer, "id", None), str):
            return str(customer.id)
    return None


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

    def replace(self, app: CallApplication, name: str) -> None:
        """Another application takes the caller on the same endpoint (a nested menu, a
        mailbox after the target did not answer); it starts as if just answered."""
        log.info("call %s: application %s takes over", self.info.call_id, name)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.media.stop_playing()
        self.session = ApplicationSession(app)
        self._perform(self.session.start(self._clock()))
        self.deliver(Answered())

    def detach(self) -> None:
        """The caller was handed to a third party and the endpoint's sockets now belong to
        the call's relay: stop everything here without closing them."""
        self.closed = True
        self.session.transfer_connected()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in [self._digits, *self._tasks]:
            if task is not None:
                task.cancel()

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
        failed_play = False
        for cmd in commands:
            try:
                self._command(cmd)
            except Exception:
                log.exception("call %s: application command %s failed", self.info.call_id,
                              type(cmd).__name__)
                failed_play = failed_play or isinstance(cmd, Play)
        self._arm()
        if failed_play and not self.closed:
            # a prompt that cannot play (an announcement not added yet) ends at once, so
            # the application moves on instead of waiting for an end that never comes
            self._perform(self.session.receive(PromptFinished(interrupted=True), self._clock()))

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
            m.play_moh(self.moh or self.prompts.music_on_hold_for(cmd.customer))
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
            # the caller hears ringback while the target rings (French cadence: 440 Hz,
            # 1.5 s on, 3.5 s off; ETSI TR 101 041-1, France)
            self._play_generation += 1
            m.play([self.prompts.pcm(RINGBACK), np.zeros(int(RATE * 3.5), dtype=np.int16)],
                   loop=True, interruptible=False)
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
