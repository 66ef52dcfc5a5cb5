"""The switch's queue service (issue 14) without sockets: the example's support queue, its
callers' applications, offers delivered to their runners, the agents' calls from the
observer, login codes, figures, and a reloaded plan."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from dialplan import DecisionKind, RoutingDecision, load_plan
from dialplan.model import Queue
from ivr.application import Answered, AppEvent, CallInfo, Transfer
from ivr.queue import AgentStatus
from ivr.queue_caller import AgentOffered, QueueCallerApp
from rating.cdr import CallRecord
from switch.b2bua.decisions import AppContext, InContext, RunApplication, handling_for
from switch.services.queues import QUEUE_APPLICATION, QueueService

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"


class Runner:
    def __init__(self, app: QueueCallerApp) -> None:
        self.app = app
        self.closed = False
        self.events: list[Any] = []
        self.commands: list[Any] = []

    def deliver(self, event: AppEvent) -> None:
        self.events.append(event)
        self.commands.extend(self.app.receive(event, 0.0))


def plan_with(tmp: Path, **support: Any) -> Any:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["customers"][0]["sites"][0]["queues"][0].update(support)
    path = tmp / "plan.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_plan(path)


def support_of(plan: Any) -> Queue:
    queue = plan.customers[0].sites[0].queues[0]
    assert isinstance(queue, Queue) and queue.id == "support"
    return queue


def outcome(records: dict[str, tuple[str, float | None]], call_id: str) -> str:
    return records[call_id][0]


def status(state: Any, agent: str) -> AgentStatus:
    found: AgentStatus = state.agents[agent].status
    return found


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_caller_is_offered_the_free_agent_and_answered(tmp_path: Path) -> None:
    plan = plan_with(tmp_path)
    records: dict[str, tuple[str, float | None]] = {}
    runners: dict[str, Runner] = {}
    service = QueueService(SimpleNamespace(plan=plan), runner_for=runners.get,
                           note=lambda c, o, w: records.__setitem__(c, (o, w)))
    await service.start()
    queue = support_of(plan)
    decision = RoutingDecision(DecisionKind.QUEUE, target=queue)
    handling = handling_for(decision, service.applications())
    assert isinstance(handling, RunApplication) and handling.name == QUEUE_APPLICATION
    assert isinstance(handling.factory, InContext)
    app = handling.factory.make(CallInfo("c1", "+33612345678", "sip:402@x", "t"),
                                AppContext(decision, None, "203.0.113.5"))
    assert isinstance(app, QueueCallerApp)
    runners["c1"] = Runner(app)
    app.receive(Answered(), service.now())
    assert records["c1"] == ("abandoned", None)  # until answered or overflowed
    await settle()
    assert runners["c1"].events == [AgentOffered("501410")]
    assert runners["c1"].commands == [Transfer("501410")]
    service.leg_answered("acme:501410", "agent-leg")  # the agent answered
    assert outcome(records, "c1") == "answered"
    (figures,) = service.figures()
    assert figures["answered"] == 1 and figures["waiting"] == 0
    assert figures["agents_logged_in"] == 2 and figures["agents_free"] == 1
    state = next(iter(service.entries.values())).state
    assert status(state, "501410") is AgentStatus.BUSY
    service.leg_ended("acme:501410", "agent-leg")
    assert status(state, "501410") is AgentStatus.WRAP_UP
    await service.stop()


async def test_a_caller_whose_call_is_gone_frees_the_agent(tmp_path: Path) -> None:
    plan = plan_with(tmp_path)
    service = QueueService(SimpleNamespace(plan=plan))  # no runner for anyone
    await service.start()
    state = next(iter(service.entries.values())).state
    state.join("gone", "x", service.now())
    service.schedule(next(iter(service.entries.values())))
    await settle()
    assert not state.waiting and state.counters.abandoned == 1
    assert state.agents["501410"].status is AgentStatus.FREE
    await service.stop()


class SlowFirstWrite:
    """A login store whose first write is slow (a busy database): what it keeps is what a
    restart would reload."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], bool] = {}
        self.writes = 0

    async def store(self, customer: str, queue: str, agent: str, login: bool,
                    at: float) -> None:
        self.writes += 1
        if self.writes == 1:
            await asyncio.sleep(0.05)
        self.rows[(customer, queue, agent)] = login

    async def logins(self) -> list[Any]:
        return []


