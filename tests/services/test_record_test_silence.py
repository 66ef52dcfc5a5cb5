"""Issue 24: `*45` with a caller who sends only silence said `saved=False seconds=0.00` and
nothing more. The runner now says why nothing was saved, from what the endpoint received."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ivr.diagnostics import RecordTest, why_not_saved
from media import RecordingResult, StopReason
from media.recorder import Recorder
from switch.services.applications import ApplicationRunner, PromptLibrary

from .test_runner import INFO, Control, FakeMedia, settle


class CountingMedia(FakeMedia):
    """A fake endpoint that counts received RTP like the UDP one (`stats()`)."""

    def __init__(self, packets: int) -> None:
        super().__init__()
        self.packets = packets

    def stats(self) -> SimpleNamespace:
        return SimpleNamespace(packets_received=self.packets)


def test_why_not_saved_tells_no_rtp_from_silence() -> None:
    assert why_not_saved(0).startswith("no RTP received from the caller")
    assert why_not_saved(200).startswith("only silence heard: 200 RTP packets (about 4.0 s)")
    assert why_not_saved(None).startswith("unknown")


@pytest.mark.parametrize(("media", "why"), [
    (CountingMedia(200), "why=only silence heard: 200 RTP packets (about 4.0 s)"),
    (CountingMedia(0), "why=no RTP received from the caller"),
    (FakeMedia(), "why=unknown"),
])
async def test_a_recording_left_unsaved_is_explained(tmp_path: Path, media: FakeMedia, why: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    runner = ApplicationRunner(RecordTest(INFO), media, Control(), INFO,
                               recordings=tmp_path, prompts=PromptLibrary(None))
    with caplog.at_level(logging.INFO):
        runner.start()
        runner.answered()
        assert media.recording is not None
        # what the recorder reports after a 4 s call of silence: no voice, no file
        media.recording.set_result(RecordingResult(media.path, 0.0, StopReason.STOPPED,
                                                   saved=False))
        await settle()
        await runner.close()
    lines = [r.getMessage() for r in caplog.records]
    assert any(ln.startswith("record test call=call-9 saved=False seconds=0.00")
               for ln in lines), lines
    assert any(ln.startswith(f"recording call=call-9 not saved: {why}") for ln in lines), lines


async def test_a_saved_recording_gets_no_reason(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    media = CountingMedia(200)
    runner = ApplicationRunner(RecordTest(INFO), media, Control(), INFO,
                               recordings=tmp_path, prompts=PromptLibrary(None))
    with caplog.at_level(logging.INFO):
        runner.start()
        runner.answered()
        await runner.close()  # the fake reports 2.5 s saved
    assert not [r for r in caplog.records if "not saved" in r.getMessage()]


def test_four_seconds_of_silence_payload_are_recorded(tmp_path: Path) -> None:
    rec = Recorder(str(tmp_path / "silence.wav"), max_seconds=120, stop_on_dtmf=False,
                   keep_silence=True)
    for _ in range(200):  # 4 s of 20 ms PCMU silence frames, decoded
        rec.feed(np.zeros(160, np.int16))
    result = rec.save()
    assert result.saved and result.duration_s == pytest.approx(4.0)


def test_without_keep_silence_or_without_rtp_nothing_is_saved(tmp_path: Path) -> None:
    """A message (voicemail) of pure silence is not kept; nor is a diagnostic recording
    that never received a packet (concealment frames only)."""
    plain = Recorder(str(tmp_path / "a.wav"), max_seconds=120)
    concealed = Recorder(str(tmp_path / "b.wav"), max_seconds=120, keep_silence=True)
    for _ in range(100):
        plain.feed(np.zeros(160, np.int16))
        concealed.feed(np.zeros(160, np.int16), received=False)
    assert not plain.save().saved and not concealed.save().saved
    assert not (tmp_path / "a.wav").exists() and not (tmp_path / "b.wav").exists()
