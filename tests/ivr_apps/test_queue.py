"""Call queues (issue 14): the waiting line and its agents, and one caller's application,
with scripted events and a fake clock (no sockets)."""

from __future__ import annotations

import pytest

from dialplan.model import QueueStrategy
from ivr.application import (
    Answered,
    CallInfo,
    Digit,
    DigitSource,
    FarEndHungUp,
    HangUp,
    MusicOnHold,
    Play,
    Prompt,
    PromptFinished,
    Transfer,
    TransferFailed,
)
from ivr.queue import (
    AGENT_TRANSITIONS,
    AgentInput,
    AgentStatus,
    AgentTransitionError,
    Joined,
    JoinOutcome,
    Offer,
    Outcome,
    QueueState,
)
from ivr.queue_agent import AgentLogin
from ivr.queue_caller import AgentOffered, CallerState, QueueCallerApp, QueueCallerConfig

A1, A2, A3 = "501410", "501412", "501413"


def queue(*agents: str, max_waiting: int = 10, wrap_up: float = 5.0,
          strategy: QueueStrategy = QueueStrategy.LONGEST_IDLE) -> QueueState:
    return QueueState("support", agents or (A1, A2), max_waiting=max_waiting,
                      wrap_up=wrap_up, strategy=strategy)


# -- the waiting line --


def test_the_oldest_caller_is_offered_the_first_free_agent() -> None:
    q = queue(A1)
    q.agent_call(A1, "busy-call", True, 0.0)  # the one agent is in a call
    assert [q.join(c, "+336", t).position for c, t in (("c1", 1), ("c2", 2), ("c3", 3))] == [
        1, 2, 3]
    assert q.dispatch(4.0) == []
    q.agent_call(A1, "busy-call", False, 10.0)  # not a queue call: free at once
    assert q.dispatch(10.0) == [Offer("c1", A1)]
    assert q.agents[A1].status is AgentStatus.OFFERED
    assert q.dispatch(10.5) == []  # one caller per agent
    q.agent_call(A1, "leg-1", True, 12.0)  # the agent answered c1
    assert q.agents[A1].status is AgentStatus.BUSY
    assert list(q.waiting) == ["c2", "c3"] and q.position("c2") == 1
    assert q.counters.answered == 1 and q.recent_waits[-1] == pytest.approx(11.0)


def test_wrap_up_after_a_queue_call_then_the_next_oldest() -> None:
    q = queue(A1, wrap_up=5.0)
    q.join("c1", "x", 0.0)
    q.join("c2", "x", 1.0)
    assert q.dispatch(1.0) == [Offer("c1", A1)]
    q.agent_call(A1, "leg-1", True, 2.0)
    q.agent_call(A1, "leg-1", False, 30.0)  # the queue call ended
    assert q.agents[A1].status is AgentStatus.WRAP_UP
    assert q.next_deadline(30.0) == 35.0
    assert q.dispatch(34.9) == []
    assert q.dispatch(35.0) == [Offer("c2", A1)]


def test_an_agent_who_does_not_answer_is_skipped_for_that_caller() -> None:
    q = queue(A1, A2)
    q.join("c1", "x", 0.0)
    first = q.dispatch(0.0)
    assert first == [Offer("c1", A1)]  # both idle since 0: plan order
    q.no_answer("c1", A1, 20.0)
    assert q.position("c1") == 1  # keeps its place
    assert q.agents[A1].status is AgentStatus.FREE
    assert q.dispatch(20.0) == [Offer("c1", A2)]
    q.no_answer("c1", A2, 40.0)
    assert q.dispatch(40.0) == []  # both skipped for c1 for a while
    assert q.next_deadline(40.0) == 50.0  # A1's skip ends (20 + 30)
    assert q.dispatch(50.0) == [Offer("c1", A1)]


def test_a_skipped_agent_still_serves_the_next_caller() -> None:
    q = queue(A1)
    q.join("c1", "x", 0.0)
    q.join("c2", "x", 1.0)
    q.dispatch(1.0)
    q.no_answer("c1", A1, 5.0)
    assert q.dispatch(5.0) == [Offer("c2", A1)]


def test_overflow_on_entry_when_full_or_no_agent_logged_in() -> None:
    q = queue(A1, max_waiting=2)
    assert q.join("c1", "x", 0).outcome is JoinOutcome.QUEUED
    assert q.join("c2", "x", 0).outcome is JoinOutcome.QUEUED
    assert q.join("c3", "x", 0) == Joined(JoinOutcome.FULL)
    q2 = queue(A1)
    q2.log_out(A1, 0.0)
    assert q2.join("c1", "x", 0) == Joined(JoinOutcome.NO_AGENT)
    assert q.counters.overflowed == 1 and q2.counters.overflowed == 1


