"""The mailbox menu (issue 13), pure: PIN, messages, settings.

Reached by `*86` from the owner's phone, or by `*` during the greeting when calling the
owner's number. The caller hears:

1. "enter your PIN" (digits, then `#`): three wrong PINs end the call, and each wrong one
   is counted in the switch's failure guard (`PinFailures.pin_failed`); a mailbox the guard
   blocks for this caller says goodbye at once;
2. how many new and old messages, then the main menu: 1 listen, 0 settings, `*` quit;
3. new messages, then old ones, each with its date and time and the caller's number, then
   its menu: 1 replay, 5 call the caller back, 7 delete, 9 save, `#` next;
4. settings: 1 record the unavailable greeting, 2 the busy greeting, 3 the name, 4 change
   the PIN (twice), `*` back.

Every choice goes through `CollectDigits` (raw `Digit` events are ignored), so a key
pressed during a prompt is the choice and is never taken twice.
"""

from __future__ import annotations

import logging
from enum import Enum, auto

from ivr.application import (
    Answered,
    AppEvent,
    ApplicationBase,
    CallInfo,
    CollectDigits,
    Command,
    DigitsCollected,
    FarEndHungUp,
    HangUp,
    Play,
    Prompt,
    PromptFinished,
    PromptItem,
    Record,
    Recording,
    RecordingFinished,
    Tone,
    Transfer,
    TransferFailed,
)

from .pin import MAX_LENGTH, valid_pin, verify_pin
from .speech import say_digits, say_number, say_when
from .store import Greeting, MailboxActions, MailboxSnapshot, StoredMessage

log = logging.getLogger("voicemail.mailbox")

MAX_PIN_ATTEMPTS = 3
MAX_SILENCES = 3  # menus repeated without an answer before goodbye
MENU_TIMEOUT = 10.0
PIN_TIMEOUT = 10.0
GREETING_MAX_SECONDS = 60.0
BEEP = Tone(1000.0, 0.3)


class MenuState(Enum):
    PIN = auto()
    MAIN = auto()
    MESSAGE = auto()  # a message plays, then its menu; the choice is collected meanwhile
    SETTINGS = auto()
    RECORD_BEEP = auto()  # "record after the beep" then the beep
    RECORDING = auto()
    NEW_PIN = auto()
    CONFIRM_PIN = auto()
    TRANSFERRING = auto()  # calling the caller back
    GOODBYE = auto()  # the last prompt plays, then hang up
    DONE = auto()


class MenuInput(Enum):
    ANSWERED = auto()
    PIN_OK = auto()
    PIN_WRONG = auto()
    PIN_EXHAUSTED = auto()  # the third wrong PIN, or the guard blocks this caller
    LISTEN = auto()
    SETTINGS = auto()
    QUIT = auto()
    REPEAT = auto()  # an invalid or missing choice: the same menu again
    SILENT = auto()  # too many menus without an answer
    NEXT = auto()  # another message (replay, delete, save, next)
    NO_MORE = auto()  # the last message is behind: back to the main menu
    CALL_BACK = auto()
    CALL_BACK_FAILED = auto()
    RECORD = auto()
    BEEP_DONE = auto()
    RECORDED = auto()
    CHANGE_PIN = auto()
    PIN_ENTERED = auto()
    PIN_CONFIRMED = auto()
    PIN_MISMATCH = auto()
    BACK = auto()
    PROMPT_DONE = auto()
    HUNG_UP = auto()


