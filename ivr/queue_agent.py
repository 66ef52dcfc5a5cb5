"""An agent logs in to or out of a call queue with a feature code (issue 14), pure.

The agent dials the code the plan gives `queue_login` (`*50` in the example) or
`queue_logout` (`#50`) followed by the queue's extension or full number (`*50402`). The
application asks the switch's queue service (`AgentControl`) at once, answers, says the
result (`queue-agent-in`, `queue-agent-out`, or `feature-refused` when there is no such
queue of the agent's customer) and hangs up.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Protocol

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

log = logging.getLogger("ivr.queue_agent")

CONFIRM_SECONDS = 10.0
LOGGED_IN = "queue-agent-in"
LOGGED_OUT = "queue-agent-out"
REFUSED = "feature-refused"


class AgentControl(Protocol):
    """Where an agent's login is kept (the switch's `QueueService`). Returns the queue's
    id, or None when the customer has no such queue."""

    def agent_login(self, customer: str, queue: str, agent: str, login: bool) -> str | None: ...


class AgentCodeState(Enum):
    STORED = "stored"  # asked; waiting for the caller to have our 200 OK
    CONFIRMING = "confirming"
    DONE = "done"


TRANSITIONS: frozenset[tuple[AgentCodeState, AgentCodeState]] = frozenset({
    (AgentCodeState.STORED, AgentCodeState.CONFIRMING),
    (AgentCodeState.STORED, AgentCodeState.DONE),
    (AgentCodeState.CONFIRMING, AgentCodeState.DONE),
})


class AgentLogin(ApplicationBase):
    def __init__(self, info: CallInfo, control: AgentControl, customer: str, queue: str,
                 agent: str, *, login: bool) -> None:
        self.info = info
        self.control = control
        self.customer = customer
        self.queue = queue
        self.agent = agent
        self.login = login
        self.state = AgentCodeState.STORED
        self.deadline: float | None = None
        self.queue_id: str | None = None

    def _to(self, state: AgentCodeState) -> None:
        if (self.state, state) not in TRANSITIONS:
            raise RuntimeError(f"agent code: no transition {self.state} -> {state}")
        self.state = state

    def start(self, now: float) -> list[Command]:
        self.queue_id = self.control.agent_login(self.customer, self.queue, self.agent,
                                                 self.login)
        log.info("queue agent call=%s agent=%s queue=%s action=%s result=%s",
                 self.info.call_id, self.agent, self.queue,
                 "login" if self.login else "logout",
                 "refused" if self.queue_id is None else "ok")
        return []

    def receive(self, event: AppEvent, now: float) -> list[Command]:
        if self.state is AgentCodeState.DONE:
            return []
        if isinstance(event, FarEndHungUp):
            self._to(AgentCodeState.DONE)
        elif isinstance(event, Answered) and self.state is AgentCodeState.STORED:
            self._to(AgentCodeState.CONFIRMING)
            self.deadline = now + CONFIRM_SECONDS
            name = REFUSED if self.queue_id is None else LOGGED_IN if self.login else LOGGED_OUT
            return [Play((Prompt(name, self.customer),), interruptible=False)]
        elif isinstance(event, PromptFinished) and self.state is AgentCodeState.CONFIRMING:
            return self._hang_up()
        return []

    def next_deadline(self) -> float | None:
        return None if self.state is AgentCodeState.DONE else self.deadline

    def handle_timer(self, now: float) -> list[Command]:
        if self.state is not AgentCodeState.CONFIRMING or self.deadline is None \
                or now < self.deadline:
            return []
        return self._hang_up()

    def _hang_up(self) -> list[Command]:
        self._to(AgentCodeState.DONE)
        self.deadline = None
        return [HangUp("queue agent code")]


__all__ = ["AgentCodeState", "AgentControl", "AgentLogin"]
