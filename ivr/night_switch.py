"""The night switch code as a call application (issue 12): a customer admin dials the code
the plan gives `night_switch` (`*55` in the example) and one digit, 1 to force the
schedule open, 2 closed, 0 to let it follow its hours and holidays again; the dialplan
checks the admin and the digit (`dialplan.router`) and names the schedule.

The application stores the mode through `ScheduleControl` (fire and forget: the switch
applies it at once and writes it to the database), answers, says the new state
(`night-open`, `night-closed`, `night-auto`) and hangs up.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Protocol

from dialplan.schedule import ScheduleMode
from ivr.application import (
    Answered,
    AppEvent,
    ApplicationBase,
    CallInfo,
    Command,
    FarEndHungUp,
    HangUp,
    Play,
    Prompt,
    PromptFinished,
)

log = logging.getLogger("ivr.night_switch")

# The confirmation must not keep the line forever if the prompt never reports its end.
CONFIRM_SECONDS = 10.0
PROMPTS = {ScheduleMode.OPEN: "night-open", ScheduleMode.CLOSED: "night-closed",
           ScheduleMode.AUTO: "night-auto"}


class NightState(Enum):
    STORED = "stored"  # the mode is stored; waiting for the caller to have our 200 OK
    CONFIRMING = "confirming"  # saying the new state
    DONE = "done"  # hung up, or the caller left


TRANSITIONS: frozenset[tuple[NightState, NightState]] = frozenset({
    (NightState.STORED, NightState.CONFIRMING), (NightState.STORED, NightState.DONE),
    (NightState.CONFIRMING, NightState.DONE),
})


class ScheduleControl(Protocol):
    """Where the night switch stores a mode (the switch's `ScheduleModes`)."""

    def set(self, customer: str, schedule: str, mode: ScheduleMode, by: str) -> None: ...


class NightSwitch(ApplicationBase):
    def __init__(self, info: CallInfo, control: ScheduleControl, customer: str,
                 schedule: str, mode: ScheduleMode, by: str) -> None:
        self.info = info
        self.control = control
        self.customer = customer
        self.schedule = schedule
        self.mode = mode
        self.by = by
        self.deadline: float | None = None
        self.state = NightState.STORED

    def _to(self, state: NightState) -> None:
        if (self.state, state) not in TRANSITIONS:
            raise RuntimeError(f"night switch: no transition {self.state.value} -> {state.value}")
        log.debug("night switch call=%s %s -> %s", self.info.call_id, self.state.value,
                  state.value)
        self.state = state

    def start(self, now: float) -> list[Command]:
        # the decision is taken: the mode applies even if the caller hangs up before the
        # confirmation
        self.control.set(self.customer, self.schedule, self.mode, self.by)
        log.info("night switch call=%s customer=%s schedule=%s mode=%s by=%s",
                 self.info.call_id, self.customer, self.schedule, self.mode.value, self.by)
        return []

    @property
    def done(self) -> bool:
        return self.state is NightState.DONE

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        if self.done:
            return []
        if isinstance(event, FarEndHungUp):
            self._to(NightState.DONE)
            self.deadline = None
        elif isinstance(event, Answered) and self.state is NightState.STORED:
            self._to(NightState.CONFIRMING)
            self.deadline = now + CONFIRM_SECONDS
            return [Play((Prompt(PROMPTS[self.mode], self.customer),), interruptible=False)]
        elif isinstance(event, PromptFinished) and self.state is NightState.CONFIRMING:
            return self._hang_up()
        return []

    def next_deadline(self) -> float | None:
        return None if self.done else self.deadline

    def handle_timer(self, now: float) -> list[Command]:
        if self.state is not NightState.CONFIRMING or self.deadline is None \
                or now < self.deadline:
            return []
        return self._hang_up()

    def _hang_up(self) -> list[Command]:
        self._to(NightState.DONE)
        self.deadline = None
        return [HangUp(f"night switch: {self.schedule} {self.mode.value}")]