M, N = MenuState, MenuInput
TRANSITIONS: dict[tuple[MenuState, MenuInput], MenuState] = {
    (M.PIN, N.ANSWERED): M.PIN,
    (M.PIN, N.PIN_OK): M.MAIN,
    (M.PIN, N.PIN_WRONG): M.PIN,
    (M.PIN, N.REPEAT): M.PIN,
    (M.PIN, N.PIN_EXHAUSTED): M.GOODBYE,
    (M.PIN, N.SILENT): M.GOODBYE,
    (M.MAIN, N.LISTEN): M.MESSAGE,
    (M.MAIN, N.SETTINGS): M.SETTINGS,
    (M.MAIN, N.QUIT): M.GOODBYE,
    (M.MAIN, N.REPEAT): M.MAIN,
    (M.MAIN, N.SILENT): M.GOODBYE,
    (M.MESSAGE, N.NEXT): M.MESSAGE,
    (M.MESSAGE, N.REPEAT): M.MESSAGE,
    (M.MESSAGE, N.NO_MORE): M.MAIN,
    (M.MESSAGE, N.CALL_BACK): M.TRANSFERRING,
    (M.MESSAGE, N.SILENT): M.GOODBYE,
    (M.TRANSFERRING, N.CALL_BACK_FAILED): M.MESSAGE,
    (M.SETTINGS, N.RECORD): M.RECORD_BEEP,
    (M.SETTINGS, N.CHANGE_PIN): M.NEW_PIN,
    (M.SETTINGS, N.BACK): M.MAIN,
    (M.SETTINGS, N.REPEAT): M.SETTINGS,
    (M.SETTINGS, N.SILENT): M.GOODBYE,
    (M.RECORD_BEEP, N.BEEP_DONE): M.RECORDING,
    (M.RECORDING, N.RECORDED): M.SETTINGS,
    (M.NEW_PIN, N.PIN_ENTERED): M.CONFIRM_PIN,
    (M.NEW_PIN, N.REPEAT): M.NEW_PIN,
    (M.NEW_PIN, N.BACK): M.SETTINGS,
    (M.CONFIRM_PIN, N.PIN_CONFIRMED): M.SETTINGS,
    (M.CONFIRM_PIN, N.PIN_MISMATCH): M.NEW_PIN,
    (M.GOODBYE, N.PROMPT_DONE): M.DONE,
    **{(s, N.HUNG_UP): M.DONE for s in MenuState if s is not M.DONE},
}


class MenuTransitionError(RuntimeError):
    """An input the menu's state does not accept (a bug, never the caller's fault)."""


def _collect(max_digits: int = 1, timeout: float = MENU_TIMEOUT) -> CollectDigits:
    return CollectDigits(max_digits, first_timeout=timeout, inter_digit_timeout=5.0,
                         terminator="#")


def message_header(message: StoredMessage) -> tuple[PromptItem, ...]:
    """"Urgent message received on 3 December at 14 hours 5, from 5 0 1 4 1 1"."""
    items: list[PromptItem] = [Prompt("vm-urgent")] if message.urgent else []
    items.append(Prompt("vm-received"))
    items.extend(say_when(message.received_local))
    digits = say_digits(message.caller)
    if digits:
        items.append(Prompt("vm-from"))
        items.extend(digits)
    else:
        items.append(Prompt("vm-unknown-caller"))
    return tuple(items)


