"""The auto-attendant ("standard automatique", service description 3.4 and annex 16.1).

It answers, plays its greeting and its menu, and reads digits, whatever carried them (RFC
4733 events, in-band tones, SIP INFO: all arrive as `Digit`):

- a menu key sends the caller to a target (`Transfer`), opens a submenu (its own greeting,
  prompt and keys, any depth), replays the menu (`repeat`) or goes back to the parent
  menu (`back`);
- **dial by extension**: a first digit that is no key but can start an internal number
  starts one; the rest of a short extension or full internal number follows, ended by `#`,
  by the inter-digit timeout, or as soon as the number is complete; the caller is then sent
  to the full internal number (`411` typed at site 01 of prefix 5 -> `Transfer("501411")`)
  and the switch checks it;
- an invalid key (`invalid-entry`) or no key at all (`no-entry`) replays the menu, up to
  `retries` attempts in all; then the caller goes to the timeout target, or hears
  `goodbye` and the call ends;
- when a transfer fails (`TransferFailed`: busy, no answer, unknown number, barred) the
  caller hears `unavailable` and the menu again.

Every prompt of a menu is interruptible, so a caller who knows the menu types ahead; a digit
that does not start a new prompt stops the current one (`StopPlaying`: SIP INFO digits do
not stop the media player by themselves). Every decision is logged on one line starting with
`attendant call=<Call-ID>`, which operators and the system tests read.
"""

from __future__ import annotations

import logging
from enum import Enum, auto

from dialplan.model import AutoAttendant
from ivr.application import (
    Answered,
    AppEvent,
    ApplicationBase,
    CallInfo,
    Command,
    Digit,
    FarEndHungUp,
    HangUp,
    Play,
    Prompt,
    PromptFinished,
    StopPlaying,
    Transfer,
    TransferFailed,
)
from ivr.attendant_menu import AttendantConfig, KeyKind, Menu, config_for

log = logging.getLogger("ivr.auto_attendant")

INVALID_ENTRY = "invalid-entry"
NO_ENTRY = "no-entry"
UNAVAILABLE = "unavailable"
GOODBYE = "goodbye"
TRANSFERRING = "aa-transfer"
# The longest a prompt may play before the attendant stops waiting for its end (a lost
# PromptFinished must not leave the caller in silence forever).
PROMPT_GUARD = 300.0


class AttendantState(Enum):
    WAITING = auto()  # not answered yet
    MENU = auto()  # a menu plays or waits for a key
    NUMBER = auto()  # dial by extension: collecting an internal number
    ANNOUNCING = auto()  # a last prompt before the transfer or the hang-up
    TRANSFERRING = auto()  # the target rings: only TransferFailed or FarEndHungUp come
    ENDED = auto()


class AttendantInput(Enum):
    ANSWER = auto()
    PLAY_MENU = auto()  # enter a menu, or play it again
    START_NUMBER = auto()
    ANNOUNCE = auto()
    TRANSFER = auto()
    HANG_UP = auto()
    CALLER_LEFT = auto()


_S, _I = AttendantState, AttendantInput
TRANSITIONS: dict[tuple[AttendantState, AttendantInput], AttendantState] = {
    (_S.WAITING, _I.ANSWER): _S.MENU,
    (_S.MENU, _I.PLAY_MENU): _S.MENU,
    (_S.NUMBER, _I.PLAY_MENU): _S.MENU,  # the typed number was no number
    (_S.TRANSFERRING, _I.PLAY_MENU): _S.MENU,  # the transfer failed
    (_S.MENU, _I.START_NUMBER): _S.NUMBER,
    (_S.MENU, _I.ANNOUNCE): _S.ANNOUNCING,
    (_S.NUMBER, _I.ANNOUNCE): _S.ANNOUNCING,
    (_S.TRANSFERRING, _I.ANNOUNCE): _S.ANNOUNCING,  # the timeout target failed: goodbye
    (_S.MENU, _I.TRANSFER): _S.TRANSFERRING,
    (_S.NUMBER, _I.TRANSFER): _S.TRANSFERRING,
    (_S.ANNOUNCING, _I.TRANSFER): _S.TRANSFERRING,
    (_S.ANNOUNCING, _I.HANG_UP): _S.ENDED,
    **{(s, _I.CALLER_LEFT): _S.ENDED for s in AttendantState if s is not _S.ENDED},
}


class AttendantTransitionError(Exception):
    """An input the attendant's state does not accept (a bug here, never the caller's)."""