def test_a_logged_out_agent_is_not_offered_calls_and_comes_back_after_login() -> None:
    q = queue(A1, A2)
    assert q.log_out(A2, 0.0)
    assert not q.log_out(A2, 0.0)
    q.join("c1", "x", 1.0)
    q.join("c2", "x", 2.0)
    assert q.dispatch(2.0) == [Offer("c1", A1)]
    assert q.logged_in == 1
    assert q.log_in(A2, 3.0)
    assert q.dispatch(3.0) == [Offer("c2", A2)]


def test_logging_out_while_offered_puts_the_caller_back() -> None:
    q = queue(A1)
    q.join("c1", "x", 0.0)
    q.dispatch(0.0)
    q.log_out(A1, 1.0)
    assert q.waiting["c1"].agent is None and q.agents[A1].status is AgentStatus.LOGGED_OUT


def test_login_from_the_phone_during_the_codes_own_call_is_busy_until_it_ends() -> None:
    q = queue(A1)
    q.log_out(A1, 0.0)
    q.agent_call(A1, "code-call", True, 1.0)
    q.log_in(A1, 1.0)
    assert q.agents[A1].status is AgentStatus.BUSY
    q.agent_call(A1, "code-call", False, 2.0)
    assert q.agents[A1].status is AgentStatus.FREE  # no wrap-up after a non-queue call


def test_each_outcome_is_told_with_its_wait() -> None:
    q = queue(A1, max_waiting=2)
    told: list[tuple[str, Outcome, float]] = []
    q.on_outcome = lambda c, o, w: told.append((c, o, w))
    q.join("c1", "x", 0.0)
    q.join("c2", "x", 1.0)
    q.join("c3", "x", 2.0)  # full
    q.dispatch(3.0)
    q.agent_call(A1, "leg", True, 5.0)
    q.leave("c2", Outcome.ABANDONED, 9.0)
    assert told == [("c3", Outcome.OVERFLOWED, 0.0), ("c1", Outcome.ANSWERED, 5.0),
                    ("c2", Outcome.ABANDONED, 8.0)]


def test_a_caller_who_leaves_while_its_agent_rings_frees_the_agent() -> None:
    q = queue(A1)
    q.join("c1", "x", 0.0)
    q.dispatch(0.0)
    q.leave("c1", Outcome.ABANDONED, 4.0)
    assert q.agents[A1].status is AgentStatus.FREE and not q.waiting
    assert q.counters.abandoned == 1


def test_longest_idle_round_robin_and_fewest_calls() -> None:
    q = queue(A1, A2, A3)
    for a, t in ((A1, 5.0), (A2, 1.0), (A3, 3.0)):  # each became free at t
        q.agent_call(a, f"x-{a}", True, 0.0)
        q.agent_call(a, f"x-{a}", False, t)
    q.join("c1", "x", 10.0)
    assert q.dispatch(10.0) == [Offer("c1", A2)]  # free since 1.0
    rr = queue(A1, A2, A3, strategy=QueueStrategy.ROUND_ROBIN)
    offered = []
    for i in range(4):
        rr.join(f"c{i}", "x", float(i))
        (offer,) = rr.dispatch(float(i))
        offered.append(offer.agent)
        rr.no_answer(f"c{i}", offer.agent, float(i))
        rr.leave(f"c{i}", Outcome.ABANDONED, float(i))
    assert offered == [A1, A2, A3, A1]
    fc = queue(A1, A2, strategy=QueueStrategy.FEWEST_CALLS)
    fc.agents[A1].answered = 3
    fc.join("c1", "x", 0.0)
    assert fc.dispatch(0.0) == [Offer("c1", A2)]


def test_estimated_wait_comes_from_recent_answers() -> None:
    q = queue(A1)
    q.join("c1", "x", 0.0)
    assert q.estimated_wait("c1") is None
    q.dispatch(0.0)
    q.agent_call(A1, "leg", True, 90.0)  # answered after 90 s
    q.join("c2", "x", 91.0)
    q.join("c3", "x", 92.0)
    assert q.estimated_wait("c3") == pytest.approx(180.0)  # 90 s each, position 2


def test_every_agent_transition_is_in_the_table() -> None:
    q = queue(A1)
    with pytest.raises(AgentTransitionError):
        q._go(q.agents[A1], AgentInput.WRAP_DONE, 0.0)
    assert AGENT_TRANSITIONS[(AgentStatus.OFFERED, AgentInput.ANSWERED)] is AgentStatus.BUSY
    assert all((s, AgentInput.LOG_OUT) in AGENT_TRANSITIONS
               for s in AgentStatus if s is not AgentStatus.LOGGED_OUT)


