"""The meet-me conference application (issue 16): PIN, join, the owner's keys.

A caller who dials a room (`*71` + a customer room's number, `*72` + a Suite-pack user's
extension for that user's personal conference number) runs `ConferenceApp`:

1. a room with a PIN asks for it (`conf-enter-pin`) unless the caller is the room's owner
   (an authenticated user of the plan, so no PIN is needed); `MAX_PIN_TRIES` wrong PINs
   (`conf-wrong-pin`) end the call with `goodbye`, and every wrong PIN counts in the
   switch's failure guard (`RoomDesk.pin_failed`): a blocked caller is refused at once;
2. the caller joins (`RoomDesk.join`): the room's mixer takes over the caller's audio (each
   participant hears everyone but themselves), everyone hears the join cue; a full room
   (`MAX_PARTICIPANTS`) says `conf-full` and hangs up;
3. in the room, any participant's `*` mutes or unmutes themselves; the owner's `1` mutes
   or unmutes everyone else, `2` removes the participant who joined last (who hears
   `conf-removed` and is hung up: the `Removed` event).

The room itself (who is in, the mixer, the tones) lives in `switch/services/conferences.py`;
this application only talks to it through `RoomDesk`. Log lines: `conference call=<Call-ID>
room=<key> event=<what>`.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from enum import Enum, auto
from typing import Protocol

from ivr.application import (
    Answered,
    AppEvent,
    ApplicationBase,
    CallInfo,
    CollectDigits,
    Command,
    Digit,
    DigitsCollected,
    FarEndHungUp,
    HangUp,
    Play,
    Prompt,
    PromptFinished,
)
from ivr.transitions import next_state

log = logging.getLogger("ivr.conference")

MAX_PARTICIPANTS = 20  # issue 16, annex 16.1: up to 20 participants per room
MAX_PIN_TRIES = 3
PIN_DIGITS = 8
PIN_FIRST_TIMEOUT = 10.0
PIN_NEXT_TIMEOUT = 5.0
GUARD_SECONDS = 30.0  # a leaving caller is hung up even if the prompt never ends

# keys in the room
SELF_MUTE = "*"
OWNER_MUTE_OTHERS = "1"
OWNER_REMOVE_LAST = "2"


class JoinOutcome(Enum):
    JOINED = "joined"
    FULL = "full"


@dataclass(frozen=True, slots=True)
class Removed:
    """The room's owner removed this participant (an extra event the room delivers)."""


