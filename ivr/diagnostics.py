"""The test services (issue 6) as call applications: `*43` echo, `*44` tone, `*45` record.

Operators use them to diagnose one-way audio, codecs and DTMF: the echo sends back what the
phone sends, the tone test plays a steady 1 kHz tone until the caller hangs up, and the
record test beeps, records the caller and logs every digit it heard with its source (RFC
4733, in-band or SIP INFO) and, once the recording is saved, where it is.
"""

from __future__ import annotations

import logging

from ivr.application import Answered as AnsweredEvent
from ivr.application import (
    AppEvent,
    ApplicationBase,
    CallInfo,
    Command,
    Digit,
    Echo,
    Play,
    PlayTone,
    Record,
    RecordingFinished,
    Tone,
)

log = logging.getLogger("ivr.diagnostics")

TEST_TONE_HZ = 1000.0
PACKET_SECONDS = 0.02  # the usual RTP packetization (a=ptime:20), to turn counts into time


def why_not_saved(packets_received: int | None) -> str:
    """Why a recording left no file, from the RTP the call's media endpoint received: none
    at all (one-way audio: NAT, firewall, a phone that never sent) or only silence (the
    recorder keeps no file when it heard no voice, even when silence payload arrived)."""
    if packets_received is None:
        return "unknown (the media endpoint reports no RTP counters)"
    if packets_received == 0:
        return "no RTP received from the caller (one-way audio: check NAT and firewall)"
    return (f"only silence heard: {packets_received} RTP packets (about "
            f"{packets_received * PACKET_SECONDS:.1f} s), none above the voice level")
RECORD_TEST_MAX_SECONDS = 120.0


class EchoTest(ApplicationBase):
    """`*43`: whatever the caller sends comes back."""

    def __init__(self, info: CallInfo) -> None:
        self.info = info

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        if isinstance(event, AnsweredEvent):
            return [Echo(True)]
        return []


class ToneTest(ApplicationBase):
    """`*44`: a steady 1 kHz tone until the caller hangs up."""

    def __init__(self, info: CallInfo, freq_hz: float = TEST_TONE_HZ) -> None:
        self.info = info
        self.freq_hz = freq_hz

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        if isinstance(event, AnsweredEvent):
            return [PlayTone(self.freq_hz)]
        return []


class RecordTest(ApplicationBase):
    """`*45`: a one-second beep, then everything the caller says is recorded until they
    hang up (DTMF does not stop it: the digits are part of the test)."""

    def __init__(self, info: CallInfo) -> None:
        self.info = info
        self.digits: list[Digit] = []
        self.result: RecordingFinished | None = None

    @property
    def file_name(self) -> str:
        return f"record-test-{self.info.token}.wav"

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        if isinstance(event, AnsweredEvent):
            log.info("record test call=%s recording name=%s", self.info.call_id, self.file_name)
            return [Play((Tone(TEST_TONE_HZ, 1.0),), interruptible=False),
                    Record(self.file_name, RECORD_TEST_MAX_SECONDS, stop_on_hash=False,
                           keep_silence=True)]
        if isinstance(event, Digit):
            self.digits.append(event)
        elif isinstance(event, RecordingFinished):
            self.result = event
            # the line operators and tests read: keep its words (saved=, path=, digits=)
            log.info("record test call=%s saved=%s seconds=%.2f path=%s digits=%s",
                     self.info.call_id, event.saved, event.seconds, event.path,
                     "".join(d.digit for d in self.digits))
        return []