async def test_quick_logout_then_login_is_stored_in_the_order_dialed(tmp_path: Path) -> None:
    store = SlowFirstWrite()
    service = QueueService(SimpleNamespace(plan=plan_with(tmp_path)), store=store)
    await service.start()
    assert service.agent_login("acme", "402", "501412", False) == "support"
    assert service.agent_login("acme", "402", "501412", True) == "support"
    await service.stop()  # the background writes are done
    assert store.writes == 2
    assert store.rows[("acme", "support", "501412")] is True  # the last code dialed wins


async def test_agent_codes_by_extension_or_number_of_the_agents_customer(
        tmp_path: Path) -> None:
    plan = plan_with(tmp_path)
    service = QueueService(SimpleNamespace(plan=plan))
    await service.start()
    assert service.agent_login("acme", "402", "501412", False) == "support"
    assert service.figures()[0]["agents_logged_in"] == 1
    assert service.agent_login("acme", "501402", "501412", True) == "support"
    assert service.figures()[0]["agents_logged_in"] == 2
    assert service.agent_login("acme", "999", "501412", True) is None
    assert service.agent_login("other", "402", "501412", True) is None
    # a dynamic agent of the customer: its calls are watched from then on
    assert service.agent_login("acme", "402", "501411", True) == "support"
    service.leg_ringing("acme:501411", "x", "recipient", "sip:a@b", None)
    state = next(iter(service.entries.values())).state
    assert state.agents["501411"].status is AgentStatus.BUSY
    await service.stop()


async def test_a_reloaded_plan_changes_the_agents_and_settings(tmp_path: Path) -> None:
    first = plan_with(tmp_path)
    holder = SimpleNamespace(plan=first)
    service = QueueService(holder)
    await service.start()
    second = plan_with(tmp_path, agents=["501410", "501411"], wrap_up=3, max_waiting=4)
    holder.plan = second
    queue = support_of(second)
    service._entry(queue)
    state = next(iter(service.entries.values())).state
    assert state.agents["501411"].status is AgentStatus.FREE
    assert state.agents["501412"].status is AgentStatus.LOGGED_OUT
    assert (state.wrap_up, state.max_waiting) == (3.0, 4)
    assert service.entries[("acme", "support")].queue is queue
    await service.stop()


def test_a_queue_rings_its_agents_without_their_mailbox_and_shows_its_name(
        tmp_path: Path) -> None:
    from switch.b2bua.assembly import LegTarget
    from switch.divert import queue_member, shown_as_queue
    from switch.sip.address import parse_name_addr
    from switch.transaction import Peer

    plan = plan_with(tmp_path, overflow="501412")
    queue = support_of(plan)
    users = plan.customers[0].by_full_number
    entry: Any = SimpleNamespace(decision=RoutingDecision(DecisionKind.QUEUE, target=queue))
    to_agent = RoutingDecision(DecisionKind.USER, target=users["501410"])
    assert queue_member(entry, to_agent)
    # the overflow target is a user: it keeps its own forwarding and mailbox
    assert not queue_member(entry, RoutingDecision(DecisionKind.USER, target=users["501412"]))
    # an auto-attendant's transfer is no queue's
    other: Any = SimpleNamespace(decision=RoutingDecision(DecisionKind.AUTO_ATTENDANT))
    assert not queue_member(other, to_agent)
    leg = LegTarget("sip:501410@192.0.2.1", Peer("UDP", "192.0.2.1", 0),
                    parse_name_addr("<sip:501410@acme>"),
                    parse_name_addr('"Bob" <sip:+33612345678@acme>'), user="501410")
    ((shown,),) = shown_as_queue(entry, [[leg]])
    assert shown.from_.display == "Support" and "+33612345678" in str(shown.from_.uri)


