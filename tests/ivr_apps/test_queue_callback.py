"""The agent's side of a queue callback (ivr/queue_callback.py)."""

from __future__ import annotations

from ivr.application import (
    Answered,
    CallInfo,
    FarEndHungUp,
    HangUp,
    Play,
    Prompt,
    PromptFinished,
    Transfer,
    TransferFailed,
)
from ivr.queue_callback import CallbackConnect, CallbackState

NUMBER = "+33612345678"


def app() -> CallbackConnect:
    return CallbackConnect(CallInfo("leg1", "501410", "sip:501410@x", "t"), "support",
                           NUMBER, "acme")


def test_the_agent_hears_the_announcement_then_the_caller_rings() -> None:
    a = app()
    assert a.receive(Answered(), 0.0) == [
        Play((Prompt("queue-callback-agent", "acme"),), interruptible=False)]
    assert a.receive(PromptFinished(), 3.0) == [Transfer(NUMBER)]
    assert a.state is CallbackState.CALLING


def test_a_silent_prompt_still_rings_the_caller() -> None:
    a = app()
    a.receive(Answered(), 0.0)
    assert a.next_deadline() == 30.0
    assert a.handle_timer(30.0) == [Transfer(NUMBER)]


def test_an_unreachable_caller_is_told_to_the_agent_then_the_call_ends() -> None:
    a = app()
    a.receive(Answered(), 0.0)
    a.receive(PromptFinished(), 3.0)
    assert a.receive(TransferFailed(NUMBER, 486), 9.0) == [
        Play((Prompt("queue-callback-failed", "acme"),), interruptible=False)]
    assert a.receive(PromptFinished(), 11.0) == [HangUp("queue callback: caller unreachable")]
    assert a.state is CallbackState.DONE


def test_the_agent_hanging_up_ends_it() -> None:
    a = app()
    a.receive(Answered(), 0.0)
    assert a.receive(FarEndHungUp(), 1.0) == []
    assert a.state is CallbackState.DONE and a.next_deadline() is None
