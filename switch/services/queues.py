"""The call queues of the running plan (issue 14): the asyncio side of `ivr.queue`.

`QueueService` holds one `ivr.queue.QueueState` per queue of the plan and feeds it:

- the callers, through each caller's application (`ivr.queue_caller.QueueCallerApp`, the
  decision table's `queue` application, an `InContext` factory made here), which joins,
  leaves and reports an agent who did not answer through a `QueueDesk` of this service;
- the agents' calls, as the call service's `CallStateObserver` (a user's call rings, is
  answered, ends): an agent in a call is BUSY, and after a queue call in WRAP_UP;
- the agents' logins (`*50402` / `#50402`, `ivr.queue_agent.AgentLogin`), applied at
  once and written in the background (`queue_agents`, loaded at start: a restart keeps
  them; another switch sharing the database sees them at its next start);
- time: one loop timer per queue on its next wrap-up end or skip expiry.

After each change it asks the state which caller to offer to which free agent
(`QueueState.dispatch`) and delivers `AgentOffered` to that caller's application through
its runner (`ApplicationRunner.deliver`); the application rings the agent (`Transfer`).
Dispatching runs in a fresh loop callback, never inside an application's own step.

A caller who pressed the callback key hung up but kept its place; when the place reaches
a free agent the service has the switch call the agent (`switch.originate`), showing the
caller's number and the queue's name; when the agent answers, the agent's application
(`ivr.queue_callback.CallbackConnect`) rings the caller's number presenting the queue's
number (From and P-Asserted-Identity) and the two are bridged. Only the number the caller
called from is called back, and only when the customer's barring lets it be called.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from dialplan import DecisionKind, RoutingDecision, User, route_application_target
from dialplan.model import Queue
from ivr.application import AppEvent, CallApplication, CallInfo
from ivr.queue import Joined, JoinOutcome, Outcome, QueueState
from ivr.queue_agent import AgentLogin
from ivr.queue_callback import CallbackConnect
from ivr.queue_caller import AgentOffered, QueueCallerApp, QueueCallerConfig
from rating.cdr import CallRecord
from switch.b2bua.decisions import AppContext, ApplicationFactory, InContext
from switch.b2bua.originate import Presented
from switch.services.ports import PlanSource
from switch.sip import NameAddr, SipUri

if TYPE_CHECKING:
    from switch.calls import CallEntry, CallService
    from switch.originate import Originator

log = logging.getLogger("switch.queues")

QUEUE_APPLICATION = "queue"
LOGIN_APPLICATION = "queue_login"  # the FeatureName values of the codes
LOGOUT_APPLICATION = "queue_logout"
# a callback's record when its agent answered but the caller's number could not be reached
CALLBACK_FAILED = "callback_failed"


class QueueAgentStore(Protocol):
    """Where agents' logins are kept (`switch.storage.queue_agents.SqlQueueAgents`)."""

    async def store(self, customer: str, queue: str, agent: str, logged_in: bool,
                    now: float) -> None: ...

    async def logins(self) -> Sequence[AgentLoginRow]: ...


class QueueCallbackStore(Protocol):
    """Where waiting callbacks are kept (`switch.storage.queue_callbacks`)."""

    async def add(self, customer: str, queue: str, call_id: str, number: str,
                  entered_at: float) -> None: ...

    async def remove(self, customer: str, queue: str, call_id: str) -> None: ...

    async def waiting(self) -> Sequence[QueueCallbackRow]: ...


class QueueCallbackRow(Protocol):
    @property
    def customer(self) -> str: ...

    @property
    def queue(self) -> str: ...

    @property
    def call_id(self) -> str: ...

    @property
    def number(self) -> str: ...

    @property
    def entered_at(self) -> float: ...


class AgentLoginRow(Protocol):
    @property
    def customer(self) -> str: ...

    @property
    def queue(self) -> str: ...

    @property
    def agent(self) -> str: ...

    @property
    def logged_in(self) -> bool: ...


class Deliverable(Protocol):
    """What the service uses of a caller's `ApplicationRunner`."""

    closed: bool

    def deliver(self, event: AppEvent) -> None: ...


RunnerLookup = Callable[[str], Deliverable | None]
# (Call-ID, outcome, seconds waited or None): the caller's call record notes it
RecordNote = Callable[[str, str, float | None], None]