# -- one caller's application --


class Desk:
    """The queue as a caller's application sees it, over a real QueueState."""

    def __init__(self, state: QueueState) -> None:
        self.state = state

    def join(self, call_id: str, caller: str, now: float) -> Joined:
        return self.state.join(call_id, caller, now)

    def position(self, call_id: str) -> int:
        return self.state.position(call_id)

    def estimated_wait(self, call_id: str) -> float | None:
        return self.state.estimated_wait(call_id)

    def agents_logged_in(self) -> int:
        return self.state.logged_in

    def no_answer(self, call_id: str, agent: str, now: float) -> None:
        self.state.no_answer(call_id, agent, now)

    def leave(self, call_id: str, outcome: Outcome, now: float) -> None:
        self.state.leave(call_id, outcome, now)

    def request_callback(self, call_id: str, caller: str, now: float) -> int:
        if not caller.startswith("+336"):  # the switch's barring check, stood in for
            return 0
        return self.state.request_callback(call_id, caller, now)


CONFIG = QueueCallerConfig("support", "acme", "voicemail:501412", max_wait=60.0,
                           announce_every=20.0, callback_key="5")


def caller(state: QueueState, call_id: str = "c1",
           config: QueueCallerConfig = CONFIG) -> QueueCallerApp:
    return QueueCallerApp(CallInfo(call_id, "+33612345678", "sip:402@x", "t"), Desk(state),
                          config)


def test_welcome_position_then_music_then_position_again() -> None:
    state = queue(A1)
    state.agent_call(A1, "busy", True, 0.0)
    state.join("c0", "x", 0.0)
    app = caller(state)
    out = app.receive(Answered(), 1.0)
    assert out == [Play((Prompt("queue-welcome", "acme"), Prompt("queue-position"),
                         Prompt("digit-2")))]
    assert app.receive(PromptFinished(), 6.0) == [MusicOnHold("acme")]
    assert app.next_deadline() == 21.0
    state.leave("c0", Outcome.ABANDONED, 10.0)
    assert app.handle_timer(21.0) == [Play((Prompt("queue-position"), Prompt("digit-1")))]
    assert app.state is CallerState.ANNOUNCING


def test_an_offered_agent_rings_and_no_answer_keeps_the_place() -> None:
    state = queue(A1, A2)
    app = caller(state)
    app.receive(Answered(), 0.0)
    app.receive(PromptFinished(), 3.0)
    (offer,) = state.dispatch(3.0)
    assert app.receive(AgentOffered(offer.agent), 3.0) == [Transfer(A1)]
    assert app.receive(TransferFailed(A1, 480, "No Answer"), 23.0) == [MusicOnHold("acme")]
    assert state.position("c1") == 1 and state.agents[A1].status is AgentStatus.FREE
    assert state.dispatch(23.0) == [Offer("c1", A2)]


def test_past_the_maximum_wait_the_caller_overflows() -> None:
    state = queue(A1)
    state.agent_call(A1, "busy", True, 0.0)
    app = caller(state)
    app.receive(Answered(), 0.0)
    app.receive(PromptFinished(), 3.0)
    for t in (20.0, 40.0):
        app.handle_timer(t)
        app.receive(PromptFinished(), t + 2)
    assert app.next_deadline() == 60.0
    assert app.handle_timer(60.0) == [Transfer("voicemail:501412")]
    assert not state.waiting and state.counters.overflowed == 1


def test_a_full_queue_overflows_at_once_and_without_target_says_goodbye() -> None:
    state = queue(A1, max_waiting=1)
    state.join("c0", "x", 0.0)
    assert caller(state).receive(Answered(), 0.0) == [Transfer("voicemail:501412")]
    bare = QueueCallerConfig("support", None, None, 60.0, 20.0)
    app = caller(state, "c2", bare)
    assert app.receive(Answered(), 0.0) == [Play((Prompt("goodbye"),), interruptible=False)]
    assert app.receive(PromptFinished(), 2.0) == [
        HangUp("queue: no agent and no overflow target")]


def test_when_every_agent_logged_out_the_next_announcement_overflows() -> None:
    state = queue(A1)
    app = caller(state)
    app.receive(Answered(), 0.0)
    app.receive(PromptFinished(), 3.0)
    state.log_out(A1, 5.0)
    assert app.handle_timer(20.0) == [Transfer("voicemail:501412")]


