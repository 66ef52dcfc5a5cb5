"""Leaving a message: greeting, beep, recording, review (issue 13), pure.

A call reaches a mailbox when its user does not answer, is busy or unreachable, or when a
schedule, a menu or an overflow sends it to `voicemail:<user>`. The caller hears:

1. the greeting: the owner's recorded busy or unavailable greeting, else the owner's
   recorded name inside the standard phrase, else the standard phrase;
   `*` during the greeting leads to the mailbox menu (PIN first): the owner calling their
   own number from elsewhere;
2. a beep (1000 Hz, 0.3 s), then the recording, until the caller hangs up, presses a key
   (`#`) or reaches the maximum length;
3. after a key: 1 listen, 2 record again, 3 mark urgent, `#` (or nothing) send.

A recording with less than a second of sound is not kept (`RecordingFinished.saved` is
False when the recorder heard only silence). A kept message is handed to the mailbox store
(`MailboxActions.save_message`) exactly once, also when the caller hangs up during the
review: a message is never lost because its caller did not press a key.
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
    Digit,
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
    TransferFailed,
)

from .mailbox import MailboxMenu
from .store import Greeting, MailboxActions, MailboxSnapshot

log = logging.getLogger("voicemail.deposit")

BEEP = Tone(1000.0, 0.3)
MAX_MESSAGE_SECONDS = 180.0
MIN_MESSAGE_SECONDS = 1.0  # less sound than this after the beep: no message
REVIEW_TIMEOUT = 10.0  # no choice after the review prompt: the message is sent


class DepositState(Enum):
    GREETING = auto()
    BEEP = auto()
    RECORDING = auto()
    REVIEW = auto()  # the options after a key: listen, record again, urgent, send
    LISTENING = auto()
    CLOSING = auto()  # "message saved" / "goodbye" plays, then hang up
    MAILBOX = auto()  # `*` during the greeting: the mailbox menu has the call
    DONE = auto()


class DepositInput(Enum):
    ANSWERED = auto()
    STAR = auto()  # `*` in the greeting: to the mailbox menu
    PROMPT_DONE = auto()
    KEY = auto()  # another key in the greeting: skip it
    STOPPED_BY_KEY = auto()  # a kept recording ended with a key
    STOPPED_FULL = auto()  # a kept recording reached the maximum length
    TOO_SHORT = auto()
    LISTEN = auto()
    RERECORD = auto()
    URGENT = auto()
    SEND = auto()
    INVALID = auto()
    HUNG_UP = auto()


S, In = DepositState, DepositInput
TRANSITIONS: dict[tuple[DepositState, DepositInput], DepositState] = {
    (S.GREETING, In.ANSWERED): S.GREETING,
    (S.GREETING, In.PROMPT_DONE): S.BEEP,
    (S.GREETING, In.KEY): S.BEEP,
    (S.GREETING, In.STAR): S.MAILBOX,
    (S.BEEP, In.STAR): S.MAILBOX,  # the digit may come after the interrupted greeting
    (S.BEEP, In.PROMPT_DONE): S.RECORDING,
    (S.RECORDING, In.STOPPED_BY_KEY): S.REVIEW,
    (S.RECORDING, In.STOPPED_FULL): S.CLOSING,
    (S.RECORDING, In.TOO_SHORT): S.CLOSING,
    (S.REVIEW, In.LISTEN): S.LISTENING,
    (S.REVIEW, In.RERECORD): S.BEEP,
    (S.REVIEW, In.URGENT): S.REVIEW,
    (S.REVIEW, In.SEND): S.CLOSING,
    (S.REVIEW, In.INVALID): S.REVIEW,
    (S.LISTENING, In.PROMPT_DONE): S.REVIEW,
    (S.CLOSING, In.PROMPT_DONE): S.DONE,
    **{(s, In.HUNG_UP): S.DONE for s in DepositState if s is not S.DONE},
}


class DepositTransitionError(RuntimeError):
    """An input the deposit's state does not accept (a bug, never the caller's fault)."""


def greeting(snapshot: MailboxSnapshot, busy: bool) -> tuple[PromptItem, ...]:
    """The owner's recorded greeting for the case, else their name in the standard phrase,
    else the standard phrase."""
    own = snapshot.greetings.get(Greeting.BUSY if busy else Greeting.UNAVAILABLE)
    if own:
        return (Recording(own),)
    name = snapshot.greetings.get(Greeting.NAME)
    if name:
        return (Recording(name), Prompt("vm-name-busy" if busy else "vm-name-unavailable"),
                Prompt("vm-leave-message"))
    return (Prompt("vm-busy" if busy else "vm-greeting-standard"),)


class DepositApp(ApplicationBase):
    """One caller leaving a message in `snapshot.owner`'s mailbox."""

    def __init__(self, info: CallInfo, snapshot: MailboxSnapshot, actions: MailboxActions, *,
                 busy: bool = False, caller_name: str | None = None,
                 max_seconds: float = MAX_MESSAGE_SECONDS) -> None:
        self.info = info
        self.snapshot = snapshot
        self.actions = actions
        self.busy = busy
        self.caller_name = caller_name
        self.max_seconds = max_seconds
        self.state = DepositState.GREETING
        self.urgent = False
        self.takes = 0
        self.pending: str | None = None  # a kept recording not handed to the store yet
        self.pending_seconds = 0.0
        self.saved = False
        self.stopped_by_key = False
        self.menu: MailboxMenu | None = None

    # -- the contract --

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        if self.menu is not None:
            return self.menu.receive(event, now)
        if isinstance(event, Answered):
            self._go(In.ANSWERED)
            return [Play(greeting(self.snapshot, self.busy), interruptible=True)]
        if isinstance(event, FarEndHungUp):
            self._go(In.HUNG_UP)
            self._keep()  # hung up during the review: the message is sent as it is
            return []
        if isinstance(event, RecordingFinished):
            return self._recorded(event)
        if isinstance(event, Digit):
            return self._digit(event.digit, now)
        if isinstance(event, PromptFinished):
            return self._prompt_done()
        if isinstance(event, DigitsCollected) and self.state is S.REVIEW:
            return self._review(event.digits)
        if isinstance(event, TransferFailed):
            return []
        return []

    def next_deadline(self) -> float | None:
        return self.menu.next_deadline() if self.menu is not None else None

    def handle_timer(self, now: float) -> list[Command]:
        return self.menu.handle_timer(now) if self.menu is not None else []

    # -- steps --

    def _go(self, inp: DepositInput) -> None:
        nxt = TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise DepositTransitionError(f"{self.state.name} does not accept {inp.name}")
        log.debug("deposit call=%s: %s --%s--> %s", self.info.call_id, self.state.name,
                  inp.name, nxt.name)
        self.state = nxt

    def _accepts(self, inp: DepositInput) -> bool:
        return (self.state, inp) in TRANSITIONS

    def _beep(self) -> list[Command]:
        return [Play((BEEP,), interruptible=False)]

    def _digit(self, digit: str, now: float) -> list[Command]:
        if self.state is S.RECORDING:
            self.stopped_by_key = True  # the recorder stops on it: RecordingFinished follows
            return []
        if digit == "*" and self._accepts(In.STAR):
            self._go(In.STAR)
            log.info("deposit call=%s: * in the greeting, to the mailbox menu of %s",
                     self.info.call_id, self.snapshot.owner)
            self.menu = MailboxMenu(self.info, self.snapshot, self.actions)
            return self.menu.start(now) + self.menu.receive(Answered(), now)
        if self.state is S.GREETING:
            self._go(In.KEY)
            return self._beep()
        return []

    def _prompt_done(self) -> list[Command]:
        if self.state is S.GREETING:
            self._go(In.PROMPT_DONE)
            return self._beep()
        if self.state is S.BEEP:
            self._go(In.PROMPT_DONE)
            self.takes += 1
            self.stopped_by_key = False
            return [Record(f"vm-{self.info.token}-{self.takes}.wav", self.max_seconds,
                           stop_on_hash=True)]
        if self.state is S.LISTENING:
            self._go(In.PROMPT_DONE)
            return self._review_prompt()
        if self.state is S.CLOSING:
            self._go(In.PROMPT_DONE)
            return [HangUp("message left" if self.saved else "no message")]
        return []

    def _recorded(self, event: RecordingFinished) -> list[Command]:
        kept = event.saved and event.seconds >= MIN_MESSAGE_SECONDS
        if not kept:
            if event.saved:
                self.actions.discard(event.path)
            log.info("deposit call=%s: nothing kept for %s (%.1f s of sound)",
                     self.info.call_id, self.snapshot.owner, event.seconds)
        else:
            self.pending, self.pending_seconds = event.path, event.seconds
        if self.state is S.DONE:  # the caller hung up: this is the last word
            self._keep()
            return []
        if self.state is not S.RECORDING:
            return []
        if not kept:
            self._go(In.TOO_SHORT)
            return [Play((Prompt("vm-no-message"), Prompt("goodbye")), interruptible=False)]
        if self.stopped_by_key:
            self._go(In.STOPPED_BY_KEY)
            return self._review_prompt()
        self._go(In.STOPPED_FULL)
        self._keep()
        return [Play((Prompt("vm-saved"), Prompt("goodbye")), interruptible=False)]

    def _review_prompt(self) -> list[Command]:
        return [Play((Prompt("vm-after-hash"),), interruptible=True),
                CollectDigits(1, first_timeout=REVIEW_TIMEOUT, terminator="#")]

    def _review(self, digits: str) -> list[Command]:
        if digits == "1" and self.pending is not None:
            self._go(In.LISTEN)
            return [Play((Recording(self.pending),), interruptible=True)]
        if digits == "2":
            self._go(In.RERECORD)
            if self.pending is not None:
                self.actions.discard(self.pending)
                self.pending = None
            return self._beep()
        if digits == "3":
            self._go(In.URGENT)
            self.urgent = True
            return [Play((Prompt("vm-marked-urgent"),), interruptible=True),
                    *self._review_prompt()[1:]]
        if digits == "":  # `#` or no choice: send
            self._go(In.SEND)
            self._keep()
            return [Play((Prompt("vm-saved"), Prompt("goodbye")), interruptible=False)]
        self._go(In.INVALID)
        return [Play((Prompt("invalid-entry"), Prompt("vm-after-hash")), interruptible=True),
                CollectDigits(1, first_timeout=REVIEW_TIMEOUT, terminator="#")]

    def _keep(self) -> None:
        """Hand the kept recording to the store, once."""
        if self.pending is None or self.saved:
            return
        self.saved = True
        log.info("deposit call=%s: message for %s from %s, %.1f s%s", self.info.call_id,
                 self.snapshot.owner, self.info.caller, self.pending_seconds,
                 " (urgent)" if self.urgent else "")
        self.actions.save_message(self.snapshot.owner, self.pending, caller=self.info.caller,
                                  caller_name=self.caller_name, seconds=self.pending_seconds,
                                  urgent=self.urgent)
        self.pending = None
