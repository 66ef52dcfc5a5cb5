"""A call queue's waiting line and its agents (issue 14; service description 2.1, 3.5.1), pure.

`QueueState` is one queue of the plan: its callers waiting in arrival order (the oldest
is served first) and its agents with their status. It never touches I/O and never reads
the clock: every method takes ``now``. The switch (`switch/services/queues.py`) feeds it
the agents' calls (from the call service's observer), the callers' arrivals and
departures (from each caller's application, `ivr/queue_caller.py`) and time; it asks
`dispatch(now)` which caller to offer to which free agent.

An agent's status follows `AGENT_TRANSITIONS`:

- ``LOGGED_OUT`` agents are never offered a call (the plan's agents start logged in; a
  feature code logs them out and in);
- ``FREE`` agents may be offered the oldest waiting caller: among the free agents those
  with the highest skill weight (the plan's ``skills``), then by the queue's strategy
  (longest idle, round robin, fewest calls), or all of them at once (ring all: the first
  to answer takes the caller, the others' offers end);
- ``OFFERED``: the agent's phone rings for a queue caller; if it does not answer within
  its ring time (or is busy) it is skipped for that caller (`SKIP_SECONDS`) and the
  next free agent is tried;
- ``BUSY``: in a call (a queue call it answered, or any other call the agent makes or
  receives);
- ``WRAP_UP``: the ``wrap_up`` seconds after a queue call, before the next offer.

Overflow: a caller who arrives when ``max_waiting`` callers already wait, or when no agent
is logged in, is not queued (`JoinOutcome`); the caller's application also sends a caller
who waited past ``max_wait`` to the overflow target.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, auto

from dialplan.model import QueueStrategy

log = logging.getLogger("ivr.queue")

# How long an agent who did not answer a caller is skipped for that caller.
SKIP_SECONDS = 30.0
# Answered within this many seconds counts toward the service level.
SERVICE_LEVEL_SECONDS = 20.0
# The estimated wait is taken from this many recent answers.
RECENT_ANSWERS = 10


class AgentStatus(Enum):
    LOGGED_OUT = auto()
    FREE = auto()
    OFFERED = auto()  # its phone rings for a queue caller
    BUSY = auto()  # in a call
    WRAP_UP = auto()  # the seconds after a queue call


class AgentInput(Enum):
    LOG_IN = auto()
    LOG_OUT = auto()
    OFFER = auto()
    OFFER_ENDED = auto()  # no answer, busy, or the caller left while it rang
    ANSWERED = auto()  # the offered queue call was answered
    CALL_STARTED = auto()  # another call rings or is answered on the agent's phone
    CALL_ENDED = auto()  # the agent's last call ended (not a queue call)
    QUEUE_CALL_ENDED = auto()  # the agent's last call ended and it was a queue call
    WRAP_DONE = auto()


_A, _AI = AgentStatus, AgentInput
AGENT_TRANSITIONS: dict[tuple[AgentStatus, AgentInput], AgentStatus] = {
    (_A.LOGGED_OUT, _AI.LOG_IN): _A.FREE,
    **{(s, _AI.LOG_OUT): _A.LOGGED_OUT for s in AgentStatus if s is not _A.LOGGED_OUT},
    (_A.FREE, _AI.OFFER): _A.OFFERED,
    (_A.OFFERED, _AI.OFFER_ENDED): _A.FREE,
    (_A.OFFERED, _AI.ANSWERED): _A.BUSY,
    (_A.OFFERED, _AI.CALL_STARTED): _A.OFFERED,  # another call rings meanwhile
    (_A.FREE, _AI.CALL_STARTED): _A.BUSY,
    (_A.WRAP_UP, _AI.CALL_STARTED): _A.BUSY,
    (_A.BUSY, _AI.CALL_STARTED): _A.BUSY,
    (_A.BUSY, _AI.CALL_ENDED): _A.FREE,
    (_A.BUSY, _AI.QUEUE_CALL_ENDED): _A.WRAP_UP,
    (_A.WRAP_UP, _AI.WRAP_DONE): _A.FREE,
}


class Outcome(Enum):
    """How a queue call ended, for its log line and the queue's counters."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"  # the caller hung up while waiting
    OVERFLOWED = "overflowed"
    CALLBACK = "callback"  # the caller hung up to be called back, keeping its place
    CALLED_BACK = "called_back"  # its place reached an agent: the agent, then it, rung


