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
        self.done = False

    def start(self, now: float) -> list[Command]:
        # the decision is taken: the mode applies even if the caller hangs up before the
        # confirmation
        self.control.set(self.customer, self.schedule, self.mode, self.by)
        log.info("night switch call=%s customer=%s schedule=%s mode=%s by=%s",
                 self.info.call_id, self.customer, self.schedule, self.mode.value, self.by)
        return []

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        if self.done:
            return []
        if isinstance(event, Answered):
            self.deadline = now + CONFIRM_SECONDS
            return [Play((Prompt(PROMPTS[self.mode], self.customer),), interruptible=False)]
        if isinstance(event, PromptFinished):
            return self._hang_up()
        if isinstance(event, FarEndHungUp):
            self.done = True
        return []

    def next_deadline(self) -> float | None:
        return None if self.done else self.deadline

    def handle_timer(self, now: float) -> list[Command]:
        if self.done or self.deadline is None or now < self.deadline:
            return []
        return self._hang_up()

    def _hang_up(self) -> list[Command]:
        self.done = True
        self.deadline = None
        return [HangUp(f"night switch: {self.schedule} {self.mode.value}")]
