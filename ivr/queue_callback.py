"""The agent's side of a queue callback (issue 14), pure.

A waiting caller pressed the queue's callback key and hung up; its place in the line
reached a free agent. The switch called the agent first (`switch.originate`); this
application runs on the agent's answered call:

1. the agent hears who it is for (`queue-callback-agent`: "a callback for the queue");
2. the caller's number rings (`Transfer`), presenting the queue's number; the agent hears
   ringback; when the caller answers the two talk and the application's part is over;
3. if the caller cannot be reached, the agent hears `queue-callback-failed` and the call
   ends.

States follow `TRANSITIONS`; every step is logged on one line starting with
``queue callback call=<Call-ID>``.
"""

from __future__ import annotations

import logging
from enum import Enum, auto

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
    Transfer,
    TransferFailed,
)

log = logging.getLogger("ivr.queue_callback")

ANNOUNCE = "queue-callback-agent"
FAILED = "queue-callback-failed"
# callback on busy (*37, `ivr.busy_callback`) uses the same steps with its own prompts
BUSY_FREE = "busy-callback-free"
BUSY_FAILED = "busy-callback-failed"
PROMPT_GUARD = 30.0  # the longest a prompt may play before the next step anyway


class CallbackState(Enum):
    WAITING = auto()  # the agent's call is being set up
    ANNOUNCING = auto()
    CALLING = auto()  # the caller's number rings
    FAILING = auto()  # the failure prompt plays
    DONE = auto()


TRANSITIONS: dict[tuple[CallbackState, CallbackState], str] = {
    (CallbackState.WAITING, CallbackState.ANNOUNCING): "agent answered",
    (CallbackState.ANNOUNCING, CallbackState.CALLING): "announcement over",
    (CallbackState.CALLING, CallbackState.FAILING): "caller unreachable",
    (CallbackState.CALLING, CallbackState.DONE): "caller answered",
    (CallbackState.FAILING, CallbackState.DONE): "prompt over",
    **{(s, CallbackState.DONE): "agent hung up" for s in (
        CallbackState.WAITING, CallbackState.ANNOUNCING, CallbackState.FAILING)},
}


class CallbackConnect(ApplicationBase):
    """Announce the callback to the party the switch called first, then ring `number`
    (a queue's agent then the caller; for `*37` the caller then the user now free)."""

    def __init__(self, info: CallInfo, queue_id: str, number: str,
                 customer: str | None, *, announce: str = ANNOUNCE,
                 failed: str = FAILED) -> None:
        self.info = info
        self.queue_id = queue_id
        self.number = number
        self.customer = customer
        self.announce = announce
        self.failed = failed
        self.state = CallbackState.WAITING
        self._guard: float | None = None

    def _go(self, state: CallbackState) -> None:
        if (self.state, state) not in TRANSITIONS:
            raise RuntimeError(f"queue callback: {self.state.name} -> {state.name}")
        self.state = state

    def _log(self, what: str) -> None:
        log.info("queue callback call=%s queue=%s number=%s event=%s", self.info.call_id,
                 self.queue_id, self.number, what)

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        if isinstance(event, FarEndHungUp):
            if self.state is not CallbackState.DONE and self.state is not CallbackState.CALLING:
                self._go(CallbackState.DONE)
            self._log("agent-left")
            return []
        if isinstance(event, Answered) and self.state is CallbackState.WAITING:
            self._go(CallbackState.ANNOUNCING)
            self._guard = now + PROMPT_GUARD
            self._log("announce")
            return [Play((Prompt(self.announce, self.customer),), interruptible=False)]
        if isinstance(event, PromptFinished):
            if self.state is CallbackState.ANNOUNCING:
                return self._call()
            if self.state is CallbackState.FAILING:
                return self._end()
        if isinstance(event, TransferFailed) and self.state is CallbackState.CALLING:
            self._go(CallbackState.FAILING)
            self._guard = now + PROMPT_GUARD
            self._log(f"caller-unreachable status={event.status}")
            return [Play((Prompt(self.failed, self.customer),), interruptible=False)]
        return []

    def next_deadline(self) -> float | None:
        if self.state in (CallbackState.ANNOUNCING, CallbackState.FAILING):
            return self._guard
        return None

    def handle_timer(self, now: float) -> list[Command]:
        if self._guard is None or now < self._guard:
            return []
        if self.state is CallbackState.ANNOUNCING:
            return self._call()
        if self.state is CallbackState.FAILING:
            return self._end()
        return []

    def _call(self) -> list[Command]:
        self._go(CallbackState.CALLING)
        self._guard = None
        self._log("ring-caller")
        return [Transfer(self.number)]

    def _end(self) -> list[Command]:
        self._go(CallbackState.DONE)
        self._guard = None
        return [HangUp("queue callback: caller unreachable")]


__all__ = ["TRANSITIONS", "CallbackConnect", "CallbackState"]