class JoinOutcome(Enum):
    QUEUED = "queued"
    FULL = "full"  # max_waiting callers already wait: overflow
    NO_AGENT = "no-agent"  # no agent logged in: overflow


@dataclass(frozen=True, slots=True)
class Joined:
    outcome: JoinOutcome
    position: int = 0  # 1 = the next caller served


@dataclass(frozen=True, slots=True)
class Offer:
    """Ring ``agent`` (a full internal number) for the waiting caller ``call_id``."""

    call_id: str
    agent: str
    callback: str | None = None  # a callback: call the agent, then this number
    others: tuple[str, ...] = ()  # ring all: these agents ring at the same time


@dataclass
class Agent:
    number: str  # full internal number
    status: AgentStatus = AgentStatus.FREE
    calls: set[str] = field(default_factory=set)  # Call-IDs on its phone (ringing/talking)
    idle_since: float = 0.0
    wrap_until: float | None = None
    answered: int = 0
    queue_call: bool = False  # its current call is a queue call (wrap-up after it)
    offered_to: str | None = None  # the caller's Call-ID while OFFERED


@dataclass
class Waiter:
    call_id: str
    caller: str
    entered: float
    agent: str | None = None  # the agent ringing for it
    skip: dict[str, float] = field(default_factory=dict)  # agent -> skipped until
    callback: str | None = None  # the number to call back (the caller hung up)


class AgentTransitionError(Exception):
    """An input an agent's status does not accept (a bug here, never a caller's)."""


@dataclass
class QueueCounters:
    answered: int = 0
    abandoned: int = 0
    overflowed: int = 0
    called_back: int = 0  # callbacks whose agent answered (the caller was then rung)
    answered_in_time: int = 0  # within SERVICE_LEVEL_SECONDS

    @property
    def service_level(self) -> float:
        """Share of answered calls answered in time (1.0 before any answer)."""
        return self.answered_in_time / self.answered if self.answered else 1.0