def _no_runner(call_id: str) -> Deliverable | None:
    return None


def _no_note(call_id: str, outcome: str, waited: float | None) -> None:
    return None


def call_service_hooks(calls: CallService) -> tuple[RunnerLookup, RecordNote]:
    """How the queues reach a waiting caller's application and call record, by Call-ID."""

    def runner(call_id: str) -> Deliverable | None:
        ref = calls.by_call_id.get(call_id)
        return ref.entry.app if ref is not None else None

    def note(call_id: str, outcome: str, waited: float | None) -> None:
        ref = calls.by_call_id.get(call_id)
        if ref is not None:
            ref.entry.record = dataclasses.replace(
                ref.entry.record, queue_outcome=outcome,
                queue_wait=round(waited, 1) if waited is not None else None)

    return runner, note


@dataclass
class _Entry:
    queue: Queue
    state: QueueState
    timer: asyncio.TimerHandle | None = None
    scheduled: bool = False


class QueueService:
    """Every queue's state; the call service's observer for agents' calls."""

    def __init__(self, plan: PlanSource, *, runner_for: RunnerLookup = _no_runner,
                 note: RecordNote = _no_note, store: QueueAgentStore | None = None,
                 callbacks: QueueCallbackStore | None = None,
                 clock: Callable[[], float] | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.plan = plan
        self.store = store
        self.callbacks = callbacks  # callbacks kept across a restart
        self.wall_clock = wall_clock
        self._writes: set[asyncio.Future[None]] = set()
        # One lock for every background write: tasks take it in the order they were
        # queued, so a callback's removal never commits before its insertion, nor a
        # logout before the login it follows (a restart would reload the stale row).
        self._write_lock = asyncio.Lock()
        self.runner_for = runner_for
        self.note = note
        self._clock = clock
        self.entries: dict[tuple[str, str], _Entry] = {}  # (customer, queue id)
        self.by_agent: dict[str, set[tuple[str, str]]] = {}  # "customer:number" -> queues
        # places calls for callbacks (switch/originate.py); None: callback unavailable
        self.originator: Originator | None = None

    # -- lifecycle --

    async def start(self) -> None:
        for queue in self._plan_queues():
            self._entry(queue)
        restored = 0
        if self.store is not None:  # the logins agents made with their codes
            try:
                rows = await self.store.logins()
            except Exception as exc:  # the plan's agents stay logged in
                log.warning("queues: cannot read the agents' logins (%s)", exc)
                rows = []
            now = self.now()
            for row in rows:
                entry = self.entries.get((row.customer, row.queue))
                if entry is None:
                    continue
                if row.logged_in:
                    entry.state.log_in(row.agent, now)
                    self.by_agent.setdefault(f"{row.customer}:{row.agent}", set()).add(
                        (row.customer, row.queue))
                else:
                    entry.state.log_out(row.agent, now)
                restored += 1
        kept = await self._restore_callbacks()
        log.info("queues: %d queue(s), %d agent login(s), %d callback(s) restored",
                 len(self.entries), restored, kept)

    async def _restore_callbacks(self) -> int:
        if self.callbacks is None:
            return 0
        try:
            rows = await self.callbacks.waiting()
        except Exception as exc:  # the switch runs; those callers are not called back
            log.warning("queues: cannot read the waiting callbacks (%s)", exc)
            return 0
        now, wall = self.now(), self.wall_clock()
        kept = 0
        for row in rows:  # oldest first: their places in the line
            entry = self.entries.get((row.customer, row.queue))
            if entry is None:
                continue
            entry.state.restore_callback(row.call_id, row.number,
                                         now - max(0.0, wall - row.entered_at))
            self.schedule(entry)
            kept += 1
        return kept

    async def stop(self) -> None:
        for entry in self.entries.values():
            if entry.timer is not None:
                entry.timer.cancel()
                entry.timer = None
        if self._writes:  # a code just dialed still reaches the database
            await asyncio.gather(*self._writes, return_exceptions=True)

    def now(self) -> float:
        # the applications' deadlines are loop times: so are the queues'
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def _plan_queues(self) -> Iterator[Queue]:
        for customer in self.plan.plan.customers:
            for site in customer.sites:
                yield from site.queues

    def _entry(self, queue: Queue) -> _Entry:
        customer = queue.customer.id
        key = (customer, queue.id)
        entry = self.entries.get(key)
        if entry is None:
            agents = tuple(a.full_number for a in queue.agents)
            state = QueueState(queue.id, agents, max_waiting=queue.max_waiting,
                               wrap_up=float(queue.wrap_up), strategy=queue.strategy,
                               now=self.now(), skills=dict(queue.skills))
            entry = self.entries[key] = _Entry(queue, state)
            state.on_outcome = functools.partial(self._outcome, entry)
            for number in agents:
                self.by_agent.setdefault(f"{customer}:{number}", set()).add(key)
        elif entry.queue is not queue:  # the plan was reloaded: its settings and agents
            self._refresh(entry, queue)
        return entry

    def _refresh(self, entry: _Entry, queue: Queue) -> None:
        """Take a reloaded plan's queue: new plan agents are logged in, agents no longer in
        the plan are logged out (dynamic agents stay as they are)."""
        state, key, now = entry.state, (queue.customer.id, queue.id), self.now()
        old = {a.full_number for a in entry.queue.agents}
        new = {a.full_number for a in queue.agents}
        state.max_waiting, state.wrap_up, state.strategy = (
            queue.max_waiting, float(queue.wrap_up), queue.strategy)
        state.skills = dict(queue.skills)
        for number in sorted(new - old):
            state.log_in(number, now)
            self.by_agent.setdefault(f"{key[0]}:{number}", set()).add(key)
        for number in sorted(old - new):
            state.log_out(number, now)
        entry.queue = queue
        log.info("queue %s follows the reloaded plan (agents +%d -%d)", queue.id,
                 len(new - old), len(old - new))

    def _outcome(self, entry: _Entry, call_id: str, outcome: Outcome, waited: float) -> None:
        self.note(call_id, outcome.value, waited)
        if outcome is Outcome.CALLBACK:  # kept across a restart until called back
            waiter = entry.state.waiting.get(call_id)
            if waiter is not None and waiter.callback:
                self._callback_kept(entry, call_id, waiter.callback, waited)
        elif outcome is Outcome.CALLED_BACK:
            self._callback_kept(entry, call_id, "", waited)

    def _callback_kept(self, entry: _Entry, call_id: str, number: str, waited: float) -> None:
        """Write a requested callback (or, with no number, its end) in the background."""
        store = self.callbacks
        if store is None:
            return
        customer, queue = entry.queue.customer.id, entry.queue.id
        if number:
            write = store.add(customer, queue, call_id, number, self.wall_clock() - waited)
        else:
            write = store.remove(customer, queue, call_id)
        task = asyncio.ensure_future(self._write_callback(write, call_id))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_callback(self, write: Awaitable[None], call_id: str) -> None:
        try:
            async with self._write_lock:
                await write
        except Exception as exc:  # memory has it; a restart would not
            log.warning("queue callback %s not stored (%s)", call_id, exc)

    # -- the applications (decision table rows) --

    def applications(self) -> dict[str, ApplicationFactory]:
        return {QUEUE_APPLICATION: InContext(self._caller_app),
                LOGIN_APPLICATION: InContext(self._login_app),
                LOGOUT_APPLICATION: InContext(self._login_app)}

    def _caller_app(self, info: CallInfo, ctx: AppContext) -> CallApplication:
        queue = ctx.decision.target
        assert isinstance(queue, Queue)  # the decision table's row checked it
        entry = self._entry(queue)
        return QueueCallerApp(info, _Desk(self, entry), QueueCallerConfig.for_queue(queue))

    def _login_app(self, info: CallInfo, ctx: AppContext) -> CallApplication:
        agent = ctx.caller
        login = ctx.decision.feature == LOGIN_APPLICATION
        customer = agent.customer.id if agent is not None else ""
        number = agent.full_number if agent is not None else ""
        return AgentLogin(info, self, customer, ctx.decision.argument or "", number,
                          login=login)

    def agent_login(self, customer: str, queue: str, agent: str, login: bool) -> str | None:
        """`AgentControl`: log `agent` in to or out of the queue `queue` (its extension at
        the agent's site, or its full number) of `customer`. The queue's id, or None."""
        found = self._find_queue(customer, queue, agent)
        if found is None:
            return None
        entry = self._entry(found)
        now = self.now()
        if login:
            entry.state.log_in(agent, now)
            self.by_agent.setdefault(f"{customer}:{agent}", set()).add((customer, found.id))
        else:
            entry.state.log_out(agent, now)
        log.info("queue %s agent %s logged %s (logged in: %d)", found.id, agent,
                 "in" if login else "out", entry.state.logged_in)
        self.schedule(entry)
        if self.store is not None:
            task = asyncio.ensure_future(self._write(customer, found.id, agent, login))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)
        return found.id

    async def _write(self, customer: str, queue: str, agent: str, login: bool) -> None:
        assert self.store is not None
        try:
            async with self._write_lock:
                await self.store.store(customer, queue, agent, login, self.wall_clock())
        except Exception as exc:  # memory has it; a restart would not
            log.warning("queue %s agent %s: login not stored (%s)", queue, agent, exc)

    def _find_queue(self, customer: str, ref: str, agent: str) -> Queue | None:
        for c in self.plan.plan.customers:
            if c.id != customer:
                continue
            user = c.by_full_number.get(agent)
            found = c.by_full_number.get(ref)
            if found is None and isinstance(user, User):
                found = user.site.by_extension.get(ref)
            return found if isinstance(found, Queue) else None
        return None

    # -- CallStateObserver: the agents' calls --

    def leg_ringing(self, user: str, call_id: str, direction: str, remote_uri: str,
                    remote_display: str | None) -> None:
        self._agent_call(user, call_id, True)

    def leg_answered(self, user: str, call_id: str) -> None:
        self._agent_call(user, call_id, True)

    def leg_ended(self, user: str, call_id: str) -> None:
        self._agent_call(user, call_id, False)

    def _agent_call(self, user: str, call_id: str, active: bool) -> None:
        keys = self.by_agent.get(user)
        if not keys:
            return
        number = user.partition(":")[2]
        now = self.now()
        for key in keys:
            entry = self.entries.get(key)
            if entry is None:
                continue
            try:
                entry.state.agent_call(number, call_id, active, now)
            except Exception:  # an observer must not raise on the signalling path
                log.exception("queue %s: agent %s call %s", key[1], number, call_id)
            self.schedule(entry)

    # -- dispatching --

    def schedule(self, entry: _Entry) -> None:
        """Dispatch soon, in its own loop callback (never inside an application's step)."""
        if entry.scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a unit test of the pure parts): nothing to run
            return
        entry.scheduled = True
        loop.call_soon(self._dispatch, entry)

    def _dispatch(self, entry: _Entry) -> None:
        entry.scheduled = False
        state = entry.state
        now = self.now()
        for offer in state.dispatch(now):
            if offer.callback is not None:  # the caller hung up: call the agent first
                self._call_back(entry, offer.call_id, offer.agent, offer.callback)
                continue
            runner = self.runner_for(offer.call_id)
            if runner is None or runner.closed:  # the caller is gone: free the agents
                state.leave(offer.call_id, Outcome.ABANDONED, now)
                self.schedule(entry)
                continue
            runner.deliver(cast(AppEvent, AgentOffered(offer.agent, offer.others)))
        self._arm(entry, now)

    def _arm(self, entry: _Entry, now: float) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        deadline = entry.state.next_deadline(now)
        if deadline is not None:
            entry.timer = asyncio.get_running_loop().call_at(deadline, self._dispatch, entry)

    # -- callback keeping the caller's place --

    def callback_allowed(self, queue: Queue, number: str) -> bool:
        """Only the number the caller called from, and only when the customer may call it
        (its barring profile, `route_application_target`): no toll-fraud path."""
        if self.originator is None or not number.lstrip("+").isdigit():
            return False
        decision = route_application_target(self.plan.plan, queue.site, number,
                                            dt.datetime.now(dt.UTC))
        return decision.kind in (DecisionKind.USER, DecisionKind.EXTERNAL)

    def _call_back(self, entry: _Entry, call_id: str, agent: str, number: str) -> None:
        from switch.originate import Origination

        queue, state = entry.queue, entry.state
        if self.originator is None:
            state.no_answer(call_id, agent, self.now())
            return
        domain = queue.customer.sip_domain
        # the agent sees the caller's number and the queue's name, as for a waiting caller
        to_agent = Presented(NameAddr(SipUri("sip", domain, number, params=(("user", "phone"),)),
                                      queue.name), number=number)
        own = queue.public_number or queue.full_number
        queue_uri = NameAddr(SipUri("sip", domain, own, params=(("user", "phone"),)),
                             queue.name)
        # the caller sees the queue's number (RFC 3325: asserted toward the trusted trunk)
        to_caller = Presented(queue_uri, (("P-Asserted-Identity", str(queue_uri)),), own)
        waited_from = state.waiting[call_id].entered if call_id in state.waiting else None
        customer = queue.customer.id
        now = self.now()

        def failed(status: int, reason: str) -> None:
            state.no_answer(call_id, agent, self.now())
            self.schedule(entry)

        def record(rec: CallRecord) -> CallRecord:
            return dataclasses.replace(
                rec, caller=own, queue_outcome=Outcome.CALLED_BACK.value,
                queue_wait=round(now - waited_from, 1) if waited_from is not None else None)

        def ended(placed: CallEntry) -> None:
            # the agent answered but the caller's number never did: say so in the record
            if placed.record.transferred_to is None:
                placed.record = dataclasses.replace(placed.record,
                                                    queue_outcome=CALLBACK_FAILED)
                log.info("queue call=%s queue=%s outcome=%s agent=%s number=%s", call_id,
                         queue.id, CALLBACK_FAILED, agent, number)

        log.info("queue call=%s queue=%s event=callback agent=%s number=%s", call_id,
                 queue.id, agent, number)
        self.originator.place(Origination(
            site=queue.site, target=agent, presented=to_agent,
            application=lambda info: CallbackConnect(info, queue.id, number, customer),
            then_presented=to_caller, decision=RoutingDecision(DecisionKind.QUEUE, queue),
            label=f"queue {queue.id} callback", on_failed=failed, on_ended=ended,
            record=record))

    # -- figures --

    def figures(self) -> list[dict[str, object]]:
        """Per queue, for `/metrics`."""
        now = self.now() if self.entries else 0.0
        out: list[dict[str, object]] = []
        for (customer, qid), entry in sorted(self.entries.items()):
            s, c = entry.state, entry.state.counters
            out.append({"customer": customer, "queue": qid, "waiting": len(s.waiting),
                        "longest_wait": round(s.longest_wait(now), 1),
                        "agents_logged_in": s.logged_in, "agents_free": s.free,
                        "answered": c.answered, "abandoned": c.abandoned,
                        "overflowed": c.overflowed, "called_back": c.called_back,
                        "service_level": round(c.service_level, 3)})
        return out


