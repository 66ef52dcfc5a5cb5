"""Leaving a message, driven by scripted events (no sockets, no clock)."""

from __future__ import annotations

import pytest

from ivr.application import (
    Answered,
    CollectDigits,
    CollectEnd,
    Digit,
    DigitsCollected,
    DigitSource,
    FarEndHungUp,
    HangUp,
    Play,
    Prompt,
    PromptFinished,
    Record,
    Recording,
    RecordingFinished,
    Tone,
)
from ivr.session import ApplicationSession
from tests.voicemail.fakes import INFO, Actions, snapshot
from voicemail.deposit import TRANSITIONS, DepositApp, DepositState, greeting
from voicemail.store import Greeting

KEY = DigitSource.RFC4733


def start(**kw: object) -> tuple[ApplicationSession, DepositApp, Actions]:
    actions = Actions()
    app = DepositApp(INFO, kw.pop("snap", snapshot()), actions, **kw)  # type: ignore[arg-type]
    session = ApplicationSession(app)
    session.start(0.0)
    return session, app, actions


def to_recording(session: ApplicationSession) -> Record:
    out = session.receive(Answered(), 0.0)
    assert out == [Play((Prompt("vm-greeting-standard"),), interruptible=True)]
    out = session.receive(PromptFinished(), 1.0)
    assert out == [Play((Tone(1000.0, 0.3),), interruptible=False)]
    out = session.receive(PromptFinished(), 1.3)
    assert len(out) == 1 and isinstance(out[0], Record) and out[0].stop_on_hash
    return out[0]


def test_caller_hangs_up_after_speaking_the_message_is_saved() -> None:
    session, app, actions = start()
    rec = to_recording(session)
    assert rec.name == "vm-tok123-1.wav"
    session.receive(FarEndHungUp(), 5.0)
    session.receive(RecordingFinished("/rec/vm-tok123-1.wav", 3.2, True), 5.1)
    assert actions.calls == [("save", ("501410", "/rec/vm-tok123-1.wav", "501411", None, 3.2,
                                       False))]
    assert app.state is DepositState.DONE


@pytest.mark.parametrize(("seconds", "saved"), [(0.6, True), (0.0, False)])
def test_less_than_a_second_of_sound_is_not_kept(seconds: float, saved: bool) -> None:
    session, _, actions = start()
    to_recording(session)
    session.receive(FarEndHungUp(), 2.0)
    session.receive(RecordingFinished("/rec/x.wav", seconds, saved), 2.1)
    assert "save" not in actions.kinds()
    assert actions.kinds() == (["discard"] if saved else [])


def test_hash_then_review_listen_urgent_and_send() -> None:
    session, app, actions = start(caller_name="Bruno Petit")
    to_recording(session)
    assert session.receive(Digit("#", KEY), 4.0) == []
    out = session.receive(RecordingFinished("/rec/a.wav", 2.5, True), 4.1)
    assert out[0] == Play((Prompt("vm-after-hash"),), interruptible=True)
    assert app.state is DepositState.REVIEW
    out = session.receive(Digit("1", KEY), 5.0)  # listen
    assert out == [Play((Recording("/rec/a.wav"),), interruptible=True)]
    out = session.receive(PromptFinished(), 8.0)
    assert out[0] == Play((Prompt("vm-after-hash"),), interruptible=True)
    out = session.receive(Digit("3", KEY), 9.0)  # urgent
    assert out[0] == Play((Prompt("vm-marked-urgent"),), interruptible=True)
    assert app.urgent
    out = session.receive(Digit("#", KEY), 10.0)  # send
    assert out == [Play((Prompt("vm-saved"), Prompt("goodbye")), interruptible=False)]
    assert actions.calls == [("save", ("501410", "/rec/a.wav", "501411", "Bruno Petit", 2.5,
                                       True))]
    assert session.receive(PromptFinished(), 12.0) == [HangUp("message left")]


