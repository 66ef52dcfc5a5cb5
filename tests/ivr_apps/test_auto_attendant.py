"""The auto-attendant driven by scripted events and a fake clock, through the same
`ApplicationSession` the runner uses (no sockets, no media)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from dialplan import AutoAttendant, load_plan
from ivr.application import (
    Answered,
    CallInfo,
    Command,
    Digit,
    DigitSource,
    FarEndHungUp,
    HangUp,
    Play,
    Prompt,
    PromptFinished,
    StopPlaying,
    Transfer,
    TransferFailed,
)
from ivr.attendant_menu import AttendantConfig, KeyAction, KeyKind, Menu, config_for
from ivr.auto_attendant import (
    PROMPT_GUARD,
    AttendantInput,
    AttendantState,
    AttendantTransitionError,
    AutoAttendantApp,
)
from ivr.session import ApplicationSession, SessionState

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"
INFO = CallInfo("aa-call-1", "+33612345678", "sip:+33562070400@127.0.0.1", "tok1")


@pytest.fixture(scope="module")
def reception() -> AutoAttendant:
    plan = load_plan(str(EXAMPLE))
    return plan.customers[0].sites[0].auto_attendants[0]


def menu_play(*names: str) -> Play:
    return Play(tuple(Prompt(n, customer="acme") for n in names), interruptible=True)


def notice(*names: str) -> Play:
    return Play(tuple(Prompt(n, customer="acme") for n in names), interruptible=False)


def key(d: str, source: DigitSource = DigitSource.RFC4733) -> Digit:
    return Digit(d, source, 100)


class Call:
    """One caller in the attendant, with the clock in our hands."""

    def __init__(self, app: AutoAttendantApp) -> None:
        self.app = app
        self.session = ApplicationSession(app)
        self.now = 0.0
        assert self.session.start(self.now) == []

    def answer(self) -> list[Command]:
        return self.session.receive(Answered(), self.now)

    def send(self, *events: object, dt: float = 0.1) -> list[Command]:
        out: list[Command] = []
        for ev in events:
            self.now += dt
            out.extend(self.session.receive(ev, self.now))  # type: ignore[arg-type]
        return out

    def press(self, digits: str, source: DigitSource = DigitSource.RFC4733) -> list[Command]:
        return self.send(*(key(d, source) for d in digits))

    def wait(self, seconds: float) -> list[Command]:
        """Let `seconds` pass, firing the timer whenever its deadline comes."""
        end = self.now + seconds
        out: list[Command] = []
        while (d := self.session.next_deadline()) is not None and d <= end:
            self.now = d
            out.extend(self.session.handle_timer(self.now))
        self.now = end
        return out

    def finish_prompt(self, interrupted: bool = False) -> list[Command]:
        return self.send(PromptFinished(interrupted))


@pytest.fixture
def call(reception: AutoAttendant) -> Call:
    return Call(AutoAttendantApp.for_entity(reception, INFO))


def answered(call: Call) -> None:
    assert call.answer() == [menu_play("aa-welcome", "aa-menu")]
    assert call.finish_prompt() == []


def test_answer_plays_greeting_then_menu_and_waits_for_a_key(call: Call) -> None:
    assert call.answer() == [menu_play("aa-welcome", "aa-menu")]
    assert call.app.state is AttendantState.MENU
    # while the prompt plays, only the lost-prompt guard is armed: no "no entry" yet
    assert call.session.next_deadline() == pytest.approx(call.now + PROMPT_GUARD)
    assert call.finish_prompt() == []
    assert call.session.next_deadline() == pytest.approx(call.now + 5.0)  # digit_timeout


def test_key_0_announces_then_transfers_to_501410(call: Call,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ivr.auto_attendant")
    answered(call)
    assert call.press("0") == [notice("aa-transfer")]
    assert call.press("1") == []  # the announcement is not interruptible: ignored
    assert call.finish_prompt() == [Transfer("501410")]
    assert call.app.state is AttendantState.TRANSFERRING
    assert call.session.state is SessionState.TRANSFERRING
    assert call.session.next_deadline() is None
    lines = [r.getMessage() for r in caplog.records]
    assert any("attendant call=aa-call-1" in m and "key=0" in m and "action=transfer" in m
               and "target=501410" in m for m in lines), lines


def test_a_key_typed_during_the_greeting_is_taken(call: Call) -> None:
    assert call.answer() == [menu_play("aa-welcome", "aa-menu")]
    # a phone's RFC 4733 digit stops the prompt in the media engine; the attendant acts
    assert call.press("1") == [notice("aa-transfer")]
    assert call.finish_prompt(interrupted=True) == [Transfer("501401")]


def test_extension_typed_during_the_greeting_by_sip_info_transfers_to_its_full_number(
        call: Call) -> None:
    call.answer()
    # SIP INFO digits do not stop the player by themselves: the attendant stops it
    assert call.press("4", DigitSource.INFO) == [StopPlaying()]
    assert call.app.state is AttendantState.NUMBER
    assert call.press("1", DigitSource.INFO) == []
    # three digits not starting with the prefix: a complete extension, no wait
    assert call.press("1", DigitSource.INFO) == [notice("aa-transfer")]
    assert call.finish_prompt() == [Transfer("501411")]


def test_full_internal_number_is_complete_at_its_length(call: Call) -> None:
    answered(call)
    assert call.press("50141") == []  # 501 could still be an extension: wait
    assert call.press("1") == [notice("aa-transfer")]
    assert call.finish_prompt() == [Transfer("501411")]


def test_a_number_ends_with_hash(call: Call) -> None:
    answered(call)
    assert call.press("41") == []
    assert call.press("#") == [menu_play("invalid-entry", "aa-menu")]  # 2 digits: no number
    assert call.app.state is AttendantState.MENU and call.app.attempts == 2


def test_a_number_ends_with_the_inter_digit_timeout(reception: AutoAttendant) -> None:
    # extensions starting with the prefix digit: "501" may be an extension or the start of
    # a full number, so only # or the timeout ends it
    config = dataclasses.replace(config_for(reception), first_digits=frozenset("45"))
    c = Call(AutoAttendantApp(INFO, config))
    answered(c)
    assert c.press("501") == []
    assert c.wait(4.9) == []
    assert c.wait(0.2) == [notice("aa-transfer")]
    assert c.finish_prompt() == [Transfer("501501")]


def test_an_incomplete_number_after_the_timeout_is_an_invalid_entry(call: Call) -> None:
    answered(call)
    call.press("5014")
    assert call.wait(5.1) == [menu_play("invalid-entry", "aa-menu")]


def test_invalid_key_three_times_goes_to_the_timeout_target(call: Call) -> None:
    answered(call)
    # 9 is no key and no internal number starts with it (site 01: 4xx, prefix 5)
    assert call.press("9") == [menu_play("invalid-entry", "aa-menu")]
    assert call.press("9") == [menu_play("invalid-entry", "aa-menu")]
    assert call.press("9") == [notice("invalid-entry", "aa-transfer")]
    assert call.finish_prompt() == [Transfer("501410")]


def test_no_entry_three_times_goes_to_the_timeout_target(call: Call) -> None:
    answered(call)
    assert call.wait(4.9) == []
    assert call.wait(0.2) == [menu_play("no-entry", "aa-menu")]
    assert call.finish_prompt() == []
    assert call.wait(5.1) == [menu_play("no-entry", "aa-menu")]
    assert call.finish_prompt() == []
    assert call.wait(5.1) == [notice("no-entry", "aa-transfer")]
    assert call.finish_prompt() == [Transfer("501410")]


def test_no_entry_is_counted_only_after_the_prompt_ends(call: Call) -> None:
    call.answer()
    assert call.wait(60) == []  # a long greeting still playing
    assert call.finish_prompt() == []
    assert call.wait(5.1) == [menu_play("no-entry", "aa-menu")]


def test_without_timeout_target_the_caller_hears_goodbye(reception: AutoAttendant) -> None:
    config = dataclasses.replace(config_for(reception), timeout_target=None, retries=1)
    c = Call(AutoAttendantApp(INFO, config))
    answered(c)
    assert c.press("9") == [notice("invalid-entry", "goodbye")]
    assert c.finish_prompt() == [HangUp("auto-attendant: no choice")]
    assert c.session.ended and c.app.state is AttendantState.ENDED


def test_nested_menu_back_and_repeat(call: Call) -> None:
    answered(call)
    assert call.press("3") == [menu_play("aa-menu")]  # the submenu: no greeting of its own
    assert call.app.menu.name == "top/3"
    assert call.press("#") == [menu_play("aa-menu")]  # repeat this menu
    assert call.press("*") == [menu_play("aa-menu")]  # back: the top menu, no greeting
    assert call.app.menu.name == "top"
    assert call.press("3") == [menu_play("aa-menu")]
    assert call.press("2") == [notice("aa-transfer")]
    assert call.finish_prompt() == [Transfer("voicemail:501412")]


def test_a_submenu_counts_its_own_attempts(call: Call) -> None:
    answered(call)
    call.press("9")  # attempt 2 at the top
    call.press("3")
    assert call.app.attempts == 1
    # in the submenu, 0 is no key (and no internal number starts with 0)
    assert call.press("0") == [menu_play("invalid-entry", "aa-menu")]
    assert call.press("0") == [menu_play("invalid-entry", "aa-menu")]
    assert call.press("0") == [notice("invalid-entry", "aa-transfer")]


def test_deep_menus_with_their_own_prompts() -> None:
    leaf = Menu("top/1/2", "sav", "sav-menu", {"5": KeyAction(KeyKind.TRANSFER, "+33612345678")})
    mid = Menu("top/1", None, "mid-menu", {"2": KeyAction(KeyKind.SUBMENU, submenu=leaf),
                                           "*": KeyAction(KeyKind.BACK)})
    top = Menu("top", "hello", "top-menu", {"1": KeyAction(KeyKind.SUBMENU, submenu=mid)})
    c = Call(AutoAttendantApp(INFO, AttendantConfig("x", "acme", top, None),
                              announce_transfer=False))
    assert c.answer() == [menu_play("hello", "top-menu")]
    assert c.press("1") == [menu_play("mid-menu")]
    assert c.press("2") == [menu_play("sav", "sav-menu")]
    assert c.press("5") == [StopPlaying(), Transfer("+33612345678")]


def test_transfer_failed_plays_unavailable_then_the_menu(call: Call) -> None:
    answered(call)
    call.press("0")
    assert call.finish_prompt() == [Transfer("501410")]
    assert call.press("1") == []  # the session gives nothing but the outcome meanwhile
    got = call.send(TransferFailed("501410", 486, "Busy Here"))
    assert got == [menu_play("unavailable", "aa-menu")]
    assert call.app.state is AttendantState.MENU
    assert call.session.state is SessionState.ACTIVE
    assert call.press("1") == [notice("aa-transfer")]  # the caller chooses again
    assert call.finish_prompt() == [Transfer("501401")]


def test_dialled_extension_that_fails_comes_back_to_the_menu(call: Call) -> None:
    answered(call)
    call.press("499")  # no such extension: the switch says so
    assert call.finish_prompt() == [Transfer("501499")]
    assert call.send(TransferFailed("501499", 404)) == [menu_play("unavailable", "aa-menu")]


def test_timeout_target_that_fails_says_goodbye(call: Call) -> None:
    answered(call)
    call.press("999")
    assert call.finish_prompt() == [Transfer("501410")]
    assert call.send(TransferFailed("501410", 480)) == [notice("unavailable", "goodbye")]
    assert call.finish_prompt() == [HangUp("auto-attendant: timeout target unavailable")]


def test_far_end_hang_up_stops_everything(call: Call) -> None:
    answered(call)
    call.press("4")
    assert call.send(FarEndHungUp()) == []
    assert call.app.state is AttendantState.ENDED
    assert call.session.next_deadline() is None and call.app.next_deadline() is None
    assert call.press("11") == [] and call.wait(60) == []
    assert call.app.receive(key("0"), call.now) == []  # even fed directly


def test_far_end_hang_up_while_transferring(call: Call) -> None:
    answered(call)
    call.press("0")
    call.finish_prompt()
    assert call.send(FarEndHungUp()) == []
    assert call.app.state is AttendantState.ENDED


def test_without_dial_by_extension_a_digit_is_only_a_key(reception: AutoAttendant) -> None:
    config = dataclasses.replace(config_for(reception), dial_by_extension=False)
    c = Call(AutoAttendantApp(INFO, config))
    answered(c)
    assert c.press("4") == [menu_play("invalid-entry", "aa-menu")]


def test_a_lost_prompt_end_does_not_leave_the_caller_waiting_forever(call: Call) -> None:
    call.answer()
    assert call.wait(PROMPT_GUARD + 0.1) == []  # the guard: from now on, wait for a key
    assert call.wait(5.0) == [menu_play("no-entry", "aa-menu")]
    call.press("0")
    assert call.wait(PROMPT_GUARD + 0.1) == [Transfer("501410")]  # announcement end lost


def test_customer_prompts_and_settings_come_from_the_plan(reception: AutoAttendant) -> None:
    aa = reception
    custom = AutoAttendant(aa.id, aa.name, aa.public_number, aa.extension, aa.full_number,
                           aa.menu, aa.timeout_target, greeting="accueil", menu_prompt="choix",
                           retries=1, digit_timeout=2.0)
    object.__setattr__(custom, "site", aa.site)
    object.__setattr__(custom, "customer", aa.customer)
    c = Call(AutoAttendantApp.for_entity(custom, INFO))
    assert c.answer() == [menu_play("accueil", "choix")]
    c.finish_prompt()
    assert c.wait(2.1) == [notice("no-entry", "aa-transfer")]  # one attempt only


def test_every_transition_is_in_the_table(call: Call) -> None:
    with pytest.raises(AttendantTransitionError):
        call.app._go(AttendantInput.TRANSFER)  # WAITING: nothing to transfer yet