class _Desk:
    """`QueueDesk` of one queue for its callers' applications."""

    def __init__(self, service: QueueService, entry: _Entry) -> None:
        self.service = service
        self.entry = entry

    def join(self, call_id: str, caller: str, now: float) -> Joined:
        joined = self.entry.state.join(call_id, caller, now)
        if joined.outcome is JoinOutcome.QUEUED:
            # until an agent answers or it overflows: a caller who hangs up meanwhile has
            # its record closed before its application hears of it
            self.service.note(call_id, Outcome.ABANDONED.value, None)
        self.service.schedule(self.entry)
        return joined

    def position(self, call_id: str) -> int:
        return self.entry.state.position(call_id)

    def estimated_wait(self, call_id: str) -> float | None:
        return self.entry.state.estimated_wait(call_id)

    def agents_logged_in(self) -> int:
        return self.entry.state.logged_in

    def no_answer(self, call_id: str, agent: str, now: float) -> None:
        self.entry.state.no_answer(call_id, agent, now)
        self.service.schedule(self.entry)

    def leave(self, call_id: str, outcome: Outcome, now: float) -> None:
        self.entry.state.leave(call_id, outcome, now)
        self.service.schedule(self.entry)

    def request_callback(self, call_id: str, caller: str, now: float) -> int:
        if not self.service.callback_allowed(self.entry.queue, caller):
            log.info("queue call=%s queue=%s event=callback-refused caller=%s", call_id,
                     self.entry.queue.id, caller)
            return 0
        position = self.entry.state.request_callback(call_id, caller, now)
        self.service.schedule(self.entry)
        return position


__all__ = ["LOGIN_APPLICATION", "LOGOUT_APPLICATION", "QUEUE_APPLICATION", "QueueService",
           "call_service_hooks"]