def test_the_caller_who_hangs_up_abandons() -> None:
    state = queue(A1)
    state.agent_call(A1, "busy", True, 0.0)
    app = caller(state)
    app.receive(Answered(), 0.0)
    assert app.receive(FarEndHungUp(), 12.0) == []
    assert not state.waiting and state.counters.abandoned == 1


def test_the_callback_key_confirms_hangs_up_and_keeps_the_place() -> None:
    state = queue(A1)
    state.agent_call(A1, "busy", True, 0.0)
    state.join("c0", "x", 0.0)
    app = caller(state)
    app.receive(Answered(), 1.0)
    app.receive(PromptFinished(), 3.0)
    assert app.receive(Digit("1", DigitSource.RFC4733), 4.0) == []  # not the queue's key
    out = app.receive(Digit("5", DigitSource.RFC4733), 5.0)
    assert out == [Play((Prompt("queue-callback-confirmed", "acme"),), interruptible=False)]
    assert app.state is CallerState.CALLBACK
    assert app.receive(PromptFinished(), 9.0) == [HangUp("queue: callback confirmed")]
    assert app.receive(FarEndHungUp(), 9.1) == []
    # the place is kept (second in line), nothing abandoned
    assert state.position("c1") == 2 and state.counters.abandoned == 0
    state.leave("c0", Outcome.ABANDONED, 10.0)
    state.agent_call(A1, "busy", False, 11.0)
    offers = state.dispatch(11.0)
    assert offers == [Offer("c1", A1, "+33612345678")]
    told: list[tuple[str, Outcome, float]] = []
    state.on_outcome = lambda cid, outcome, waited: told.append((cid, outcome, waited))
    state.agent_call(A1, "callback-leg", True, 14.0)  # the agent answered the callback
    assert told == [("c1", Outcome.CALLED_BACK, 13.0)]
    assert state.counters.called_back == 1 and state.counters.answered == 0
    assert not state.waiting


def test_a_number_that_cannot_be_called_back_keeps_waiting() -> None:
    state = queue(A1)
    state.agent_call(A1, "busy", True, 0.0)
    app = QueueCallerApp(CallInfo("c1", "anonymous", "sip:402@x", "t"), Desk(state), CONFIG)
    app.receive(Answered(), 0.0)
    app.receive(PromptFinished(), 3.0)
    out = app.receive(Digit("5", DigitSource.RFC4733), 5.0)
    assert out == [Play((Prompt("queue-callback-unavailable", "acme"),), interruptible=False)]
    assert app.receive(PromptFinished(), 8.0) == [MusicOnHold("acme")]
    assert state.position("c1") == 1 and state.waiting["c1"].callback is None


def test_no_callback_key_in_the_plan_ignores_every_key() -> None:
    state = queue(A1)
    state.agent_call(A1, "busy", True, 0.0)
    bare = QueueCallerConfig("support", "acme", None, 60.0, 20.0)
    app = caller(state, "c1", bare)
    app.receive(Answered(), 0.0)
    app.receive(PromptFinished(), 3.0)
    assert app.receive(Digit("5", DigitSource.RFC4733), 5.0) == []


def test_the_higher_skill_is_offered_first_then_the_strategy() -> None:
    state = QueueState("q", (A1, A2, A3), max_waiting=10, wrap_up=0.0,
                       skills={A2: 5, A3: 5})
    state.agents[A3].idle_since = -10.0  # A3 idle longer than A2
    state.join("c1", "x", 0.0)
    assert state.dispatch(0.0) == [Offer("c1", A3)]
    state.join("c2", "y", 0.0)
    assert state.dispatch(0.0) == [Offer("c2", A2)]  # A1 (skill 0) only when they are busy
    state.join("c3", "z", 0.0)
    assert state.dispatch(0.0) == [Offer("c3", A1)]


class Control:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, bool]] = []

    def agent_login(self, customer: str, queue: str, agent: str, login: bool) -> str | None:
        self.calls.append((customer, queue, agent, login))
        return "support" if queue == "402" else None


@pytest.mark.parametrize(("queue_ref", "login", "prompt"), [
    ("402", True, "queue-agent-in"), ("402", False, "queue-agent-out"),
    ("999", True, "feature-refused")])
def test_agent_codes_log_in_and_out_and_confirm(queue_ref: str, login: bool,
                                                prompt: str) -> None:
    control = Control()
    app = AgentLogin(CallInfo("k", "501410", "sip:*50402@x", "t"), control, "acme", queue_ref,
                     "501410", login=login)
    assert app.start(0.0) == []
    assert control.calls == [("acme", queue_ref, "501410", login)]
    assert app.receive(Answered(), 0.1) == [Play((Prompt(prompt, "acme"),),
                                                 interruptible=False)]
    assert app.receive(PromptFinished(), 2.0) == [HangUp("queue agent code")]


