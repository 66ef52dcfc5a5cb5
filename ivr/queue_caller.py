"""One caller in a call queue (issue 14), pure: welcome, music, position, agent, overflow.

The caller is answered and joins the queue's line (`QueueDesk`, the switch's view of
`ivr.queue.QueueState`). What it hears:

1. the welcome (`queue-welcome`, or the customer's announcement of that name) and its
   position ("Vous êtes en position 3"), then the estimated wait when the queue has
   answered calls recently ("Temps d'attente estimé: 2 minutes");
2. the customer's music on hold; every ``announce_every`` seconds the position (and
   estimated wait) again, then the music again;
3. when the queue offers it a free agent (`AgentOffered`, delivered by the switch) the
   agent rings (`Transfer`): the caller hears ringback; if the agent answers the
   application's part is over; if not (`TransferFailed`) the caller goes back to the music
   keeping its place, and the queue skips that agent for it;
4. overflow: when the queue is full (``max_waiting``) or no agent is logged in on entry,
   when no agent is logged in any more at an announcement, or after ``max_wait`` seconds,
   the caller goes to the overflow target (`Transfer`), or hears `goodbye` when the queue
   has none;
5. the queue's callback key (the plan's ``callback_key``, none by default): the caller
   hangs up and is called back, keeping its place in the line (`QueueDesk.request_callback`:
   the switch calls the agent first when the place reaches one, then the caller's number).
   It hears `queue-callback-confirmed` and the switch hangs up. When its number cannot be
   called back (withheld, or a number the customer may not call) it hears
   `queue-callback-unavailable` and keeps waiting.

Every step is logged on one line starting with ``queue call=<Call-ID> queue=<id>``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import Enum, auto
from typing import Protocol

from dialplan.model import Queue
from ivr.application import (
    Answered,
    AppEvent,
    ApplicationBase,
    CallInfo,
    Command,
    Digit,
    FarEndHungUp,
    HangUp,
    MusicOnHold,
    Play,
    Prompt,
    PromptFinished,
    Transfer,
    TransferFailed,
)
from ivr.queue import Joined, JoinOutcome, Outcome
from voicemail.speech import say_number

log = logging.getLogger("ivr.queue_caller")

WELCOME = "queue-welcome"
POSITION = "queue-position"
WAIT = "queue-wait"
LESS_THAN_MINUTE = "queue-less-than-minute"
CALLBACK_UNAVAILABLE = "queue-callback-unavailable"
CALLBACK_CONFIRMED = "queue-callback-confirmed"
GOODBYE = "goodbye"
# The longest a last prompt may play before the call ends anyway.
PROMPT_GUARD = 60.0


@dataclass(frozen=True, slots=True)
class AgentOffered:
    """The queue offers this caller a free agent (an extra event, delivered by the
    switch's queue service through the runner's ``deliver``)."""

    agent: str  # full internal number
    others: tuple[str, ...] = ()  # ring all: these agents ring at the same time


class QueueDesk(Protocol):
    """What a caller's application asks of its queue (the switch's `QueueService`)."""

    def join(self, call_id: str, caller: str, now: float) -> Joined: ...

    def position(self, call_id: str) -> int: ...

    def estimated_wait(self, call_id: str) -> float | None: ...

    def agents_logged_in(self) -> int: ...

    def no_answer(self, call_id: str, agent: str, now: float) -> None: ...

    def leave(self, call_id: str, outcome: Outcome, now: float) -> None: ...

    def request_callback(self, call_id: str, caller: str, now: float) -> int:
        """Keep the caller's place and call it back at `caller`: its position, or 0 when
        the number cannot be called back."""
        ...


@dataclass(frozen=True, slots=True)
class QueueCallerConfig:
    queue_id: str
    customer: str | None
    overflow: str | None  # a Transfer target, None: goodbye
    max_wait: float
    announce_every: float
    callback_key: str | None = None

    @classmethod
    def for_queue(cls, queue: Queue) -> QueueCallerConfig:
        customer = getattr(queue, "customer", None)
        return cls(queue.id, customer.id if customer is not None else None,
                   str(queue.overflow_target) if queue.overflow_target is not None else None,
                   float(queue.max_wait), float(queue.announce_every),
                   getattr(queue, "callback_key", None))


class CallerState(Enum):
    WAITING = auto()  # not answered yet
    ANNOUNCING = auto()  # the welcome or the position plays
    HOLD = auto()  # music on hold
    RINGING_AGENT = auto()  # an agent rings: only TransferFailed or FarEndHungUp come
    LEAVING = auto()  # a last prompt (goodbye), then the hang-up
    OVERFLOWING = auto()  # the overflow target rings
    CALLBACK = auto()  # the callback is confirmed, then the switch hangs up
    ENDED = auto()


class CallerInput(Enum):
    ANSWER = auto()
    ANNOUNCE = auto()
    MUSIC = auto()
    RING_AGENT = auto()
    OVERFLOW = auto()
    GOODBYE = auto()
    HANG_UP = auto()
    CALLER_LEFT = auto()
    CALLBACK = auto()


_S, _I = CallerState, CallerInput
TRANSITIONS: dict[tuple[CallerState, CallerInput], CallerState] = {
    (_S.WAITING, _I.ANSWER): _S.ANNOUNCING,
    (_S.ANNOUNCING, _I.ANNOUNCE): _S.ANNOUNCING,
    (_S.HOLD, _I.ANNOUNCE): _S.ANNOUNCING,
    (_S.ANNOUNCING, _I.MUSIC): _S.HOLD,
    (_S.HOLD, _I.MUSIC): _S.HOLD,
    (_S.RINGING_AGENT, _I.MUSIC): _S.HOLD,  # the agent did not answer
    (_S.ANNOUNCING, _I.RING_AGENT): _S.RINGING_AGENT,
    (_S.HOLD, _I.RING_AGENT): _S.RINGING_AGENT,
    (_S.ANNOUNCING, _I.OVERFLOW): _S.OVERFLOWING,
    (_S.HOLD, _I.OVERFLOW): _S.OVERFLOWING,
    (_S.RINGING_AGENT, _I.OVERFLOW): _S.OVERFLOWING,  # max wait passed while it rang
    (_S.ANNOUNCING, _I.GOODBYE): _S.LEAVING,
    (_S.HOLD, _I.GOODBYE): _S.LEAVING,
    (_S.RINGING_AGENT, _I.GOODBYE): _S.LEAVING,
    (_S.OVERFLOWING, _I.GOODBYE): _S.LEAVING,  # the overflow target failed
    (_S.LEAVING, _I.HANG_UP): _S.ENDED,
    (_S.ANNOUNCING, _I.CALLBACK): _S.CALLBACK,
    (_S.HOLD, _I.CALLBACK): _S.CALLBACK,
    (_S.CALLBACK, _I.HANG_UP): _S.ENDED,
    **{(s, _I.CALLER_LEFT): _S.ENDED for s in CallerState if s is not _S.ENDED},
}


class CallerTransitionError(Exception):
    """An input the caller's state does not accept (a bug here, never the caller's)."""


class QueueCallerApp(ApplicationBase):
    """One caller in one queue."""

    def __init__(self, info: CallInfo, desk: QueueDesk, config: QueueCallerConfig) -> None:
        self.info = info
        self.desk = desk
        self.config = config
        self.state = CallerState.WAITING
        self.entered = 0.0
        self.agent: str | None = None  # the agent ringing
        self.others: tuple[str, ...] = ()  # ring all: the other agents ringing
        self._announce_at: float | None = None
        self._leave_at: float | None = None  # max wait
        self._guard: float | None = None  # LEAVING: hang up even without PromptFinished
        self.announcements = 0

    def _go(self, event: CallerInput) -> None:
        nxt = TRANSITIONS.get((self.state, event))
        if nxt is None:
            raise CallerTransitionError(f"queue caller: {event.name} in {self.state.name}")
        self.state = nxt

    def _log(self, what: str, **fields: object) -> None:
        extra = "".join(f" {k}={v}" for k, v in fields.items())
        log.info("queue call=%s queue=%s event=%s%s", self.info.call_id, self.config.queue_id,
                 what, extra)

    # -- the contract --

    def receive(self, event: AppEvent | AgentOffered, now: float) -> list[Command]:
        if self.state is CallerState.ENDED:
            return []
        if isinstance(event, FarEndHungUp):
            return self._caller_left(now)
        if isinstance(event, Answered) and self.state is CallerState.WAITING:
            return self._answered(now)
        if isinstance(event, AgentOffered):
            return self._offered(event.agent, now, event.others)
        if isinstance(event, TransferFailed):
            return self._transfer_failed(event, now)
        if isinstance(event, PromptFinished):
            if self.state is CallerState.ANNOUNCING:
                self._go(_I.MUSIC)
                return [MusicOnHold(self.config.customer)]
            if self.state in (CallerState.LEAVING, CallerState.CALLBACK):
                return self._hang_up()
        if isinstance(event, Digit) and self.config.callback_key is not None \
                and event.digit == self.config.callback_key and self.state in (
                CallerState.HOLD, CallerState.ANNOUNCING):
            return self._callback(now)
        return []

    def next_deadline(self) -> float | None:
        if self.state in (CallerState.LEAVING, CallerState.CALLBACK):
            return self._guard
        if self.state not in (CallerState.ANNOUNCING, CallerState.HOLD):
            return None
        times = [t for t in (self._announce_at, self._leave_at) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[Command]:
        if self.state in (CallerState.LEAVING, CallerState.CALLBACK):
            if self._guard is not None and now >= self._guard:
                return self._hang_up()
            return []
        if self.state not in (CallerState.ANNOUNCING, CallerState.HOLD):
            return []
        if self._leave_at is not None and now >= self._leave_at:
            self.desk.leave(self.info.call_id, Outcome.OVERFLOWED, now)
            return self._overflow(now, "max-wait")
        if self._announce_at is not None and now >= self._announce_at:
            if self.desk.agents_logged_in() == 0:
                self.desk.leave(self.info.call_id, Outcome.OVERFLOWED, now)
                return self._overflow(now, "no-agent")
            return self._announce(now, welcome=False)
        return []

    # -- steps --

    def _answered(self, now: float) -> list[Command]:
        self._go(_I.ANSWER)
        self.entered = now
        joined = self.desk.join(self.info.call_id, self.info.caller, now)
        if joined.outcome is not JoinOutcome.QUEUED:
            return self._overflow(now, joined.outcome.value)
        self._leave_at = now + self.config.max_wait
        return self._announce(now, welcome=True)

    def _announce(self, now: float, *, welcome: bool) -> list[Command]:
        position = self.desk.position(self.info.call_id)
        items: list[Prompt] = [Prompt(WELCOME, self.config.customer)] if welcome else []
        if position > 0:
            items += [Prompt(POSITION), *say_number(position)]
            estimate = self.desk.estimated_wait(self.info.call_id)
            if estimate is not None:
                items += [Prompt(WAIT), *self._minutes(estimate)]
        self.announcements += 1
        self._log("position", position=position, announcement=self.announcements)
        self._go(_I.ANNOUNCE)
        self._announce_at = now + self.config.announce_every
        return [Play(tuple(items), interruptible=True)]

    @staticmethod
    def _minutes(seconds: float) -> tuple[Prompt, ...]:
        if seconds < 60:
            return (Prompt(LESS_THAN_MINUTE),)
        minutes = min(59, math.ceil(seconds / 60))
        return (*say_number(minutes), Prompt("minute" if minutes == 1 else "minutes"))

    def _offered(self, agent: str, now: float, others: tuple[str, ...] = ()
                 ) -> list[Command]:
        if self.state not in (CallerState.ANNOUNCING, CallerState.HOLD):
            # not waiting any more (leaving, overflowing): the agents are free again
            for number in (agent, *others):
                self.desk.no_answer(self.info.call_id, number, now)
            return []
        self._go(_I.RING_AGENT)
        self.agent, self.others = agent, others
        target = ",".join((agent, *others))  # ring all: one Transfer forks to every agent
        self._log("ring-agent", agent=target, waited=f"{now - self.entered:.1f}")
        return [Transfer(target)]

    def _transfer_failed(self, event: TransferFailed, now: float) -> list[Command]:
        if self.state is CallerState.RINGING_AGENT:
            agent, self.agent = self.agent or event.target, None
            others, self.others = self.others, ()
            self._log("agent-failed", agent=",".join((agent, *others)), status=event.status)
            for number in (agent, *others):
                self.desk.no_answer(self.info.call_id, number, now)
            if self._leave_at is not None and now >= self._leave_at:
                self.desk.leave(self.info.call_id, Outcome.OVERFLOWED, now)
                return self._overflow(now, "max-wait")
            self._go(_I.MUSIC)
            return [MusicOnHold(self.config.customer)]
        if self.state is CallerState.OVERFLOWING:
            self._log("overflow-failed", target=event.target, status=event.status)
            return self._goodbye(now)
        return []

    def _overflow(self, now: float, why: str) -> list[Command]:
        target = self.config.overflow
        if target is None:
            self._log("overflow", why=why, action="goodbye")
            return self._goodbye(now)
        self._log("overflow", why=why, target=target, waited=f"{now - self.entered:.1f}")
        self._go(_I.OVERFLOW)
        return [Transfer(target)]

    def _callback(self, now: float) -> list[Command]:
        position = self.desk.request_callback(self.info.call_id, self.info.caller, now)
        if position == 0:
            self._log("callback", action="unavailable")
            self._go(_I.ANNOUNCE)
            return [Play((Prompt(CALLBACK_UNAVAILABLE, self.config.customer),),
                         interruptible=False)]
        self._log("callback", action="confirmed", position=position)
        self._go(_I.CALLBACK)
        self._guard = now + PROMPT_GUARD
        return [Play((Prompt(CALLBACK_CONFIRMED, self.config.customer),),
                     interruptible=False)]

    def _goodbye(self, now: float) -> list[Command]:
        self._go(_I.GOODBYE)
        self._guard = now + PROMPT_GUARD
        return [Play((Prompt(GOODBYE),), interruptible=False)]

    def _hang_up(self) -> list[Command]:
        callback = self.state is CallerState.CALLBACK
        self._go(_I.HANG_UP)
        return [HangUp("queue: callback confirmed" if callback
                       else "queue: no agent and no overflow target")]

    def _caller_left(self, now: float) -> list[Command]:
        if self.state in (CallerState.ANNOUNCING, CallerState.HOLD, CallerState.RINGING_AGENT):
            self.desk.leave(self.info.call_id, Outcome.ABANDONED, now)
        self._log("caller-left", waited=f"{now - self.entered:.1f}")
        self._go(_I.CALLER_LEFT)
        return []


__all__ = [
    "TRANSITIONS", "AgentOffered", "CallerInput", "CallerState", "QueueCallerApp",
    "QueueCallerConfig", "QueueDesk",
]
