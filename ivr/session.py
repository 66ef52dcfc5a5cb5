"""An application in a call: digit collection and the end of the conversation, pure.

`ApplicationSession` sits between the runner and one application. It performs the one
command that is timing logic rather than media, ``CollectDigits`` (first-digit and
inter-digit timeouts, terminator, maximum), so the runner stays a plain executor and every
timeout is unit-tested with a fake clock. It also stops feeding an application that let go
of the call (``HangUp``/``Transfer``, or the far end hung up), except for the
``RecordingFinished`` of a recording that was still running.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum, auto

from ivr.application import (
    AppEvent,
    CallApplication,
    CollectDigits,
    CollectEnd,
    Command,
    Digit,
    DigitsCollected,
    FarEndHungUp,
    HangUp,
    RecordingFinished,
    Timer,
    Transfer,
    TransferFailed,
)

log = logging.getLogger("ivr.session")


class SessionState(Enum):
    ACTIVE = auto()
    TRANSFERRING = auto()  # a Transfer rings its target: only its outcome comes in
    ENDED = auto()


@dataclass
class _Collecting:
    spec: CollectDigits
    digits: str
    deadline: float


class ApplicationSession:
    """Drives one application; the runner calls the same four methods on it."""

    def __init__(self, app: CallApplication) -> None:
        self.app = app
        self.state = SessionState.ACTIVE
        self._collect: _Collecting | None = None

    @property
    def ended(self) -> bool:
        return self.state is SessionState.ENDED

    def start(self, now: float) -> list[Command]:
        return self._filter(self.app.start(now), now)

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        if self.state is SessionState.TRANSFERRING and not isinstance(
                event, FarEndHungUp | TransferFailed):
            return []
        if isinstance(event, TransferFailed):
            if self.state is not SessionState.TRANSFERRING:
                return []
            self.state = SessionState.ACTIVE
            log.info("transfer to %s failed with %d: back to the application", event.target,
                     event.status)
        if self.ended:
            if isinstance(event, RecordingFinished):
                self.app.receive(event, now)  # for its log or store; nothing to perform
            return []
        if isinstance(event, FarEndHungUp):
            self.state = SessionState.ENDED
            self._collect = None
            self.app.receive(event, now)
            return []
        out: list[Command] = []
        if isinstance(event, Digit) and self._collect is not None:
            out.extend(self._collect_digit(event, now))
        out.extend(self._filter(self.app.receive(event, now), now))
        return out

    def transfer_connected(self) -> None:
        """The Transfer's target answered: the application's part of the call is over."""
        self.state = SessionState.ENDED
        self._collect = None

    def next_deadline(self) -> float | None:
        if self.state is not SessionState.ACTIVE:
            return None
        times = [t for t in (self.app.next_deadline(),
                             self._collect.deadline if self._collect else None) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[Command]:
        if self.state is not SessionState.ACTIVE:
            return []
        out: list[Command] = []
        c = self._collect
        if c is not None and now >= c.deadline:
            out.extend(self._collected(CollectEnd.TIMEOUT, now))
        deadline = self.app.next_deadline()
        if not self.ended and deadline is not None and now >= deadline:
            out.extend(self._filter(self.app.handle_timer(now), now))
        return out

    # -- digit collection --

    def _collect_digit(self, event: Digit, now: float) -> list[Command]:
        c = self._collect
        assert c is not None
        if c.spec.terminator is not None and event.digit == c.spec.terminator:
            return self._collected(CollectEnd.TERMINATOR, now)
        c.digits += event.digit
        if len(c.digits) >= c.spec.max_digits:
            return self._collected(CollectEnd.MAX_DIGITS, now)
        c.deadline = now + c.spec.inter_digit_timeout
        return []

    def _collected(self, reason: CollectEnd, now: float) -> list[Command]:
        c = self._collect
        assert c is not None
        self._collect = None
        return self._filter(self.app.receive(DigitsCollected(c.digits, reason), now), now)

    def _filter(self, commands: list[Command], now: float) -> list[Command]:
        """Keep what the runner performs; take CollectDigits for ourselves."""
        out: list[Command] = []
        for cmd in commands:
            if self.state is not SessionState.ACTIVE:
                break
            if isinstance(cmd, CollectDigits):
                self._collect = _Collecting(cmd, "", now + cmd.first_timeout)
                continue
            out.append(cmd)
            if isinstance(cmd, HangUp):
                self.state = SessionState.ENDED
                self._collect = None
            elif isinstance(cmd, Transfer):
                self.state = SessionState.TRANSFERRING
                self._collect = None
                break  # nothing after a Transfer: its outcome decides what comes next
        return out


__all__ = ["ApplicationSession", "SessionState", "Timer"]