# -- the plan's queue fields --


def _example_with(**support: object) -> str:
    import yaml

    from tests.support.server import EXAMPLE_CONFIG

    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["customers"][0]["sites"][0]["queues"][0].update(support)
    return yaml.safe_dump(data, sort_keys=False)


def test_queue_fields_load_and_bad_ones_are_refused_naming_the_field() -> None:
    from dialplan import ConfigError, load_plan_data, parse_yaml_text

    text = _example_with(strategy="round_robin", wrap_up=2, max_wait=45, announce_every=10)
    plan = load_plan_data(parse_yaml_text(text, "q.yaml"))
    support = plan.customers[0].sites[0].queues[0]
    assert (support.strategy, support.wrap_up, support.max_wait, support.announce_every) == (
        QueueStrategy.ROUND_ROBIN, 2, 45, 10)
    for field, bad in (("strategy", "random"), ("wrap_up", -1), ("max_wait", 0),
                       ("announce_every", 1)):
        with pytest.raises(ConfigError) as exc:
            load_plan_data(parse_yaml_text(_example_with(**{field: bad}), "q.yaml"))
        assert any(field in str(i) and i.file == "q.yaml" for i in exc.value.issues), field


def test_ring_all_offers_every_free_agent_and_the_first_to_answer_wins() -> None:
    state = QueueState("q", (A1, A2, A3), max_waiting=10, wrap_up=0.0,
                       strategy=QueueStrategy.RING_ALL)
    state.agent_call(A3, "own", True, 0.0)  # busy: not rung
    state.join("c1", "x", 1.0)
    assert state.dispatch(1.0) == [Offer("c1", A1, None, (A2,))]
    assert {state.agents[a].status for a in (A1, A2)} == {AgentStatus.OFFERED}
    state.join("c2", "y", 2.0)
    assert state.dispatch(2.0) == []  # nobody free: both ring for c1
    state.agent_call(A2, "leg-a2", True, 5.0)  # A2 answered
    assert state.agents[A2].status is AgentStatus.BUSY
    assert state.agents[A1].status is AgentStatus.FREE  # its ring was cancelled
    assert state.counters.answered == 1 and "c1" not in state.waiting
    assert state.dispatch(5.0) == [Offer("c2", A1)]  # the only free agent left


def test_ring_all_where_nobody_answers_keeps_the_place_and_skips_them() -> None:
    state = QueueState("q", (A1, A2), max_waiting=10, wrap_up=0.0,
                       strategy=QueueStrategy.RING_ALL)
    app = caller(state)
    app.receive(Answered(), 0.0)
    offers = state.dispatch(0.0)
    assert offers == [Offer("c1", A1, None, (A2,))]
    assert app.receive(AgentOffered(A1, (A2,)), 0.1) == [Transfer(f"{A1},{A2}")]
    assert app.receive(TransferFailed(f"{A1},{A2}", 480), 10.0) == [MusicOnHold("acme")]
    assert all(a.status is AgentStatus.FREE for a in state.agents.values())
    assert state.position("c1") == 1 and state.dispatch(10.0) == []  # both skipped a while
    assert state.dispatch(10.0 + 31) == [Offer("c1", A1, None, (A2,))]


def test_ring_all_with_skills_rings_only_the_best() -> None:
    state = QueueState("q", (A1, A2, A3), max_waiting=10, wrap_up=0.0,
                       strategy=QueueStrategy.RING_ALL, skills={A2: 3, A3: 3})
    state.join("c1", "x", 0.0)
    (offer,) = state.dispatch(0.0)
    assert {offer.agent, *offer.others} == {A2, A3}
    assert state.agents[A1].status is AgentStatus.FREE


def test_a_callback_waiter_is_offered_to_one_agent_even_with_ring_all() -> None:
    state = QueueState("q", (A1, A2), max_waiting=10, wrap_up=0.0,
                       strategy=QueueStrategy.RING_ALL)
    state.agent_call(A1, "busy1", True, 0.0)
    state.agent_call(A2, "busy2", True, 0.0)
    state.join("c1", "x", 0.0)
    assert state.request_callback("c1", "+33612345678", 1.0) == 1
    state.agent_call(A1, "busy1", False, 2.0)
    state.agent_call(A2, "busy2", False, 2.0)
    (offer,) = state.dispatch(2.0)
    assert offer.callback == "+33612345678" and offer.others == ()
