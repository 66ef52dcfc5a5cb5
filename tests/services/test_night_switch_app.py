"""The night switch application and its decision row, with scripted events (issue 12)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from dialplan import (
    CallContext,
    DecisionKind,
    Plan,
    RoutingDecision,
    ScheduleMode,
    load_plan,
    route,
)
from ivr.application import (
    Answered,
    CallInfo,
    FarEndHungUp,
    HangUp,
    Play,
    Prompt,
    PromptFinished,
)
from ivr.night_switch import CONFIRM_SECONDS, NightSwitch
from ivr.session import ApplicationSession
from switch.b2bua.decisions import FeatureServices, Refuse, RunApplication, handling_for

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"
INFO = CallInfo("call-9", "501410", "sip:*552@127.0.0.1", "tok9")


@pytest.fixture(scope="module")
def plan() -> Plan:
    return load_plan(EXAMPLE)


class FakeControl:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, ScheduleMode, str]] = []

    def set(self, customer: str, schedule: str, mode: ScheduleMode, by: str) -> None:
        self.calls.append((customer, schedule, mode, by))


@pytest.mark.parametrize(("mode", "prompt"), [
    (ScheduleMode.OPEN, "night-open"), (ScheduleMode.CLOSED, "night-closed"),
    (ScheduleMode.AUTO, "night-auto")])
def test_stores_the_mode_confirms_and_hangs_up(mode: ScheduleMode, prompt: str) -> None:
    control = FakeControl()
    s = ApplicationSession(NightSwitch(INFO, control, "acme", "office", mode, "501410"))
    assert s.start(0.0) == []
    assert control.calls == [("acme", "office", mode, "501410")]  # stored before the answer
    assert s.receive(Answered(), 0.1) == [Play((Prompt(prompt, "acme"),), interruptible=False)]
    commands = s.receive(PromptFinished(), 2.0)
    assert len(commands) == 1 and isinstance(commands[0], HangUp)
    assert s.ended and control.calls == [("acme", "office", mode, "501410")]


def test_hangs_up_when_the_prompt_never_ends() -> None:
    app = NightSwitch(INFO, FakeControl(), "acme", "office", ScheduleMode.CLOSED, "501410")
    app.start(0.0)
    app.receive(Answered(), 1.0)
    assert app.next_deadline() == 1.0 + CONFIRM_SECONDS
    assert app.handle_timer(5.0) == []
    commands = app.handle_timer(1.0 + CONFIRM_SECONDS)
    assert len(commands) == 1 and isinstance(commands[0], HangUp)
    assert app.next_deadline() is None


def test_caller_hanging_up_early_keeps_the_mode() -> None:
    control = FakeControl()
    app = NightSwitch(INFO, control, "acme", "office", ScheduleMode.OPEN, "501410")
    app.start(0.0)
    assert app.receive(FarEndHungUp(), 0.2) == []
    assert app.next_deadline() is None
    assert control.calls == [("acme", "office", ScheduleMode.OPEN, "501410")]


def test_decision_row_builds_the_application(plan: Plan) -> None:
    admin = plan.user_by_full_number("501410")
    decision = route(plan, CallContext(admin, None, "*552", datetime(2026, 12, 21, 10)))
    control = FakeControl()
    got = handling_for(decision, services=FeatureServices(schedules=control))
    assert isinstance(got, RunApplication) and got.name == "night_switch"
    app = got.factory(INFO)
    app.start(0.0)
    assert control.calls == [("acme", "office", ScheduleMode.CLOSED, "501410")]


def test_without_the_service_the_code_answers_501(plan: Plan) -> None:
    admin = plan.user_by_full_number("501410")
    decision = route(plan, CallContext(admin, None, "*551", datetime(2026, 12, 21, 10)))
    assert decision.kind is DecisionKind.FEATURE
    got = handling_for(decision)
    assert isinstance(got, Refuse) and got.status == 501
    bare = handling_for(RoutingDecision(DecisionKind.FEATURE, feature="night_switch"),
                        services=FeatureServices(schedules=FakeControl()))
    assert isinstance(bare, Refuse) and bare.status == 501


def test_events_out_of_order_change_nothing() -> None:
    from ivr.night_switch import NightState

    app = NightSwitch(INFO, FakeControl(), "acme", "office", ScheduleMode.CLOSED, "501410")
    app.start(0.0)
    assert app.receive(PromptFinished(), 0.1) == [] and app.state is NightState.STORED
    assert app.handle_timer(100.0) == []
    app.receive(Answered(), 0.2)
    assert app.state is NightState.CONFIRMING
    assert app.receive(Answered(), 0.3) == []  # a second answer plays nothing twice
    app.receive(PromptFinished(), 1.0)
    assert app.state is NightState.DONE and app.receive(PromptFinished(), 1.1) == []