def test_rerecord_discards_the_first_take() -> None:
    session, _, actions = start()
    to_recording(session)
    session.receive(Digit("#", KEY), 4.0)
    session.receive(RecordingFinished("/rec/a.wav", 2.5, True), 4.1)
    out = session.receive(Digit("2", KEY), 5.0)
    assert out == [Play((Tone(1000.0, 0.3),), interruptible=False)]
    assert actions.calls == [("discard", "/rec/a.wav")]
    out = session.receive(PromptFinished(), 5.3)
    assert isinstance(out[0], Record) and out[0].name == "vm-tok123-2.wav"
    session.receive(FarEndHungUp(), 9.0)
    session.receive(RecordingFinished("/rec/b.wav", 3.0, True), 9.1)
    assert actions.kinds() == ["discard", "save"]
    assert actions.calls[1][1][1] == "/rec/b.wav"


def test_hang_up_during_the_review_still_sends_the_message() -> None:
    session, _, actions = start()
    to_recording(session)
    session.receive(Digit("#", KEY), 4.0)
    session.receive(RecordingFinished("/rec/a.wav", 2.5, True), 4.1)
    session.receive(FarEndHungUp(), 5.0)
    assert actions.kinds() == ["save"]


def test_no_choice_in_the_review_sends_the_message() -> None:
    session, _, actions = start()
    to_recording(session)
    session.receive(Digit("#", KEY), 4.0)
    session.receive(RecordingFinished("/rec/a.wav", 2.5, True), 4.1)
    deadline = session.next_deadline()
    assert deadline is not None
    out = session.handle_timer(deadline)
    assert out == [Play((Prompt("vm-saved"), Prompt("goodbye")), interruptible=False)]
    assert actions.kinds() == ["save"]


def test_max_length_saves_and_says_goodbye() -> None:
    session, _, actions = start(max_seconds=30.0)
    rec = to_recording(session)
    assert rec.max_seconds == 30.0
    out = session.receive(RecordingFinished("/rec/a.wav", 30.0, True), 32.0)
    assert out == [Play((Prompt("vm-saved"), Prompt("goodbye")), interruptible=False)]
    assert actions.kinds() == ["save"]


def test_star_in_the_greeting_opens_the_mailbox_menu() -> None:
    session, app, actions = start()
    session.receive(Answered(), 0.0)
    session.receive(PromptFinished(interrupted=True), 0.5)  # the digit cut the greeting
    out = session.receive(Digit("*", KEY), 0.5)
    assert app.state is DepositState.MAILBOX
    assert out[0] == Play((Prompt("vm-enter-pin"),))
    out = session.receive(Digit("1", KEY), 1.0) + session.receive(Digit("4", KEY), 1.1) \
        + session.receive(Digit("1", KEY), 1.2) + session.receive(Digit("0", KEY), 1.3) \
        + session.receive(Digit("#", KEY), 1.4)
    assert out and isinstance(out[0], Play) and Prompt("vm-no-messages") in out[0].items
    assert actions.calls == []


def test_greetings() -> None:
    assert greeting(snapshot(), busy=True) == (Prompt("vm-busy"),)
    named = snapshot(greetings={Greeting.NAME: "/g/name.wav"})
    assert greeting(named, busy=False) == (Recording("/g/name.wav"),
                                           Prompt("vm-name-unavailable"),
                                           Prompt("vm-leave-message"))
    own = snapshot(greetings={Greeting.NAME: "/g/name.wav", Greeting.BUSY: "/g/busy.wav"})
    assert greeting(own, busy=True) == (Recording("/g/busy.wav"),)
    assert greeting(own, busy=False)[0] == Recording("/g/name.wav")


def test_busy_deposit_plays_the_busy_phrase() -> None:
    session, _, _ = start(busy=True)
    assert session.receive(Answered(), 0.0) == [Play((Prompt("vm-busy"),), interruptible=True)]


def test_every_state_has_a_way_out() -> None:
    for state in DepositState:
        if state is not DepositState.DONE:
            assert any(s is state for s, _ in TRANSITIONS), state


def test_collect_used_for_the_review() -> None:
    session, app, _ = start()
    to_recording(session)
    session.receive(Digit("#", KEY), 4.0)
    out = app.receive(RecordingFinished("/rec/a.wav", 2.5, True), 4.1)
    assert isinstance(out[1], CollectDigits) and out[1].max_digits == 1
    assert app.receive(DigitsCollected("", CollectEnd.TIMEOUT), 20.0)[0] == Play(
        (Prompt("vm-saved"), Prompt("goodbye")), interruptible=False)