class RoomDesk(Protocol):
    """What the application asks of its room (`switch.services.conferences`)."""

    def join(self, call_id: str, caller: str, owner: bool, now: float) -> JoinOutcome: ...

    def leave(self, call_id: str, now: float) -> None: ...

    def toggle_self_mute(self, call_id: str) -> bool: ...

    def toggle_mute_others(self, call_id: str) -> bool: ...

    def remove_last(self, call_id: str) -> str | None: ...

    def pin_blocked(self, now: float) -> bool: ...

    def pin_failed(self, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class ConferenceConfig:
    room: str  # the room's key: "acme:room:800", "acme:pcn:501412"
    pin: str | None  # None: no PIN asked; "": asked, and no answer is right
    owner: bool  # the caller owns the room: no PIN, the owner's keys
    customer: str | None = None  # whose announcements the prompts may be


class ConfState(Enum):
    ANSWERING = auto()
    PIN = auto()
    JOINED = auto()
    LEAVING = auto()  # a last prompt, then hang up
    ENDED = auto()


TRANSITIONS: dict[tuple[ConfState, str], ConfState] = {
    (ConfState.ANSWERING, "ask_pin"): ConfState.PIN,
    (ConfState.ANSWERING, "join"): ConfState.JOINED,
    (ConfState.ANSWERING, "refuse"): ConfState.LEAVING,
    (ConfState.PIN, "retry"): ConfState.PIN,
    (ConfState.PIN, "join"): ConfState.JOINED,
    (ConfState.PIN, "refuse"): ConfState.LEAVING,
    (ConfState.JOINED, "removed"): ConfState.LEAVING,
    (ConfState.LEAVING, "done"): ConfState.ENDED,
    **{(s, "hung_up"): ConfState.ENDED for s in ConfState},
}


class ConferenceApp(ApplicationBase):
    def __init__(self, info: CallInfo, desk: RoomDesk, config: ConferenceConfig) -> None:
        self.info = info
        self.desk = desk
        self.config = config
        self.state = ConfState.ANSWERING
        self.tries = 0
        self._deadline: float | None = None

    # -- helpers --

    def _go(self, event: str) -> None:
        self.state = next_state(TRANSITIONS, "conference", self.state, event)

    def _log(self, event: str, **fields: object) -> None:
        extra = "".join(f" {k}={v}" for k, v in fields.items())
        log.info("conference call=%s room=%s event=%s%s", self.info.call_id,
                 self.config.room, event, extra)

    def _prompt(self, name: str) -> Prompt:
        return Prompt(name, self.config.customer)

    def _ask_pin(self, *before: str) -> list[Command]:
        items = (*(self._prompt(b) for b in before), self._prompt("conf-enter-pin"))
        return [Play(items), CollectDigits(PIN_DIGITS, PIN_FIRST_TIMEOUT, PIN_NEXT_TIMEOUT)]

    def _refuse(self, why: str, *prompts: str, now: float) -> list[Command]:
        self._go("refuse")
        self._log("refused", why=why)
        self._deadline = now + GUARD_SECONDS
        return [Play(tuple(self._prompt(p) for p in (*prompts, "goodbye")),
                     interruptible=False)]

    def _join(self, now: float) -> list[Command]:
        outcome = self.desk.join(self.info.call_id, self.info.caller, self.config.owner, now)
        if outcome is JoinOutcome.FULL:
            return self._refuse("full", "conf-full", now=now)
        self._go("join")
        self._log("joined", caller=self.info.caller, owner=self.config.owner)
        return []  # the room's mixer now feeds the caller (and plays the join cue)

    # -- the contract --

    def receive(self, event: AppEvent | Removed, now: float) -> list[Command]:
        if self.state is ConfState.ENDED:
            return []
        if isinstance(event, FarEndHungUp):
            if self.state is ConfState.JOINED:
                self.desk.leave(self.info.call_id, now)
                self._log("left")
            self._go("hung_up")
            self._deadline = None
            return []
        if self.state is ConfState.ANSWERING and isinstance(event, Answered):
            # "" is a PIN nobody has (an unknown room): asked, never matched
            if self.config.pin is not None and not self.config.owner:
                if self.desk.pin_blocked(now):
                    return self._refuse("blocked", now=now)
                self._go("ask_pin")
                return self._ask_pin()
            return self._join(now)
        if self.state is ConfState.PIN and isinstance(event, DigitsCollected):
            return self._pin(event.digits, now)
        if self.state is ConfState.JOINED:
            if isinstance(event, Removed):
                self.desk.leave(self.info.call_id, now)
                self._go("removed")
                self._log("removed")
                self._deadline = now + GUARD_SECONDS
                return [Play((self._prompt("conf-removed"), self._prompt("goodbye")),
                             interruptible=False)]
            if isinstance(event, Digit):
                self._key(event.digit)
            return []
        if self.state is ConfState.LEAVING and isinstance(event, PromptFinished):
            return self._end("conference: left")
        return []

    def _pin(self, digits: str, now: float) -> list[Command]:
        pin = self.config.pin or ""
        # constant time: the comparison's duration says nothing about the PIN
        if digits and hmac.compare_digest(digits.encode(), pin.encode()):
            return self._join(now)
        self.tries += 1
        self.desk.pin_failed(now)
        self._log("wrong-pin", tries=self.tries)
        if self.tries >= MAX_PIN_TRIES or self.desk.pin_blocked(now):
            return self._refuse("wrong-pin", "conf-wrong-pin", now=now)
        self._go("retry")
        return self._ask_pin("conf-wrong-pin")

    def _key(self, digit: str) -> None:
        call_id = self.info.call_id
        if digit == SELF_MUTE:
            self._log("self-mute", muted=self.desk.toggle_self_mute(call_id))
        elif self.config.owner and digit == OWNER_MUTE_OTHERS:
            self._log("mute-others", muted=self.desk.toggle_mute_others(call_id))
        elif self.config.owner and digit == OWNER_REMOVE_LAST:
            self._log("remove", removed=self.desk.remove_last(call_id))

    def next_deadline(self) -> float | None:
        return self._deadline if self.state is ConfState.LEAVING else None

    def handle_timer(self, now: float) -> list[Command]:
        if self.state is ConfState.LEAVING and self._deadline is not None and now >= self._deadline:
            return self._end("conference: goodbye timed out")
        return []

    def _end(self, cause: str) -> list[Command]:
        self._go("done")
        self._deadline = None
        return [HangUp(cause)]
