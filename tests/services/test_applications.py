"""Call applications driven by scripted events, with a fake clock and no sockets."""

from __future__ import annotations

import logging

import pytest

from ivr.application import (
    Answered,
    AppEvent,
    ApplicationBase,
    CallInfo,
    CollectDigits,
    CollectEnd,
    Command,
    Digit,
    DigitsCollected,
    DigitSource,
    Echo,
    FarEndHungUp,
    HangUp,
    Play,
    PlayTone,
    PromptFinished,
    Record,
    RecordingFinished,
    Timer,
    Tone,
    Transfer,
    TransferFailed,
)
from ivr.diagnostics import EchoTest, RecordTest, ToneTest
from ivr.session import ApplicationSession, SessionState

INFO = CallInfo("call-1", "501410", "sip:*45@127.0.0.1", "abc123")


def test_echo_test_echoes_once_answered() -> None:
    s = ApplicationSession(EchoTest(INFO))
    assert s.start(0.0) == []
    assert s.receive(Answered(), 0.1) == [Echo(True)]
    assert s.next_deadline() is None


def test_tone_test_plays_1khz_until_hang_up() -> None:
    s = ApplicationSession(ToneTest(INFO))
    s.start(0.0)
    assert s.receive(Answered(), 0.1) == [PlayTone(1000.0)]
    assert s.receive(FarEndHungUp(), 5.0) == []
    assert s.ended


def test_record_test_beeps_records_and_logs_digits_with_their_source(
        caplog: pytest.LogCaptureFixture) -> None:
    app = RecordTest(INFO)
    s = ApplicationSession(app)
    s.start(0.0)
    commands = s.receive(Answered(), 0.0)
    assert commands == [Play((Tone(1000.0, 1.0),), interruptible=False),
                        Record("record-test-abc123.wav", 120.0, stop_on_hash=False,
                               keep_silence=True)]
    s.receive(PromptFinished(), 1.0)
    s.receive(Digit("1", DigitSource.RFC4733, 120), 2.0)
    s.receive(Digit("#", DigitSource.INBAND, 90), 3.0)
    s.receive(Digit("5", DigitSource.INFO, 100), 3.5)
    s.receive(FarEndHungUp(), 4.0)
    with caplog.at_level(logging.INFO, logger="ivr.diagnostics"):
        # the recording is saved after the hang-up: it still reaches the application
        assert s.receive(RecordingFinished("/rec/record-test-abc123.wav", 3.9), 4.2) == []
    line = next(r.getMessage() for r in caplog.records if "saved=" in r.getMessage())
    assert "record test call=call-1 saved=True seconds=3.90" in line
    assert "path=/rec/record-test-abc123.wav digits=1#5" in line
    assert [d.source for d in app.digits] == [DigitSource.RFC4733, DigitSource.INBAND,
                                              DigitSource.INFO]


class Menu(ApplicationBase):
    """A two-digit menu: collect, then transfer or hang up; a timer for nobody pressing."""

    def __init__(self) -> None:
        self.got: list[DigitsCollected] = []
        self.deadline: float | None = None
        self.failed: TransferFailed | None = None

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        if isinstance(event, Answered):
            self.deadline = now + 30.0
            return [CollectDigits(2, first_timeout=5.0, inter_digit_timeout=2.0)]
        if isinstance(event, TransferFailed):
            self.failed = event
            return [CollectDigits(2, first_timeout=5.0, inter_digit_timeout=2.0)]
        if isinstance(event, DigitsCollected):
            self.got.append(event)
            if event.digits == "12":
                return [Transfer("501410")]
            return [CollectDigits(2, first_timeout=5.0, inter_digit_timeout=2.0)]
        return []

    def next_deadline(self) -> float | None:
        return self.deadline

    def handle_timer(self, now: float) -> list[Command]:
        self.deadline = None
        return [HangUp("nobody chose")]


def test_collect_digits_times_out_then_completes_on_max_digits() -> None:
    app = Menu()
    s = ApplicationSession(app)
    s.start(0.0)
    assert s.receive(Answered(), 0.0) == []  # CollectDigits is the session's own business
    assert s.next_deadline() == 5.0
    assert s.handle_timer(5.0) == []
    assert app.got == [DigitsCollected("", CollectEnd.TIMEOUT)]
    assert s.next_deadline() == 10.0  # collecting again
    s.receive(Digit("1", DigitSource.RFC4733), 6.0)
    assert s.next_deadline() == 8.0  # inter-digit
    assert s.receive(Digit("2", DigitSource.RFC4733), 7.0) == [Transfer("501410")]
    assert app.got[-1] == DigitsCollected("12", CollectEnd.MAX_DIGITS)
    # transferring: no timer, no digits until the transfer's outcome
    assert not s.ended and s.state is SessionState.TRANSFERRING and s.next_deadline() is None
    assert s.receive(Digit("3", DigitSource.RFC4733), 7.5) == []
    s.transfer_connected()
    assert s.ended
    assert s.receive(Digit("3", DigitSource.RFC4733), 8.0) == []  # let go of the call


def test_terminator_ends_collection_without_being_collected() -> None:
    app = Menu()
    s = ApplicationSession(app)
    s.receive(Answered(), 0.0)
    s.receive(Digit("7", DigitSource.INBAND), 1.0)
    s.receive(Digit("#", DigitSource.INBAND), 1.5)
    assert app.got == [DigitsCollected("7", CollectEnd.TERMINATOR)]


def test_the_application_timer_fires_through_the_session() -> None:
    app = Menu()
    s = ApplicationSession(app)
    s.receive(Answered(), 0.0)
    for t in (5.0, 10.0, 15.0, 20.0, 25.0):  # nobody presses anything
        s.handle_timer(t)
    assert s.next_deadline() == 30.0
    assert s.handle_timer(30.0) == [HangUp("nobody chose")]
    assert s.ended


def test_timer_event_is_part_of_the_contract() -> None:
    assert ApplicationBase().receive(Timer(), 0.0) == []


def test_a_failed_transfer_gives_the_caller_back_to_the_application() -> None:
    app = Menu()
    s = ApplicationSession(app)
    s.start(0.0)
    s.receive(Answered(), 0.0)
    s.receive(Digit("1", DigitSource.RFC4733), 1.0)
    assert s.receive(Digit("2", DigitSource.RFC4733), 1.5) == [Transfer("501410")]
    assert s.handle_timer(40.0) == []  # the app's own timer waits for the outcome
    assert s.receive(TransferFailed("501410", 486, "Busy Here"), 2.0) == []
    assert app.failed == TransferFailed("501410", 486, "Busy Here")
    assert s.state is SessionState.ACTIVE and s.next_deadline() == 7.0  # collecting again
    # a stale outcome after the caller is back with the application changes nothing
    assert s.receive(TransferFailed("501410", 480), 2.5) == []
