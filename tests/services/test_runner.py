"""The application runner over a fake media endpoint: commands performed, events fed back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ivr.application import (
    Answered,
    AppEvent,
    ApplicationBase,
    CallInfo,
    Command,
    Digit,
    DigitSource,
    HangUp,
    Play,
    Prompt,
    PromptFinished,
    Record,
    RecordingFinished,
    Tone,
    Transfer,
)
from ivr.diagnostics import RecordTest
from media import DtmfDigit, DtmfSource, RecordingResult, StopReason
from media import MusicOnHold as MohSource
from media.codecs import Pcm
from switch.services.applications import ApplicationRunner, PromptLibrary

INFO = CallInfo("call-9", "501410", "sip:*45@h", "tok")


class FakeMedia:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.digits: asyncio.Queue[DtmfDigit] = asyncio.Queue()
        self.played: asyncio.Future[bool] | None = None
        self.recording: asyncio.Future[RecordingResult | None] | None = None
        self.closed = False

    def play(self, pcm: Pcm | Sequence[Pcm], *, loop: bool = False,
             interruptible: bool = True) -> None:
        self.calls.append(f"play {len(pcm)} interruptible={interruptible}")
        self.played = asyncio.get_running_loop().create_future()

    def play_tone(self, freq_hz: float, *, amplitude: float = 0.3) -> None:
        self.calls.append(f"tone {freq_hz:g}")

    def play_moh(self, source: MohSource) -> None:
        self.calls.append("moh")

    def stop_playing(self) -> None:
        self.calls.append("stop")

    async def wait_played(self) -> bool:
        assert self.played is not None
        return await self.played

    def echo(self, enabled: bool) -> None:
        self.calls.append(f"echo {enabled}")

    def start_recording(self, path: str, *, max_seconds: float, stop_on_dtmf: bool = True,
                        silence_seconds: float | None = None,
                        keep_silence: bool = False) -> None:
        self.calls.append(f"record {Path(path).name} max={max_seconds:g} dtmf={stop_on_dtmf}")
        self.recording = asyncio.get_running_loop().create_future()
        self.path = path

    def stop_recording(self) -> None:
        self.calls.append("stop recording")

    async def wait_recording(self) -> RecordingResult | None:
        return await self.recording if self.recording is not None else None

    async def next_digit(self, timeout: float) -> DtmfDigit | None:
        return await self.digits.get()

    async def close(self) -> None:
        self.closed = True
        if self.recording is not None and not self.recording.done():
            self.recording.set_result(RecordingResult(self.path, 2.5, StopReason.STOPPED))


class Control:
    def __init__(self) -> None:
        self.done: list[str] = []

    def hang_up(self, cause: str) -> None:
        self.done.append(f"hang_up {cause}")

    def transfer(self, target: str) -> None:
        self.done.append(f"transfer {target}")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_record_test_through_the_runner(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    media, control = FakeMedia(), Control()
    runner = ApplicationRunner(RecordTest(INFO), media, control, INFO,
                               recordings=tmp_path, prompts=PromptLibrary(None))
    with caplog.at_level(logging.INFO):
        runner.start()
        runner.answered()
        assert media.calls == ["play 1 interruptible=False",
                               "record record-test-tok.wav max=120 dtmf=False"]
        media.digits.put_nowait(DtmfDigit("4", 80, DtmfSource.RFC4733))
        await settle()
        runner.deliver(Digit("7", DigitSource.INFO, 100))  # SIP INFO, from the call service
        await runner.close()
    assert media.closed
    lines = [r.getMessage() for r in caplog.records]
    assert "dtmf call=call-9 digit=4 source=rfc4733 duration_ms=80" in lines
    assert "dtmf call=call-9 digit=7 source=info duration_ms=100" in lines
    saved = next(line for line in lines if "saved=" in line)
    assert saved.startswith("record test call=call-9 saved=True seconds=2.50 path=")
    assert saved.endswith("record-test-tok.wav digits=47")


class Greeter(ApplicationBase):
    """Plays a greeting; a digit during it transfers, the end of it hangs up."""

    def __init__(self) -> None:
        self.events: list[AppEvent] = []

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        self.events.append(event)
        if isinstance(event, Answered):
            return [Play((Tone(440, 0.5), Tone(880, 0.5)))]
        if isinstance(event, Digit):
            return [Transfer("5014" + event.digit + "0")]
        if isinstance(event, PromptFinished):
            return [HangUp("greeting over")]
        if isinstance(event, RecordingFinished):
            return [Record("x.wav", 1)]
        return []


async def test_prompt_end_and_interruption_come_back_as_events(tmp_path: Path) -> None:
    media, control = FakeMedia(), Control()
    app = Greeter()
    runner = ApplicationRunner(app, media, control, INFO, recordings=tmp_path,
                               prompts=PromptLibrary(None))
    runner.start()
    runner.answered()
    assert media.calls == ["play 2 interruptible=True"]
    assert media.played is not None
    media.played.set_result(True)
    await settle()
    assert PromptFinished(interrupted=False) in app.events
    assert control.done == ["hang_up greeting over"]
    media.digits.put_nowait(DtmfDigit("1", 80, DtmfSource.INBAND))
    await settle()
    assert control.done == ["hang_up greeting over"]  # the application let go: no transfer
    await runner.close()


async def test_a_missing_prompt_does_not_stop_the_call(tmp_path: Path) -> None:
    from ivr.application import Prompt

    class Bad(ApplicationBase):
        def receive(self, event: AppEvent, now: float) -> list[Command]:
            if isinstance(event, Answered):
                return [Play((Prompt("nope"),)), HangUp("after")]
            return []

    media, control = FakeMedia(), Control()
    runner = ApplicationRunner(Bad(), media, control, INFO, recordings=tmp_path,
                               prompts=PromptLibrary(tmp_path))
    runner.start()
    runner.answered()
    assert media.calls == [] and control.done == ["hang_up after"]
    await runner.close()


async def test_music_on_hold_has_a_default_source(tmp_path: Path) -> None:
    from ivr.application import MusicOnHold

    class Hold(ApplicationBase):
        def receive(self, event: AppEvent, now: float) -> list[Command]:
            return [MusicOnHold()] if isinstance(event, Answered) else []

    media, library = FakeMedia(), PromptLibrary(tmp_path)  # no moh.pcm there
    runner = ApplicationRunner(Hold(), media, Control(), INFO, recordings=tmp_path,
                               prompts=library)
    runner.start()
    runner.answered()
    assert media.calls == ["moh"]
    assert library.music_on_hold is library.music_on_hold  # one shared source
    assert library.music_on_hold.frames > 0
    await runner.close()


def test_shipped_french_prompts_are_found_by_name(tmp_path: Path) -> None:
    library = PromptLibrary(tmp_path)  # the operator has none: the shipped one plays
    pcm = library.pcm(Prompt("invalid-entry"))
    assert len(pcm) > 8000 * 0.5  # more than half a second of speech
    assert float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) > 500  # not silence
    (tmp_path / "invalid-entry.pcm").write_bytes(np.zeros(800, dtype="<i2").tobytes())
    assert len(PromptLibrary(tmp_path).pcm(Prompt("invalid-entry"))) == 800  # operator's wins
    with pytest.raises(FileNotFoundError):
        library.pcm(Prompt("no-such-prompt"))


async def test_a_prompt_that_cannot_play_ends_at_once(tmp_path: Path) -> None:
    """An announcement the operator has not added yet: the application hears that its
    prompt ended (interrupted) and goes on, instead of waiting in silence."""

    class Greets(ApplicationBase):
        def __init__(self) -> None:
            self.events: list[AppEvent] = []

        def receive(self, event: AppEvent, now: float) -> list[Command]:
            self.events.append(event)
            if isinstance(event, Answered):
                return [Play((Prompt("never-added", customer="acme"),))]
            return []

    app, media = Greets(), FakeMedia()
    runner = ApplicationRunner(app, media, Control(), INFO, recordings=tmp_path,
                               prompts=PromptLibrary(tmp_path))
    runner.start()
    runner.answered()
    assert PromptFinished(interrupted=True) in app.events
    await runner.close()
