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


class Log(Seen):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str, str]] = []

    def leg_ringing(self, user: str, call_id: str, direction: str, remote_uri: str,
                    remote_display: str | None) -> None:
        self.events.append(("ringing", user, call_id))

    def leg_answered(self, user: str, call_id: str) -> None:
        self.events.append(("answered", user, call_id))


def test_a_party_brought_in_talks_and_ends_with_the_call() -> None:
    from switch.services.call_watch import call_ended, party_joined

    seen, entry = Log(), _entry()
    entry.watched = []
    party_joined(seen, entry, "acme:501412", "y-leg", "recipient", "sip:501411@h", "Bruno")
    assert seen.events == [("ringing", "acme:501412", "y-leg"),
                           ("answered", "acme:501412", "y-leg")]
    call_ended(seen, entry)
    assert ("acme:501412", "y-leg") in seen.ended
