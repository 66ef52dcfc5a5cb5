"""The feature-code confirmation application (ivr.feature_codes), with scripted events."""

from __future__ import annotations

from dialplan.user_settings import FeatureOutcome
from ivr.application import (
    Answered,
    CallInfo,
    FarEndHungUp,
    HangUp,
    Play,
    Prompt,
    PromptFinished,
)
from ivr.feature_codes import GUARD_SECONDS, FeatureConfirmation

INFO = CallInfo("c1", "501410", "sip:*78@acme", "tok")


def test_plays_the_outcome_then_hangs_up() -> None:
    app = FeatureConfirmation(INFO, FeatureOutcome.ON, "dnd_on")
    assert app.start(0.0) == []
    cmds = app.receive(Answered(), 1.0)
    assert len(cmds) == 1 and isinstance(cmds[0], Play)
    assert cmds[0].items[-1] == Prompt("feature-on")
    assert isinstance(app.receive(PromptFinished(), 3.0)[0], HangUp)
    assert app.receive(PromptFinished(), 4.0) == []


def test_refused_and_not_available_prompts() -> None:
    for outcome, name in ((FeatureOutcome.REFUSED, "feature-refused"),
                          (FeatureOutcome.NOT_AVAILABLE, "feature-not-available")):
        cmds = FeatureConfirmation(INFO, outcome, "x").receive(Answered(), 0.0)
        assert isinstance(cmds[0], Play) and cmds[0].items[-1] == Prompt(name)


def test_guard_timer_hangs_up_when_the_prompt_never_ends() -> None:
    app = FeatureConfirmation(INFO, FeatureOutcome.OFF, "dnd_off")
    app.receive(Answered(), 10.0)
    assert app.next_deadline() == 10.0 + GUARD_SECONDS
    assert app.handle_timer(11.0) == []
    assert isinstance(app.handle_timer(10.0 + GUARD_SECONDS)[0], HangUp)
    assert app.next_deadline() is None


def test_caller_hanging_up_ends_it_quietly() -> None:
    app = FeatureConfirmation(INFO, FeatureOutcome.ON, "dnd_on")
    app.receive(Answered(), 0.0)
    assert app.receive(FarEndHungUp(), 1.0) == []
    assert app.next_deadline() is None
