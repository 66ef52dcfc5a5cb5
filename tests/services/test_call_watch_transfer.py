"""Watchers of a transferor see it free once a transfer gave its place away (issue 16 with
issue 17's dialog watching), while the call itself goes on."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from switch.b2bua.effects import LegId, Side
from switch.services.call_watch import party_left


class Seen:
    def __init__(self) -> None:
        self.ended: list[tuple[str, str]] = []

    def leg_ringing(self, user: str, call_id: str, direction: str, remote_uri: str,
                    remote_display: str | None) -> None:
        raise AssertionError("nothing rings")

    def leg_answered(self, user: str, call_id: str) -> None:
        raise AssertionError("nothing answers")

    def leg_ended(self, user: str, call_id: str) -> None:
        self.ended.append((user, call_id))


def _entry() -> Any:
    customer = SimpleNamespace(id="acme")
    caller = SimpleNamespace(customer=customer, full_number="501410")
    legs = {LegId(0): SimpleNamespace(invite=SimpleNamespace(call_id="leg-0"))}
    call = SimpleNamespace(a_invite=SimpleNamespace(call_id="a-call"), answered_leg=LegId(0),
                           leg=legs.get)
    site = SimpleNamespace(customer=customer)
    return SimpleNamespace(caller=caller, call=call, leg_users={LegId(0): "501411"},
                           decision=SimpleNamespace(target=SimpleNamespace(site=site)))


def test_the_caller_that_transferred_is_free() -> None:
    seen = Seen()
    party_left(seen, _entry(), Side.CALLER)
    assert seen.ended == [("acme:501410", "a-call")]


def test_the_callee_that_transferred_is_free() -> None:
    seen = Seen()
    party_left(seen, _entry(), Side.CALLEE)
    assert seen.ended == [("acme:501411", "leg-0")]
