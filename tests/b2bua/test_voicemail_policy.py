"""The exhausted-call policy of voicemail: which calls divert, with which greeting."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialplan import DecisionKind, RoutingDecision, load_plan
from switch.b2bua.decisions import (
    VOICEMAIL_BUSY,
    VOICEMAIL_UNAVAILABLE,
    AnswerWith,
    Exhausted,
    GiveUp,
)
from switch.b2bua.voicemail_policy import voicemail_on_exhausted

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"
PLAN = load_plan(EXAMPLE)
ACME = PLAN.customers[0]


def to(number: str) -> RoutingDecision:
    entity = ACME.by_full_number[number]
    kind = DecisionKind.USER if number.startswith("5014") else DecisionKind.HUNT_GROUP
    return RoutingDecision(kind, target=entity)


@pytest.mark.parametrize(("exhausted", "app"), [
    (Exhausted(480, no_answer=True), VOICEMAIL_UNAVAILABLE),
    (Exhausted(486, no_answer=False), VOICEMAIL_BUSY),
    (Exhausted(600, no_answer=False), VOICEMAIL_BUSY),
    (Exhausted(480, no_answer=False), VOICEMAIL_UNAVAILABLE),
    (Exhausted(408, no_answer=False), VOICEMAIL_UNAVAILABLE),
])
def test_user_with_voicemail_diverts(exhausted: Exhausted, app: str) -> None:
    assert voicemail_on_exhausted(to("501410"), exhausted) == AnswerWith(app)


def test_other_failures_and_decline_give_up() -> None:
    assert voicemail_on_exhausted(to("501410"), Exhausted(488, no_answer=False)) == GiveUp(488)
    assert voicemail_on_exhausted(to("501410"), Exhausted(603, no_answer=False)) == GiveUp(603)


def test_workspace_users_and_groups_are_not_diverted() -> None:
    # 501420 is "Salle Garonne", a Workspace line: no voicemail (annex 16.1)
    assert voicemail_on_exhausted(to("501420"), Exhausted(480, no_answer=True)) == GiveUp(
        480, "No Answer")
    # 501411 (Bruno) has `voicemail: false` in the example
    assert voicemail_on_exhausted(to("501411"), Exhausted(486, no_answer=False)) == GiveUp(486)
    # the sales hunt group has its own closed target, never a member's mailbox
    assert voicemail_on_exhausted(to("501401"), Exhausted(486, no_answer=False)) == GiveUp(486)