class QueueState:
    """One queue: waiting callers (oldest first) and agents."""

    def __init__(self, queue_id: str, agents: tuple[str, ...], *, max_waiting: int,
                 wrap_up: float, strategy: QueueStrategy = QueueStrategy.LONGEST_IDLE,
                 now: float = 0.0, skills: dict[str, int] | None = None) -> None:
        self.id = queue_id
        self.max_waiting = max_waiting
        self.wrap_up = wrap_up
        self.strategy = strategy
        self.skills: dict[str, int] = dict(skills or {})  # agent -> weight, higher first
        self.agents: dict[str, Agent] = {a: Agent(a, idle_since=now) for a in agents}
        self.waiting: dict[str, Waiter] = {}  # insertion order = arrival order
        self.counters = QueueCounters()
        self.recent_waits: deque[float] = deque(maxlen=RECENT_ANSWERS)
        self._last_offered: str | None = None  # round robin
        # told each caller's outcome and wait (the switch writes them in its call record)
        self.on_outcome: Callable[[str, Outcome, float], None] | None = None

    # -- agents --

    def _go(self, agent: Agent, event: AgentInput, now: float) -> None:
        nxt = AGENT_TRANSITIONS.get((agent.status, event))
        if nxt is None:
            raise AgentTransitionError(f"queue {self.id} agent {agent.number}: "
                                       f"{event.name} in {agent.status.name}")
        log.debug("queue %s agent %s: %s --%s--> %s", self.id, agent.number,
                  agent.status.name, event.name, nxt.name)
        if nxt is AgentStatus.FREE and agent.status is not AgentStatus.FREE:
            agent.idle_since = now
        agent.status = nxt

    def log_in(self, number: str, now: float) -> bool:
        """Log `number` in (a dynamic agent is added); False when it already was."""
        agent = self.agents.get(number)
        if agent is None:
            agent = self.agents[number] = Agent(number, AgentStatus.LOGGED_OUT, idle_since=now)
        if agent.status is not AgentStatus.LOGGED_OUT:
            return False
        self._go(agent, AgentInput.LOG_IN, now)
        if agent.calls:  # logged in from its phone, during the code's own call
            self._go(agent, AgentInput.CALL_STARTED, now)
        return True

    def log_out(self, number: str, now: float) -> bool:
        agent = self.agents.get(number)
        if agent is None or agent.status is AgentStatus.LOGGED_OUT:
            return False
        self._withdraw(agent)
        self._go(agent, AgentInput.LOG_OUT, now)
        agent.queue_call = False
        agent.wrap_until = None
        return True

    def agent_call(self, number: str, call_id: str, active: bool, now: float) -> None:
        """A call of the agent's rings or was answered (`active`), or ended."""
        agent = self.agents.get(number)
        if agent is None:
            return
        if active:
            if call_id in agent.calls:
                return
            agent.calls.add(call_id)
            if agent.status is AgentStatus.LOGGED_OUT:
                return
            if agent.status is AgentStatus.OFFERED and agent.offered_to is not None:
                self._answered(agent, now)
            else:
                self._go(agent, AgentInput.CALL_STARTED, now)
            return
        if call_id not in agent.calls:
            return
        agent.calls.discard(call_id)
        if agent.calls or agent.status is not AgentStatus.BUSY:
            return
        if agent.queue_call and self.wrap_up > 0:
            agent.queue_call = False
            self._go(agent, AgentInput.QUEUE_CALL_ENDED, now)
            agent.wrap_until = now + self.wrap_up
        else:
            agent.queue_call = False
            self._go(agent, AgentInput.CALL_ENDED, now)

    def _answered(self, agent: Agent, now: float) -> None:
        """The agent answered the caller it was offered: the caller leaves the line."""
        waiter = self.waiting.pop(agent.offered_to or "", None)
        agent.offered_to = None
        agent.queue_call = True
        agent.answered += 1
        self._go(agent, AgentInput.ANSWERED, now)
        if waiter is not None:  # ring all: the others stop ringing for it
            self._end_offers(waiter.call_id, now)
        if waiter is not None and waiter.callback is not None:
            waited = now - waiter.entered
            self.counters.called_back += 1
            log.info("queue call=%s queue=%s outcome=called_back agent=%s waited=%.1f "
                     "number=%s", waiter.call_id, self.id, agent.number, waited,
                     waiter.callback)
            self._tell(waiter.call_id, Outcome.CALLED_BACK, waited)
        elif waiter is not None:
            waited = now - waiter.entered
            self.counters.answered += 1
            if waited <= SERVICE_LEVEL_SECONDS:
                self.counters.answered_in_time += 1
            self.recent_waits.append(waited)
            log.info("queue call=%s queue=%s outcome=answered agent=%s waited=%.1f",
                     waiter.call_id, self.id, agent.number, waited)
            self._tell(waiter.call_id, Outcome.ANSWERED, waited)

    def _withdraw(self, agent: Agent) -> None:
        """An offered agent logs out: its caller goes back to waiting (unless other
        agents still ring for it)."""
        call_id, agent.offered_to = agent.offered_to, None
        waiter = self.waiting.get(call_id or "")
        if waiter is not None and not self._ringing_for(waiter.call_id):
            waiter.agent = None

    def _ringing_for(self, call_id: str) -> list[Agent]:
        return [a for a in self.agents.values() if a.offered_to == call_id]

    def _end_offers(self, call_id: str, now: float) -> None:
        """Every agent still offered `call_id` is free again (or busy with its own call)."""
        for agent in self._ringing_for(call_id):
            agent.offered_to = None
            self._go(agent, AgentInput.OFFER_ENDED, now)
            if agent.calls:
                self._go(agent, AgentInput.CALL_STARTED, now)

    @property
    def logged_in(self) -> int:
        return sum(1 for a in self.agents.values() if a.status is not AgentStatus.LOGGED_OUT)

    @property
    def free(self) -> int:
        return sum(1 for a in self.agents.values() if a.status is AgentStatus.FREE)

    # -- callers --

    def join(self, call_id: str, caller: str, now: float) -> Joined:
        if self.logged_in == 0:
            self._overflowed(call_id, "no-agent", 0.0)
            return Joined(JoinOutcome.NO_AGENT)
        if len(self.waiting) >= self.max_waiting:
            self._overflowed(call_id, "full", 0.0)
            return Joined(JoinOutcome.FULL)
        self.waiting[call_id] = Waiter(call_id, caller, now)
        position = len(self.waiting)
        log.info("queue call=%s queue=%s event=joined caller=%s position=%d", call_id,
                 self.id, caller, position)
        return Joined(JoinOutcome.QUEUED, position)

    def request_callback(self, call_id: str, number: str, now: float) -> int:
        """The caller hangs up and is called back at `number` when its place reaches an
        agent: it keeps its place (returned; 0 when it no longer waits)."""
        waiter = self.waiting.get(call_id)
        if waiter is None or waiter.agent is not None:
            return 0
        waiter.callback = number
        position = self.position(call_id)
        log.info("queue call=%s queue=%s event=callback-requested number=%s position=%d "
                 "waited=%.1f", call_id, self.id, number, position, now - waiter.entered)
        self._tell(call_id, Outcome.CALLBACK, now - waiter.entered)
        return position

    def restore_callback(self, call_id: str, number: str, entered: float) -> None:
        """A callback kept across a restart (the store's rows, oldest first) takes its
        place back in the line."""
        if call_id not in self.waiting:
            self.waiting[call_id] = Waiter(call_id, number, entered, callback=number)
            log.info("queue call=%s queue=%s event=callback-restored number=%s position=%d",
                     call_id, self.id, number, len(self.waiting))

    def position(self, call_id: str) -> int:
        """1 for the oldest waiting caller; 0 when `call_id` does not wait."""
        for i, cid in enumerate(self.waiting, 1):
            if cid == call_id:
                return i
        return 0

    def longest_wait(self, now: float) -> float:
        first = next(iter(self.waiting.values()), None)
        return now - first.entered if first is not None else 0.0

    def estimated_wait(self, call_id: str) -> float | None:
        """Seconds, from the queue's recent answers (None before any answer)."""
        if not self.recent_waits:
            return None
        average = sum(self.recent_waits) / len(self.recent_waits)
        agents = max(1, self.logged_in)
        return average * self.position(call_id) / agents

    def no_answer(self, call_id: str, agent_number: str, now: float) -> None:
        """The agent offered to `call_id` did not answer (or was busy): skip it for that
        caller a while; the caller keeps its place."""
        waiter = self.waiting.get(call_id)
        agent = self.agents.get(agent_number)
        if agent is not None and agent.offered_to == call_id:
            agent.offered_to = None
            self._go(agent, AgentInput.OFFER_ENDED, now)
            if agent.calls:
                self._go(agent, AgentInput.CALL_STARTED, now)
        if waiter is not None:
            waiter.skip[agent_number] = now + SKIP_SECONDS
            if not self._ringing_for(call_id):
                waiter.agent = None
        log.info("queue call=%s queue=%s event=no-answer agent=%s", call_id, self.id,
                 agent_number)

    def leave(self, call_id: str, outcome: Outcome, now: float) -> None:
        """The caller left the line without being answered: abandoned or overflowed."""
        waiter = self.waiting.pop(call_id, None)
        if waiter is None:
            return
        self._end_offers(call_id, now)  # it hung up while agents rang
        waited = now - waiter.entered
        if outcome is Outcome.OVERFLOWED:
            self._overflowed(call_id, "max-wait", waited)
        elif outcome is Outcome.ABANDONED:
            self.counters.abandoned += 1
            log.info("queue call=%s queue=%s outcome=abandoned waited=%.1f", call_id,
                     self.id, waited)
            self._tell(call_id, Outcome.ABANDONED, waited)

    def _overflowed(self, call_id: str, why: str, waited: float) -> None:
        self.counters.overflowed += 1
        log.info("queue call=%s queue=%s outcome=overflowed why=%s waited=%.1f", call_id,
                 self.id, why, waited)
        self._tell(call_id, Outcome.OVERFLOWED, waited)

    def _tell(self, call_id: str, outcome: Outcome, waited: float) -> None:
        if self.on_outcome is not None:
            self.on_outcome(call_id, outcome, waited)

    # -- distribution --

    def dispatch(self, now: float) -> list[Offer]:
        """Offer the oldest callers to free agents (each caller one agent at a time)."""
        self.handle_timer(now)
        offers: list[Offer] = []
        for waiter in self.waiting.values():
            if waiter.agent is not None:
                continue
            agent = self._pick(waiter, now)
            if agent is None:
                continue
            others: list[Agent] = []
            if self.strategy is QueueStrategy.RING_ALL and waiter.callback is None:
                # a callback calls one agent (the switch places one call to it)
                others = [a for a in self._free_for(waiter, now) if a is not agent]
            for offered in (agent, *others):
                self._go(offered, AgentInput.OFFER, now)
                offered.offered_to = waiter.call_id
            waiter.agent = agent.number
            self._last_offered = agent.number
            offers.append(Offer(waiter.call_id, agent.number, waiter.callback,
                                tuple(a.number for a in others)))
            log.info("queue call=%s queue=%s event=offer agent=%s%s waited=%.1f",
                     waiter.call_id, self.id, agent.number,
                     "".join(f",{a.number}" for a in others), now - waiter.entered)
        return offers

    def _free_for(self, waiter: Waiter, now: float) -> list[Agent]:
        """The free agents `waiter` may be offered: not skipped for it, and of the highest
        skill weight among them (the plan's ``skills``; unlisted agents weigh 0)."""
        free = [a for a in self.agents.values() if a.status is AgentStatus.FREE
                and waiter.skip.get(a.number, 0.0) <= now]
        if free and self.skills:
            best = max(self.skills.get(a.number, 0) for a in free)
            free = [a for a in free if self.skills.get(a.number, 0) == best]
        return free

    def _pick(self, waiter: Waiter, now: float) -> Agent | None:
        free = self._free_for(waiter, now)
        if not free:
            return None
        if self.strategy is QueueStrategy.ROUND_ROBIN:
            order = list(self.agents)
            start = order.index(self._last_offered) + 1 if self._last_offered in order else 0
            ranked = order[start:] + order[:start]
            free_numbers = {a.number for a in free}
            return next(self.agents[n] for n in ranked if n in free_numbers)
        if self.strategy is QueueStrategy.FEWEST_CALLS:
            return min(free, key=lambda a: (a.answered, a.idle_since))
        return min(free, key=lambda a: a.idle_since)  # longest idle (stable: plan order)

    # -- time --

    def next_deadline(self, now: float) -> float | None:
        """The next wrap-up end, or the next end of an agent's skip for a waiting caller
        (after ``now``): dispatch again then."""
        times = [a.wrap_until for a in self.agents.values()
                 if a.status is AgentStatus.WRAP_UP and a.wrap_until is not None]
        times += [until for w in self.waiting.values() if w.agent is None
                  for until in w.skip.values() if until > now]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        for agent in self.agents.values():
            if (agent.status is AgentStatus.WRAP_UP and agent.wrap_until is not None
                    and agent.wrap_until <= now):
                agent.wrap_until = None
                self._go(agent, AgentInput.WRAP_DONE, now)


__all__ = [
    "AGENT_TRANSITIONS", "Agent", "AgentInput", "AgentStatus", "AgentTransitionError",
    "JoinOutcome", "Joined", "Offer", "Outcome", "QueueCounters", "QueueState", "Waiter",
]