class AutoAttendantApp(ApplicationBase):
    """One caller in an auto-attendant. ``announce_transfer``: say "we transfer your call"
    (`aa-transfer`) before each transfer."""

    def __init__(self, info: CallInfo, config: AttendantConfig, *,
                 announce_transfer: bool = True) -> None:
        self.info = info
        self.config = config
        self.announce_transfer = announce_transfer
        self.state = AttendantState.WAITING
        self.menus: list[Menu] = [config.top]  # the current menu last
        self.attempts = 0  # at the current menu
        self.number = ""  # dial by extension, so far
        self.target: str | None = None  # the transfer under way
        self._to_timeout = False  # that transfer is the timeout target
        self._playing = False  # an interruptible menu prompt plays
        self._deadline: float | None = None
        self._then: Command | None = None  # after the announcement: Transfer or HangUp

    @classmethod
    def for_entity(cls, entity: AutoAttendant, info: CallInfo) -> AutoAttendantApp:
        """The application for a plan's auto-attendant (the decision table's factory:
        ``functools.partial(AutoAttendantApp.for_entity, decision.target)``)."""
        return cls(info, config_for(entity))

    @property
    def menu(self) -> Menu:
        return self.menus[-1]

    # -- the contract --

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        if self.state is AttendantState.ENDED:
            return []
        if isinstance(event, FarEndHungUp):
            self._go(_I.CALLER_LEFT)
            self._deadline = None
            self._log("caller-left", cause=event.cause)
            return []
        if isinstance(event, Answered):
            if self.state is not AttendantState.WAITING:
                return []
            self._go(_I.ANSWER)
            return self._enter(self.config.top, now, why="answered")
        if isinstance(event, Digit):
            return self._digit(event.digit, now)
        if isinstance(event, PromptFinished):
            return self._prompt_finished(now)
        if isinstance(event, TransferFailed):
            return self._transfer_failed(event, now)
        return []

    def next_deadline(self) -> float | None:
        return self._deadline

    def handle_timer(self, now: float) -> list[Command]:
        if self._deadline is None or now < self._deadline:
            return []
        self._deadline = None
        if self.state is AttendantState.MENU:
            if self._playing:  # the prompt's end never came: wait for a key from now
                self._playing = False
                self._deadline = now + self.config.digit_timeout
                return []
            return self._failed(NO_ENTRY, now)
        if self.state is AttendantState.NUMBER:
            return self._number_done(now, "timeout")
        if self.state is AttendantState.ANNOUNCING:
            return self._announced()
        return []

    # -- menus --

    def _enter(self, menu: Menu, now: float, *, why: str,
               greeting: bool = True) -> list[Command]:
        """Enter `menu` (a new attempt count): its greeting (not when coming back to it),
        then its prompt."""
        if menu is not self.menu:
            self.menus.append(menu)
        self.attempts = 1
        self._log("menu", menu=menu.name, why=why)
        names = ([menu.greeting] if menu.greeting and greeting else []) + [menu.prompt]
        return self._play_menu(names, now)

    def _play_menu(self, names: list[str], now: float) -> list[Command]:
        self._go(_I.PLAY_MENU)
        self.number = ""
        self._playing = True
        self._deadline = now + PROMPT_GUARD
        return [Play(tuple(self._prompt(n) for n in names), interruptible=True)]

    def _prompt_finished(self, now: float) -> list[Command]:
        if self.state is AttendantState.MENU and self._playing:
            self._playing = False
            self._deadline = now + self.config.digit_timeout  # no entry after that
        elif self.state is AttendantState.ANNOUNCING:
            return self._announced()
        return []

    def _digit(self, digit: str, now: float) -> list[Command]:
        if self.state is AttendantState.NUMBER:
            return self._number_digit(digit, now)
        if self.state is not AttendantState.MENU:
            return []  # an announcement is not interruptible; a transfer is under way
        was_playing = self._playing
        action = self.menu.keys.get(digit)
        if action is None:
            if self.config.dial_by_extension and digit in self.config.first_digits:
                self._go(_I.START_NUMBER)
                self._playing = False
                self.number = digit
                self._deadline = now + self.config.digit_timeout
                self._log("number", menu=self.menu.name, key=digit, action="dial-by-extension")
                return [StopPlaying()] if was_playing else []
            self._log("key", menu=self.menu.name, key=digit, action="invalid")
            return self._failed(INVALID_ENTRY, now)
        self._log("key", menu=self.menu.name, key=digit, action=action.kind.value,
                  target=action.target or (action.submenu.name if action.submenu else ""))
        if action.kind is KeyKind.TRANSFER:
            out = self._transfer(action.target, now, timeout=False)
            if was_playing and not any(isinstance(c, Play) for c in out):
                out.insert(0, StopPlaying())
            return out
        if action.kind is KeyKind.SUBMENU and action.submenu is not None:
            return self._enter(action.submenu, now, why=f"key {digit}")
        if action.kind is KeyKind.BACK and len(self.menus) > 1:
            self.menus.pop()
            return self._enter(self.menu, now, why=f"back from key {digit}", greeting=False)
        return self._play_menu([self.menu.prompt], now)  # repeat (or back at the top)

    def _failed(self, notice: str, now: float) -> list[Command]:
        """An invalid key or no key: the menu again, or the timeout target when the caller
        has had `retries` attempts."""
        c = self.config
        if self.attempts < c.retries:
            self.attempts += 1
            self._log("retry", menu=self.menu.name, why=notice, attempt=self.attempts,
                      of=c.retries)
            return self._play_menu([notice, self.menu.prompt], now)
        self._playing = False
        if c.timeout_target is not None:
            self._log("timeout", menu=self.menu.name, why=notice, attempts=self.attempts,
                      action="transfer", target=c.timeout_target)
            return self._transfer(c.timeout_target, now, timeout=True, notice=notice)
        self._log("timeout", menu=self.menu.name, why=notice, attempts=self.attempts,
                  action="hangup")
        return self._announce([notice, GOODBYE], HangUp("auto-attendant: no choice"), now)

    # -- dial by extension --

    def _number_digit(self, digit: str, now: float) -> list[Command]:
        c = self.config
        if digit == "#":
            return self._number_done(now, "#")
        if not digit.isdigit():
            self._log("number", menu=self.menu.name, digits=self.number, key=digit,
                      action="invalid")
            return self._failed(INVALID_ENTRY, now)
        self.number += digit
        n = len(self.number)
        if n >= c.full_number_length or (
                n == c.extension_length and not self.number.startswith(c.prefix)):
            return self._number_done(now, "complete")  # nothing longer can follow
        self._deadline = now + c.digit_timeout
        return []

    def _number_done(self, now: float, why: str) -> list[Command]:
        c = self.config
        digits, self.number = self.number, ""
        self._deadline = None
        if len(digits) == c.extension_length:
            target = c.site_prefix + digits
        elif len(digits) == c.full_number_length and digits.startswith(c.prefix):
            target = digits
        else:
            self._log("number", menu=self.menu.name, digits=digits, why=why, action="invalid")
            return self._failed(INVALID_ENTRY, now)
        self._log("number", menu=self.menu.name, digits=digits, why=why, action="transfer",
                  target=target)
        return self._transfer(target, now, timeout=False)

    # -- leaving the attendant --

    def _transfer(self, target: str, now: float, *, timeout: bool,
                  notice: str | None = None) -> list[Command]:
        self.target, self._to_timeout = target, timeout
        self._playing = False
        names = ([notice] if notice else []) + ([TRANSFERRING] if self.announce_transfer else [])
        if names:
            return self._announce(names, Transfer(target), now)
        self._go(_I.TRANSFER)
        self._deadline = None
        self._log("transfer", target=target)
        return [Transfer(target)]

    def _announce(self, names: list[str], then: Command, now: float) -> list[Command]:
        self._go(_I.ANNOUNCE)
        self._then = then
        self._deadline = now + PROMPT_GUARD
        return [Play(tuple(self._prompt(n) for n in names), interruptible=False)]

    def _announced(self) -> list[Command]:
        then, self._then = self._then, None
        self._deadline = None
        if isinstance(then, Transfer):
            self._go(_I.TRANSFER)
            self._log("transfer", target=then.target)
            return [then]
        self._go(_I.HANG_UP)
        self._log("hangup")
        return [then] if then is not None else []

    def _transfer_failed(self, event: TransferFailed, now: float) -> list[Command]:
        if self.state is not AttendantState.TRANSFERRING:
            return []
        self._log("transfer-failed", target=event.target, status=event.status,
                  reason=event.reason or "-")
        self.target = None
        if self._to_timeout:  # nowhere left to send the caller
            return self._announce([UNAVAILABLE, GOODBYE], HangUp("auto-attendant: timeout "
                                                                 "target unavailable"), now)
        self.attempts = 1
        return self._play_menu([UNAVAILABLE, self.menu.prompt], now)

    # -- helpers --

    def _prompt(self, name: str) -> Prompt:
        return Prompt(name, customer=self.config.customer)

    def _go(self, inp: AttendantInput) -> None:
        nxt = TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise AttendantTransitionError(f"{self.state.name} does not accept {inp.name}")
        log.debug("attendant call=%s %s --%s--> %s", self.info.call_id, self.state.name,
                  inp.name, nxt.name)
        self.state = nxt

    def _log(self, what: str, **fields: object) -> None:
        # operators and the system tests read these lines: keep `attendant call=` and the
        # key=value words
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        log.info("attendant call=%s aa=%s event=%s %s", self.info.call_id, self.config.id,
                 what, extra)


__all__ = ["TRANSITIONS", "AttendantState", "AttendantTransitionError", "AutoAttendantApp"]
