"""The call manager's decision table and the parsing of DTMF in SIP INFO."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialplan import DecisionKind, RoutingDecision, load_plan
from ivr.application import Answered, CallInfo, Play, Prompt
from ivr.auto_attendant import AutoAttendantApp
from ivr.diagnostics import EchoTest, RecordTest, ToneTest
from switch.b2bua.decisions import (
    TABLE,
    Exhausted,
    GiveUp,
    LegKind,
    Refuse,
    RingLegs,
    RunApplication,
    give_up,
    handling_for,
)
from switch.services.dtmf_info import parse_dtmf_info


def test_every_decision_kind_has_a_row() -> None:
    assert set(TABLE) == set(DecisionKind)


@pytest.mark.parametrize(("decision", "expected"), [
    (RoutingDecision(DecisionKind.USER), RingLegs(LegKind.DIRECTORY)),
    (RoutingDecision(DecisionKind.HUNT_GROUP), RingLegs(LegKind.DIRECTORY)),
    (RoutingDecision(DecisionKind.EXTERNAL), RingLegs(LegKind.TRUNK)),
    (RoutingDecision(DecisionKind.EMERGENCY), RingLegs(LegKind.TRUNK, emergency=True)),
    (RoutingDecision(DecisionKind.REJECT, status=404, reason="Not Found"),
     Refuse(404, "Not Found")),
    (RoutingDecision(DecisionKind.REJECT), Refuse(403, "Forbidden")),
])
def test_rows(decision: RoutingDecision, expected: object) -> None:
    assert handling_for(decision) == expected


@pytest.mark.parametrize(("feature", "app"), [
    ("echo_test", EchoTest), ("tone_test", ToneTest), ("record_test", RecordTest)])
def test_the_test_services_are_applications(feature: str, app: type) -> None:
    got = handling_for(RoutingDecision(DecisionKind.FEATURE, feature=feature))
    assert isinstance(got, RunApplication) and got.factory is app and got.name == feature


@pytest.mark.parametrize(("decision", "reason"), [
    (RoutingDecision(DecisionKind.QUEUE), "Queue Not Available Yet"),
    (RoutingDecision(DecisionKind.VOICEMAIL, feature="retrieve"), "Voicemail Not Available Yet"),
    (RoutingDecision(DecisionKind.FEATURE, feature="dnd_on"), "Feature Not Available Yet"),
])
def test_features_not_built_yet_say_so(decision: RoutingDecision, reason: str) -> None:
    got = handling_for(decision)
    assert isinstance(got, Refuse) and got.status == 501 and got.reason == reason
    assert got.warning is not None and got.warning.startswith('399 wte "')


def test_an_auto_attendant_answers_with_its_own_menu() -> None:
    plan = load_plan(str(Path(__file__).resolve().parents[2] / "config" / "example.yaml"))
    aa = plan.customers[0].sites[0].auto_attendants[0]
    got = handling_for(RoutingDecision(DecisionKind.AUTO_ATTENDANT, target=aa))
    assert isinstance(got, RunApplication) and got.name == "auto_attendant"
    app = got.factory(CallInfo("c1", "+33612345678", "sip:+33562070400@x", "t1"))
    assert isinstance(app, AutoAttendantApp) and app.config.id == "reception"
    assert app.receive(Answered(), 0.0) == [
        Play((Prompt("aa-welcome", "acme"), Prompt("aa-menu", "acme")))]


def test_an_auto_attendant_decision_without_its_entity_is_a_server_error() -> None:
    got = handling_for(RoutingDecision(DecisionKind.AUTO_ATTENDANT))
    assert isinstance(got, Refuse) and got.status == 500


def test_a_new_application_is_a_new_row() -> None:
    got = handling_for(RoutingDecision(DecisionKind.FEATURE, feature="park"),
                       {"park": EchoTest})
    assert isinstance(got, RunApplication) and got.factory is EchoTest


def test_the_default_exhausted_policy_gives_up() -> None:
    assert give_up(Exhausted(486, no_answer=False)) == GiveUp(486, None)
    assert give_up(Exhausted(480, no_answer=True)) == GiveUp(480, "No Answer")


@pytest.mark.parametrize(("ctype", "body", "expected"), [
    ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", ("5", 160)),
    ("application/dtmf-relay", b"Signal= #\r\nDuration= 250", ("#", 250)),
    ("application/dtmf-relay", b"Signal=10\r\n", ("*", 100)),  # RFC 4733 event number
    ("Application/DTMF-Relay; charset=x", b"signal=a\r\nduration=x", ("A", 100)),
    ("application/dtmf", b"7", ("7", 100)),
    ("application/dtmf-relay", b"Duration=160\r\n", None),
    ("application/dtmf-relay", b"Signal=X\r\n", None),
    ("application/sdp", b"v=0", None),
    ("application/dtmf", b"\xff", None),
])
def test_dtmf_info_bodies(ctype: str, body: bytes, expected: tuple[str, int] | None) -> None:
    assert parse_dtmf_info(ctype, body) == expected