class MailboxMenu(ApplicationBase):
    """The owner (after the PIN) listens to and manages the mailbox `snapshot.owner`."""

    def __init__(self, info: CallInfo, snapshot: MailboxSnapshot,
                 actions: MailboxActions) -> None:
        self.info = info
        self.owner = snapshot.owner
        self.snapshot = snapshot
        self.actions = actions
        self.state = MenuState.PIN
        self.failures = 0
        self.silences = 0
        # new messages first, then old ones, each oldest first
        self.queue: list[StoredMessage] = [*snapshot.new, *snapshot.old]
        self.heard: set[str] = {m.id for m in snapshot.old}
        self.index = 0
        self.recording: Greeting | None = None
        self.new_pin: str | None = None
        self.takes = 0

    # -- the contract --

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        if isinstance(event, FarEndHungUp):
            self._go(N.HUNG_UP)
            return []
        if isinstance(event, Answered):
            if self.snapshot.locked:
                log.info("mailbox %s call=%s: blocked by the failure guard", self.owner,
                         self.info.call_id)
                self._go(N.PIN_EXHAUSTED)
                return self._goodbye(Prompt("vm-locked"))
            self._go(N.ANSWERED)
            return [Play((Prompt("vm-enter-pin"),)), _collect(MAX_LENGTH, PIN_TIMEOUT)]
        if isinstance(event, DigitsCollected):
            return self._choice(event.digits)
        if isinstance(event, PromptFinished):
            return self._prompt_done()
        if isinstance(event, RecordingFinished):
            return self._recorded(event)
        if isinstance(event, TransferFailed) and self.state is M.TRANSFERRING:
            self._go(N.CALL_BACK_FAILED)
            return [Play((Prompt("vm-call-back-failed"), Prompt("vm-message-menu"))),
                    _collect()]
        return []

    # -- state --

    def _go(self, inp: MenuInput) -> None:
        nxt = TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise MenuTransitionError(f"{self.state.name} does not accept {inp.name}")
        log.debug("mailbox %s call=%s: %s --%s--> %s", self.owner, self.info.call_id,
                  self.state.name, inp.name, nxt.name)
        self.state = nxt

    def _goodbye(self, *before: PromptItem) -> list[Command]:
        return [Play((*before, Prompt("goodbye")), interruptible=False)]

    def _prompt_done(self) -> list[Command]:
        if self.state is M.GOODBYE:
            self._go(N.PROMPT_DONE)
            return [HangUp("mailbox menu ended")]
        if self.state is M.RECORD_BEEP:
            self._go(N.BEEP_DONE)
            self.takes += 1
            return [Record(f"vm-greeting-{self.info.token}-{self.takes}.wav",
                           GREETING_MAX_SECONDS, stop_on_hash=True)]
        return []

    def _choice(self, digits: str) -> list[Command]:
        handler = {
            M.PIN: self._pin, M.MAIN: self._main, M.MESSAGE: self._message_key,
            M.SETTINGS: self._settings, M.NEW_PIN: self._new_pin,
            M.CONFIRM_PIN: self._confirm_pin,
        }.get(self.state)
        return handler(digits) if handler is not None else []

    def _silent(self, digits: str, again: list[Command]) -> list[Command] | None:
        """No answer: the same menu again, until MAX_SILENCES."""
        if digits:
            self.silences = 0
            return None
        self.silences += 1
        if self.silences >= MAX_SILENCES:
            self._go(N.SILENT)
            return self._goodbye()
        self._go(N.REPEAT)
        return again

    # -- PIN --

    def _pin(self, digits: str) -> list[Command]:
        again: list[Command] = [Play((Prompt("vm-enter-pin"),)), _collect(MAX_LENGTH, PIN_TIMEOUT)]
        silent = self._silent(digits, again)
        if silent is not None:
            return silent
        if verify_pin(digits, self.snapshot.pin_hash):
            self._go(N.PIN_OK)
            log.info("mailbox %s call=%s: PIN accepted", self.owner, self.info.call_id)
            return self._counts()
        self.failures += 1
        self.actions.pin_failed(self.owner)
        log.info("mailbox %s call=%s: wrong PIN (%d of %d)", self.owner, self.info.call_id,
                 self.failures, MAX_PIN_ATTEMPTS)
        if self.failures >= MAX_PIN_ATTEMPTS:
            self._go(N.PIN_EXHAUSTED)
            return self._goodbye(Prompt("vm-wrong-pin"))
        self._go(N.PIN_WRONG)
        return [Play((Prompt("vm-wrong-pin"), Prompt("vm-enter-pin"))),
                _collect(MAX_LENGTH, PIN_TIMEOUT)]

    # -- main menu --

    def _counts(self) -> list[Command]:
        new = sum(1 for m in self.queue if m.id not in self.heard)
        old = len(self.queue) - new
        items: list[PromptItem] = []
        if not self.queue:
            items.append(Prompt("vm-no-messages"))
        else:
            items.append(Prompt("vm-you-have"))
            items.extend(say_number(new))
            items.append(Prompt("vm-new-messages"))
            items.append(Prompt("and"))
            items.extend(say_number(old))
            items.append(Prompt("vm-old-messages"))
        items.append(Prompt("vm-main-menu"))
        return [Play(tuple(items)), _collect()]

    def _main(self, digits: str) -> list[Command]:
        silent = self._silent(digits, [Play((Prompt("vm-main-menu"),)), _collect()])
        if silent is not None:
            return silent
        if digits == "1" and self.queue:
            self._go(N.LISTEN)
            self.index = 0
            return self._play_message()
        if digits == "0":
            self._go(N.SETTINGS)
            return self._settings_menu()
        if digits == "*":
            self._go(N.QUIT)
            return self._goodbye()
        self._go(N.REPEAT)
        if digits == "1":
            return [Play((Prompt("vm-no-messages"), Prompt("vm-main-menu"))), _collect()]
        return [Play((Prompt("invalid-entry"), Prompt("vm-main-menu"))), _collect()]

    # -- messages --

    def _play_message(self) -> list[Command]:
        m = self.queue[self.index]
        items = (*message_header(m), Recording(m.audio_path), Prompt("vm-message-menu"))
        # the choice may come during the message: collect for its whole length and more
        return [Play(items), _collect(1, m.duration + 40.0)]

    def _message_key(self, digits: str) -> list[Command]:
        m = self.queue[self.index]
        if m.id not in self.heard:  # it played, or the owner chose while it played
            self.heard.add(m.id)
            self.actions.mark_heard(self.owner, m.id)
        silent = self._silent(digits, [Play((Prompt("vm-message-menu"),)), _collect()])
        if silent is not None:
            return silent
        if digits == "1":
            self._go(N.NEXT)
            return self._play_message()
        if digits == "7":
            self.actions.delete_message(self.owner, m.id)
            log.info("mailbox %s call=%s: message %s deleted", self.owner, self.info.call_id,
                     m.id)
            del self.queue[self.index]
            return self._advance(Prompt("vm-deleted"))
        if digits == "9":
            self.index += 1
            return self._advance(Prompt("vm-saved-message"))
        if digits == "5" and say_digits(m.caller) and m.caller.lstrip("+").isdigit():
            self._go(N.CALL_BACK)
            log.info("mailbox %s call=%s: calling back %s", self.owner, self.info.call_id,
                     m.caller)
            return [Transfer(m.caller)]
        if digits in ("6", "#"):
            self.index += 1
            return self._advance()
        self._go(N.REPEAT)
        return [Play((Prompt("invalid-entry"), Prompt("vm-message-menu"))), _collect()]

    def _advance(self, *said: PromptItem) -> list[Command]:
        if self.index < len(self.queue):
            self._go(N.NEXT)
            cmds = self._play_message()
            first = cmds[0]
            assert isinstance(first, Play)
            return [Play((*said, *first.items)), *cmds[1:]]
        self._go(N.NO_MORE)
        return [Play((*said, Prompt("vm-no-more-messages"), Prompt("vm-main-menu"))),
                _collect()]

    # -- settings --

    def _settings_menu(self, *before: PromptItem) -> list[Command]:
        return [Play((*before, Prompt("vm-settings-menu"))), _collect()]

    def _settings(self, digits: str) -> list[Command]:
        silent = self._silent(digits, self._settings_menu())
        if silent is not None:
            return silent
        kinds = {"1": Greeting.UNAVAILABLE, "2": Greeting.BUSY, "3": Greeting.NAME}
        if digits in kinds:
            self._go(N.RECORD)
            self.recording = kinds[digits]
            return [Play((Prompt("vm-record-after-beep"), BEEP), interruptible=False)]
        if digits == "4":
            self._go(N.CHANGE_PIN)
            return [Play((Prompt("vm-new-pin"),)), _collect(MAX_LENGTH, PIN_TIMEOUT)]
        if digits == "*":
            self._go(N.BACK)
            return [Play((Prompt("vm-main-menu"),)), _collect()]
        self._go(N.REPEAT)
        return self._settings_menu(Prompt("invalid-entry"))

    def _recorded(self, event: RecordingFinished) -> list[Command]:
        kind = self.recording
        if self.state is not M.RECORDING or kind is None:
            if event.saved:
                self.actions.discard(event.path)
            return []
        self._go(N.RECORDED)
        self.recording = None
        if not event.saved or event.seconds < 0.5:
            if event.saved:
                self.actions.discard(event.path)
            return self._settings_menu(Prompt("vm-not-recorded"))
        self.actions.set_greeting(self.owner, kind, event.path)
        log.info("mailbox %s call=%s: %s greeting recorded (%.1f s)", self.owner,
                 self.info.call_id, kind.value, event.seconds)
        return self._settings_menu(Prompt("vm-greeting-saved"))

    def _new_pin(self, digits: str) -> list[Command]:
        if not digits:
            self._go(N.BACK)
            return self._settings_menu()
        if not valid_pin(digits):
            self._go(N.REPEAT)
            return [Play((Prompt("vm-pin-invalid"), Prompt("vm-new-pin"))),
                    _collect(MAX_LENGTH, PIN_TIMEOUT)]
        self._go(N.PIN_ENTERED)
        self.new_pin = digits
        return [Play((Prompt("vm-confirm-pin"),)), _collect(MAX_LENGTH, PIN_TIMEOUT)]

    def _confirm_pin(self, digits: str) -> list[Command]:
        if digits and digits == self.new_pin:
            self._go(N.PIN_CONFIRMED)
            self.actions.set_pin(self.owner, digits)
            self.new_pin = None
            log.info("mailbox %s call=%s: PIN changed", self.owner, self.info.call_id)
            return self._settings_menu(Prompt("vm-pin-changed"))
        self._go(N.PIN_MISMATCH)
        self.new_pin = None
        return [Play((Prompt("vm-pin-mismatch"), Prompt("vm-new-pin"))),
                _collect(MAX_LENGTH, PIN_TIMEOUT)]
