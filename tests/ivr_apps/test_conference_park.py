"""The conference and park applications (issue 16), scripted events, no sockets."""

from __future__ import annotations

from collections.abc import Sequence

from ivr.application import (
    Answered,
    CallInfo,
    CollectDigits,
    CollectEnd,
    Digit,
    DigitsCollected,
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
from ivr.conference import (
    MAX_PARTICIPANTS,
    ConferenceApp,
    ConferenceConfig,
    ConfState,
    JoinOutcome,
    Removed,
)
from ivr.park import ParkedApp, ParkingLot, ParkState, PartnerLeft, RetrieveApp, Retrieved
from ivr.pickup import BridgeApp, PickedUp, PickupApp, PickupState
from ivr.three_way import MergeState, ThreeWayApp

INFO = CallInfo("c1", "501411", "sip:*71800@x", "tok")


class Desk:
    def __init__(self, full: bool = False, blocked: bool = False) -> None:
        self.full = full
        self.blocked = blocked
        self.joined: list[str] = []
        self.left: list[str] = []
        self.failures = 0
        self.actions: list[str] = []

    def join(self, call_id: str, caller: str, owner: bool, now: float) -> JoinOutcome:
        if self.full:
            return JoinOutcome.FULL
        self.joined.append(call_id)
        return JoinOutcome.JOINED

    def leave(self, call_id: str, now: float) -> None:
        self.left.append(call_id)

    def toggle_self_mute(self, call_id: str) -> bool:
        self.actions.append("self")
        return True

    def toggle_mute_others(self, call_id: str) -> bool:
        self.actions.append("others")
        return True

    def remove_last(self, call_id: str) -> str | None:
        self.actions.append("remove")
        return "501412"

    def pin_blocked(self, now: float) -> bool:
        return self.blocked

    def pin_failed(self, now: float) -> None:
        self.failures += 1


def prompts(cmds: Sequence[object]) -> list[str]:
    return [i.name for c in cmds if isinstance(c, Play) for i in c.items
            if isinstance(i, Prompt)]


def test_the_right_pin_joins() -> None:
    desk = Desk()
    app = ConferenceApp(INFO, desk, ConferenceConfig("acme:room:800", "4321", False))
    cmds = app.receive(Answered(), 0.0)
    assert prompts(cmds) == ["conf-enter-pin"] and any(isinstance(c, CollectDigits)
                                                       for c in cmds)
    assert app.receive(DigitsCollected("4321", CollectEnd.TERMINATOR), 1.0) == []
    assert app.state is ConfState.JOINED and desk.joined == ["c1"]
    app.receive(FarEndHungUp(), 5.0)
    assert desk.left == ["c1"] and app.state.name == "ENDED"


def test_three_wrong_pins_end_the_call_and_count_in_the_guard() -> None:
    desk = Desk()
    app = ConferenceApp(INFO, desk, ConferenceConfig("acme:room:800", "4321", False))
    app.receive(Answered(), 0.0)
    for i in range(2):
        cmds = app.receive(DigitsCollected("1111", CollectEnd.TERMINATOR), 1.0 + i)
        assert prompts(cmds) == ["conf-wrong-pin", "conf-enter-pin"]
    cmds = app.receive(DigitsCollected("1111", CollectEnd.TERMINATOR), 4.0)
    assert prompts(cmds) == ["conf-wrong-pin", "goodbye"] and desk.failures == 3
    assert app.receive(PromptFinished(False), 6.0) == [HangUp("conference: left")]
    assert desk.joined == []


def test_an_empty_pin_or_a_blocked_caller_never_joins() -> None:
    desk = Desk(blocked=True)
    app = ConferenceApp(INFO, desk, ConferenceConfig("acme:room:?", "", False))
    assert prompts(app.receive(Answered(), 0.0)) == ["goodbye"]
    assert app.state is ConfState.LEAVING
    # the guard deadline hangs up even if the prompt never ends
    assert app.next_deadline() is not None
    assert isinstance(app.handle_timer(app.next_deadline() or 0.0)[0], HangUp)


def test_the_owner_joins_without_pin_and_has_the_keys() -> None:
    desk = Desk()
    app = ConferenceApp(INFO, desk, ConferenceConfig("acme:room:800", "4321", True))
    assert app.receive(Answered(), 0.0) == [] and desk.joined == ["c1"]
    for d in "*12":
        app.receive(Digit(d, DigitSource.RFC4733, 100), 1.0)
    assert desk.actions == ["self", "others", "remove"]


def test_a_participant_has_no_owner_keys_and_can_be_removed() -> None:
    desk = Desk()
    app = ConferenceApp(INFO, desk, ConferenceConfig("acme:room:801", None, False))
    app.receive(Answered(), 0.0)
    for d in "12*":
        app.receive(Digit(d, DigitSource.RFC4733, 100), 1.0)
    assert desk.actions == ["self"]
    assert prompts(app.receive(Removed(), 2.0)) == ["conf-removed", "goodbye"]
    assert desk.left == ["c1"]


def test_a_full_room_refuses() -> None:
    app = ConferenceApp(INFO, Desk(full=True), ConferenceConfig("r", None, False))
    assert prompts(app.receive(Answered(), 0.0)) == ["conf-full", "goodbye"]
    assert MAX_PARTICIPANTS == 20


# -- park --


class ParkDesk:
    def __init__(self) -> None:
        self.lot = ParkingLot(orbits=2)
        self.hung: list[str] = []
        self.found = True

    def park(self, call_id: str, parker: str, now: float) -> int | None:
        return self.lot.park(call_id, parker)

    def unpark(self, call_id: str) -> None:
        self.lot.release(call_id)

    def retrieve(self, orbit: str, call_id: str, by: str, now: float) -> bool:
        return self.found and self.lot.take(int(orbit)) is not None

    def hung_up(self, call_id: str) -> None:
        self.hung.append(call_id)


def test_orbits_are_the_lowest_free_and_limited() -> None:
    lot = ParkingLot(orbits=2)
    assert (lot.park("a", "p"), lot.park("b", "p"), lot.park("c", "p")) == (1, 2, None)
    lot.release("a")
    assert lot.park("d", "p") == 1
    assert lot.take(2) == ("b", "p") and lot.take(2) is None


def test_parked_caller_hears_the_orbit_then_music_and_rings_back() -> None:
    desk = ParkDesk()
    app = ParkedApp(INFO, desk, "501410", 30.0, "acme")
    cmds = app.receive(Answered(), 0.0)
    assert prompts(cmds) == ["park-parked", "digit-1"]
    assert app.receive(PromptFinished(False), 3.0) == [MusicOnHold("acme")]
    assert app.next_deadline() == 30.0
    assert app.handle_timer(30.0) == [Transfer("501410")]
    assert app.state is ParkState.RINGING_BACK and desk.lot.parked == {}  # not retrievable
    assert prompts(app.receive(TransferFailed("501410", 480), 50.0)) == ["unavailable",
                                                                          "goodbye"]


def test_a_retrieved_call_stops_its_timer_and_ends_with_its_partner() -> None:
    desk = ParkDesk()
    app = ParkedApp(INFO, desk, "501410", 30.0)
    app.receive(Answered(), 0.0)
    app.receive(Retrieved("501412"), 5.0)
    assert app.state is ParkState.CONNECTED and app.next_deadline() is None
    assert app.receive(PartnerLeft(), 9.0) == [HangUp("park: the retriever hung up")]


def test_retrieve_an_empty_orbit_says_so() -> None:
    desk = ParkDesk()
    app = RetrieveApp(INFO, desk, "1")
    assert prompts(app.receive(Answered(), 0.0)) == ["park-empty", "goodbye"]
    assert app.receive(PromptFinished(False), 2.0) == [HangUp("park: goodbye")]


def test_retrieve_connects_and_reports_its_hang_up() -> None:
    desk = ParkDesk()
    desk.lot.park("parked", "501410")
    app = RetrieveApp(INFO, desk, "1")
    assert app.receive(Answered(), 0.0) == [] and app.state is ParkState.CONNECTED
    app.receive(FarEndHungUp(), 4.0)
    assert desk.hung == ["c1"]


# -- pickup --


class PickDesk:
    def __init__(self, picked: str | None) -> None:
        self.picked = picked
        self.bridged_calls: list[str] = []
        self.hung: list[str] = []

    def pick(self, call_id: str, now: float) -> str | None:
        return self.picked

    def bridged(self, call_id: str, now: float) -> None:
        self.bridged_calls.append(call_id)

    def hung_up(self, call_id: str) -> None:
        self.hung.append(call_id)


def test_pickup_with_nothing_ringing_says_so() -> None:
    app = PickupApp(INFO, PickDesk(None))
    assert prompts(app.receive(Answered(), 0.0)) == ["pickup-none", "goodbye"]
    assert app.receive(PromptFinished(False), 3.0) == [HangUp("pickup: nothing to pick up")]


def test_pickup_connects_or_gives_up_after_its_deadline() -> None:
    app = PickupApp(INFO, PickDesk("ringing-call"))
    assert app.receive(Answered(), 0.0) == [] and app.state is PickupState.CONNECTING
    app.receive(PickedUp("bridge"), 0.5)
    assert app.state.name == "CONNECTED" and app.next_deadline() is None
    assert app.receive(PartnerLeft(), 9.0) == [HangUp("pickup: the other party hung up")]
    late = PickupApp(INFO, PickDesk("ringing-call"))
    late.receive(Answered(), 0.0)
    deadline = late.next_deadline()
    assert deadline is not None
    assert prompts(late.handle_timer(deadline)) == ["pickup-none", "goodbye"]


def test_the_bridge_joins_at_once_and_reports_its_end() -> None:
    desk = PickDesk(None)
    app = BridgeApp(INFO, desk)
    app.receive(Answered(), 0.0)
    assert app.state is PickupState.CONNECTED and desk.bridged_calls == ["c1"]
    app.receive(FarEndHungUp(), 2.0)
    assert desk.hung == ["c1"]


# -- three-way --


class MergeDesk:
    def __init__(self, merged: int) -> None:
        self.merged = merged
        self.hung: list[str] = []

    def merge(self, call_id: str, now: float) -> int:
        return self.merged

    def hung_up(self, call_id: str) -> None:
        self.hung.append(call_id)


def test_three_way_merges_or_refuses() -> None:
    desk = MergeDesk(2)
    app = ThreeWayApp(INFO, desk)
    assert app.receive(Answered(), 0.0) == [] and app.state is MergeState.MERGED
    app.receive(FarEndHungUp(), 3.0)
    assert desk.hung == ["c1"]
    alone = ThreeWayApp(INFO, MergeDesk(0))
    assert prompts(alone.receive(Answered(), 0.0)) == ["feature-refused", "goodbye"]
    assert alone.receive(PromptFinished(False), 2.0) == [HangUp("three-way: nothing to merge")]
