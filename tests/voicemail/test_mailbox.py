"""The mailbox menu, driven by scripted events: PIN, messages, settings."""

from __future__ import annotations

from ivr.application import (
    Answered,
    Digit,
    DigitSource,
    HangUp,
    Play,
    Prompt,
    PromptFinished,
    Record,
    Recording,
    RecordingFinished,
    Transfer,
    TransferFailed,
)
from ivr.session import ApplicationSession
from tests.voicemail.fakes import INFO, Actions, message, snapshot
from voicemail.mailbox import TRANSITIONS, MailboxMenu, MenuState, message_header
from voicemail.speech import say_number, say_when
from voicemail.store import Greeting, MailboxSnapshot

KEY = DigitSource.RFC4733


class Run:
    def __init__(self, snap: MailboxSnapshot) -> None:
        self.actions = Actions()
        self.app = MailboxMenu(INFO, snap, self.actions)
        self.session = ApplicationSession(self.app)
        self.session.start(0.0)
        self.now = 0.0
        self.first = self.session.receive(Answered(), 0.0)

    def keys(self, digits: str) -> list[object]:
        out: list[object] = []
        for d in digits:
            self.now += 0.3
            out.extend(self.session.receive(Digit(d, KEY), self.now))
        return out

    def prompts(self, out: list[object]) -> list[object]:
        return [i for c in out if isinstance(c, Play) for i in c.items]


def test_pin_then_counts_then_listen_then_delete() -> None:
    run = Run(snapshot(message(1), message(2, heard=True)))
    assert run.first[0] == Play((Prompt("vm-enter-pin"),))
    out = run.prompts(run.keys("1410#"))
    assert out[:3] == [Prompt("vm-you-have"), *say_number(1), Prompt("vm-new-messages")]
    assert Prompt("vm-old-messages") in out and out[-1] == Prompt("vm-main-menu")
    out = run.prompts(run.keys("1"))  # listen: the new message first
    assert Recording("/data/voicemail/501410/m1.wav") in out
    assert out[-1] == Prompt("vm-message-menu")
    out = run.prompts(run.keys("7"))  # delete: said, then the next (old) message plays
    assert out[0] == Prompt("vm-deleted")
    assert Recording("/data/voicemail/501410/m2.wav") in out
    assert run.actions.calls == [("heard", ("501410", "m1")), ("delete", ("501410", "m1"))]
    out = run.prompts(run.keys("9"))  # save the old one: nothing more
    assert out == [Prompt("vm-saved-message"), Prompt("vm-no-more-messages"),
                   Prompt("vm-main-menu")]
    assert run.actions.kinds() == ["heard", "delete"]  # the old one was heard already
    assert run.app.state is MenuState.MAIN


def test_three_wrong_pins_end_the_call_and_count_in_the_guard() -> None:
    run = Run(snapshot(message(1)))
    run.keys("0000#")
    run.keys("1234#")
    out = run.keys("9999#")
    assert out == [Play((Prompt("vm-wrong-pin"), Prompt("goodbye")), interruptible=False)]
    assert run.actions.calls == [("pin_failed", "501410")] * 3
    assert run.session.receive(PromptFinished(), 9.0) == [HangUp("mailbox menu ended")]
    assert run.session.ended


def test_a_locked_mailbox_says_goodbye_without_asking() -> None:
    run = Run(snapshot(locked=True))
    assert run.first == [Play((Prompt("vm-locked"), Prompt("goodbye")), interruptible=False)]


def test_replay_and_call_back() -> None:
    run = Run(snapshot(message(1, caller="+33612345678")))
    run.keys("1410#")
    run.keys("1")
    out = run.prompts(run.keys("1"))  # replay
    assert Recording("/data/voicemail/501410/m1.wav") in out
    out = run.keys("5")
    assert out == [Transfer("+33612345678")]
    out = run.session.receive(TransferFailed("+33612345678", 486), 20.0)
    assert run.prompts(out)[0] == Prompt("vm-call-back-failed")


def test_header_says_date_time_and_caller() -> None:
    m = message(3, urgent=True)
    items = message_header(m)
    assert items[0] == Prompt("vm-urgent")
    assert tuple(items[2:2 + len(say_when(m.received_local))]) == say_when(m.received_local)
    assert items[-6:] == (Prompt("digit-5"), Prompt("digit-0"), Prompt("digit-1"),
                          Prompt("digit-4"), Prompt("digit-1"), Prompt("digit-1"))


def test_settings_record_greeting_and_change_pin() -> None:
    run = Run(snapshot())
    run.keys("1410#")
    out = run.keys("0")
    assert run.prompts(out)[-1] == Prompt("vm-settings-menu")
    run.keys("2")  # busy greeting
    out = run.session.receive(PromptFinished(), 5.0)
    assert isinstance(out[0], Record)
    out = run.session.receive(RecordingFinished("/rec/g.wav", 2.0, True), 8.0)
    assert run.actions.calls == [("greeting", ("501410", Greeting.BUSY, "/rec/g.wav"))]
    assert run.prompts(out)[0] == Prompt("vm-greeting-saved")
    run.keys("4")
    out = run.keys("2468#")
    assert run.prompts(out) == [Prompt("vm-confirm-pin")]
    out = run.keys("2460#")  # mismatch: asked again
    assert run.prompts(out)[0] == Prompt("vm-pin-mismatch")
    run.keys("2468#")
    out = run.keys("2468#")
    assert run.prompts(out)[0] == Prompt("vm-pin-changed")
    assert run.actions.calls[-1] == ("pin", ("501410", "2468"))
    out = run.keys("*")
    assert run.prompts(out) == [Prompt("vm-main-menu")]
    out = run.keys("*")
    assert run.app.state is MenuState.GOODBYE


def test_silence_three_times_says_goodbye() -> None:
    run = Run(snapshot())
    for _ in range(3):
        deadline = run.session.next_deadline()
        assert deadline is not None
        out = run.session.handle_timer(deadline)
    assert out == [Play((Prompt("goodbye"),), interruptible=False)]
    assert run.actions.calls == []  # silence is no wrong PIN


def test_every_state_is_reachable_and_can_hang_up() -> None:
    targets = {t for t in TRANSITIONS.values()}
    for state in MenuState:
        assert state is MenuState.PIN or state in targets, state


def test_numbers() -> None:
    assert say_number(0) == (Prompt("digit-0"),)
    assert say_number(17) == (Prompt("number-10"), Prompt("digit-7"))
    assert say_number(21) == (Prompt("number-20"), Prompt("and"), Prompt("digit-1"))
    assert say_number(45) == (Prompt("number-40"), Prompt("digit-5"))