class FakeOriginator:
    def __init__(self) -> None:
        self.placed: list[Any] = []

    def place(self, spec: Any) -> None:
        self.placed.append(spec)


async def test_a_callback_calls_the_agent_as_the_caller_then_the_caller_as_the_queue(
        tmp_path: Path) -> None:
    plan = plan_with(tmp_path, callback_key="5", skills={"501412": 7})
    queue = support_of(plan)
    assert queue.callback_key == "5" and queue.skills == (("501412", 7),)
    records: dict[str, tuple[str, float | None]] = {}
    service = QueueService(SimpleNamespace(plan=plan),
                           note=lambda c, o, w: records.__setitem__(c, (o, w)))
    originator = FakeOriginator()
    service.originator = originator  # type: ignore[assignment]
    await service.start()
    entry = next(iter(service.entries.values()))
    for agent in ("501410", "501412"):
        service.leg_answered(f"acme:{agent}", f"own-{agent}")  # both busy
    desk = service._caller_app(CallInfo("c1", "+33612345678", "sip:402@x", "t"),
                               AppContext(RoutingDecision(DecisionKind.QUEUE, queue), None,
                                          "203.0.113.5")).desk  # type: ignore[attr-defined]
    desk.join("c1", "+33612345678", service.now())
    # only the number the caller called from, and only one the customer may call
    assert desk.request_callback("c1", "anonymous", service.now()) == 0
    assert desk.request_callback("c1", "+33899123456", service.now()) == 0  # premium: barred
    assert desk.request_callback("c1", "+33612345678", service.now()) == 1
    assert records["c1"][0] == "callback"
    service.leg_ended("acme:501410", "own-501410")
    service.leg_ended("acme:501412", "own-501412")  # the higher skill
    await settle()
    (spec,) = originator.placed
    assert spec.target == "501412" and spec.site is queue.site
    assert str(spec.presented.from_.uri).startswith("sip:+33612345678@")
    assert spec.presented.from_.display == "Support"
    assert spec.then_presented.number == "+33562070402"
    assert ("P-Asserted-Identity", str(spec.then_presented.from_)) in spec.then_presented.headers
    # the agent does not answer: skipped for that caller, which keeps its place
    spec.on_failed(480, "no answer")
    assert entry.state.position("c1") == 1
    assert entry.state.agents["501412"].status is AgentStatus.FREE
    await settle()
    (_, again) = originator.placed
    assert again.target == "501410"
    service.leg_answered("acme:501410", "callback-leg")  # the agent answered the callback
    assert records["c1"][0] == "called_back"
    (figures,) = service.figures()
    assert figures["called_back"] == 1 and figures["answered"] == 0
    # the record says so when the caller's number never answered the agent's call
    opened = again.record(CallRecord("r1", "leg", "501410", "501410", "sip:501410@x",
                                     "queue", "01", "acme", 0.0))
    assert opened.queue_outcome == "called_back" and opened.caller == "+33562070402"
    placed = SimpleNamespace(record=opened)
    again.on_ended(placed)
    assert placed.record.queue_outcome == "callback_failed"
    reached = SimpleNamespace(record=dataclasses.replace(opened, transferred_to="+336"))
    again.on_ended(reached)
    assert reached.record.queue_outcome == "called_back"
    await service.stop()


def test_a_bad_callback_key_or_skill_is_refused_with_its_field(tmp_path: Path) -> None:
    from dialplan import ConfigError

    try:
        plan_with(tmp_path, callback_key="55", skills={"501410": 500, "509999": 1})
    except ConfigError as exc:
        text = str(exc)
    else:
        raise AssertionError("a bad plan loaded")
    assert "callback_key" in text and "0-100" in text and "509999" in text
