"""The conference room service (issue 16) with fake endpoints, and the switch's own
INVITE tokens: no sockets."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from dialplan import load_plan
from ivr.application import AppEvent
from ivr.conference import MAX_PARTICIPANTS, JoinOutcome
from media.codecs import Pcm
from media.conference import FRAME
from media.player import Source
from switch.b2bua.legs import LocalAddress
from switch.internal_calls import HEADER, InternalInvites
from switch.services.conferences import ConferenceService
from switch.sip import NameAddr, parse_uri
from switch.transaction import Peer
from tests.support.server import EXAMPLE_CONFIG


class FakeEndpoint:
    def __init__(self) -> None:
        self.source: Any = None
        self.sink: Callable[[Pcm | None], None] | None = None

    def play_source(self, source: Source) -> None:
        self.source = source

    def set_sink(self, sink: Callable[[Pcm | None], None] | None) -> None:
        self.sink = sink


class FakeRunner:
    def __init__(self) -> None:
        self.media = FakeEndpoint()
        self.closed = False
        self.events: list[AppEvent] = []

    def deliver(self, event: AppEvent) -> None:
        self.events.append(event)


def service(runners: dict[str, FakeRunner]) -> ConferenceService:
    plan = SimpleNamespace(plan=load_plan(EXAMPLE_CONFIG))
    return ConferenceService(plan, member_for=runners.get, now=lambda: 0.0)  # type: ignore[arg-type]


def test_joined_endpoints_hear_the_others_through_the_room() -> None:
    runners = {c: FakeRunner() for c in ("a", "b", "c")}
    svc = service(runners)
    for i, c in enumerate(runners):
        assert svc.join("acme:room:800", c, f"50141{i}", owner=i == 0) is JoinOutcome.JOINED
    for i, (_, r) in enumerate(runners.items()):
        assert r.media.sink is not None
        r.media.sink(np.full(FRAME, 10 ** i, np.int16))  # 1, 10, 100
    for _ in range(10):  # past the join cues
        svc.tick(0.0)
        for r in runners.values():
            r.media.source.read(FRAME)
        for i, r in enumerate(runners.values()):
            assert r.media.sink is not None
            r.media.sink(np.full(FRAME, 10 ** i, np.int16))
    svc.tick(0.0)
    heard = {c: int(r.media.source.read(FRAME)[0]) for c, r in runners.items()}
    assert heard == {"a": 110, "b": 101, "c": 11}
    svc.leave("acme:room:800", "b")
    assert runners["b"].media.sink is None
    svc.leave("acme:room:800", "a")
    svc.leave("acme:room:800", "c")
    assert svc.rooms == {}


def test_the_21st_participant_is_refused() -> None:
    runners = {f"c{i}": FakeRunner() for i in range(MAX_PARTICIPANTS + 1)}
    svc = service(runners)
    outcomes = [svc.join("r", c, c, False) for c in runners]
    assert outcomes.count(JoinOutcome.JOINED) == MAX_PARTICIPANTS
    assert outcomes[-1] is JoinOutcome.FULL


def test_the_owner_mutes_the_others() -> None:
    runners = {c: FakeRunner() for c in ("owner", "x")}
    svc = service(runners)
    svc.join("r", "owner", "501410", True)
    svc.join("r", "x", "501411", False)
    assert svc.toggle_mute_others("r", "owner") is True
    assert svc.rooms["r"].mixer.muted("x") and not svc.rooms["r"].mixer.muted("owner")
    assert svc.toggle_mute_others("r", "owner") is False


async def test_the_owner_removes_the_last_one_joined() -> None:
    runners = {c: FakeRunner() for c in ("owner", "x", "y")}
    svc = service(runners)
    for c in runners:
        svc.join("r", c, c, c == "owner")
    assert svc.remove_last("r", "owner") == "y"
    import asyncio
    await asyncio.sleep(0)
    assert [type(e).__name__ for e in runners["y"].events] == ["Removed"]


# -- the switch's own INVITEs --


def _invite(token: str | None, call_id: str = "c1") -> Any:
    headers = {HEADER: token} if token is not None else {}
    return SimpleNamespace(headers=headers, call_id=call_id)


def test_an_internal_token_is_good_once_from_the_switch_only() -> None:
    now = [0.0]
    local = LocalAddress("127.0.0.1", 5060, 5061)
    internal = InternalInvites(local, clock=lambda: now[0])
    user = load_plan(EXAMPLE_CONFIG).user_by_full_number("501410")
    assert user is not None
    target = internal.target(user, "*68", NameAddr(parse_uri("sip:501410@x")))
    token = dict(target.identity_headers)[HEADER]
    assert len(token) >= 20
    own, other = Peer("UDP", "127.0.0.1", 5060), Peer("UDP", "127.0.0.1", 40000)
    assert internal.claim(_invite(token), other) is None  # not from the switch itself
    assert internal.claim(_invite("guess"), own) is None
    claimed = internal.claim(_invite(token), own)
    assert claimed is not None and claimed.user is user
    assert internal.key("c1") == "c1;internal"
    assert internal.claim(_invite(token), own) is None  # once
    later = internal.target(user, "*68", NameAddr(parse_uri("sip:501410@x")))
    now[0] = 100.0  # past the transaction's lifetime
    assert internal.claim(_invite(dict(later.identity_headers)[HEADER], "c2"), own) is None




def _ctx(caller: str | None, feature: str, argument: str | None) -> Any:
    from dialplan import DecisionKind, RoutingDecision
    from switch.b2bua.decisions import AppContext
    plan = load_plan(EXAMPLE_CONFIG)
    user = plan.user_by_full_number(caller) if caller else None
    decision = RoutingDecision(DecisionKind.FEATURE, target=user, feature=feature,
                               argument=argument)
    return AppContext(decision, user, "127.0.0.1")


@pytest.mark.parametrize(("caller", "feature", "argument", "room", "pin", "owner"), [
    ("501410", "conference_room", "800", "acme:room:800", "4321", True),
    ("501411", "conference_room", "800", "acme:room:800", "4321", False),
    ("501411", "conference_room", "999", "acme:room:?", "", False),  # unknown: no entry
    ("501412", "personal_conference", None, "acme:pcn:501412", "2468", True),
    ("501410", "personal_conference", "412", "acme:pcn:501412", "2468", False),
    ("501410", "personal_conference", "501412", "acme:pcn:501412", "2468", False),
    ("501412", "personal_conference", "411", "acme:pcn:?", "", False),  # not a suite user
    ("501410", "personal_conference", None, "acme:pcn:?", "", False),  # calling pack
])
def test_which_room_and_pin_a_code_reaches(caller: str, feature: str, argument: str | None,
                                           room: str, pin: str, owner: bool) -> None:
    from ivr.application import CallInfo
    from ivr.conference import ConferenceApp
    svc = service({})
    factory = svc.applications()[feature]
    app = factory.make(CallInfo("c", caller, "x", "t"), _ctx(caller, feature, argument))  # type: ignore[union-attr]
    assert isinstance(app, ConferenceApp)
    assert (app.config.room, app.config.pin, app.config.owner) == (room, pin, owner)
