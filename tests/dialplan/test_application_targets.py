"""Where a call application sends its caller (`route_application_target`): menu keys, dial
by extension, mailboxes and external numbers, from the application's site."""

from __future__ import annotations

from datetime import datetime

import pytest

from dialplan import DecisionKind, Plan, route_application_target
from dialplan.model import Site

K = DecisionKind
MONDAY_10 = datetime(2026, 12, 21, 10, 0)
MONDAY_20 = datetime(2026, 12, 21, 20, 0)


def _toulouse(plan: Plan) -> Site:
    return plan.customers[0].sites_by_code["01"]


@pytest.mark.parametrize(("target", "kind", "number"), [
    ("501410", K.USER, "501410"),  # full internal number
    ("411", K.USER, "501411"),  # short extension of the application's site
    ("501401", K.HUNT_GROUP, "501401"),
    ("voicemail:501410", K.VOICEMAIL, "501410"),
    ("+33562070411", K.USER, "501411"),  # the customer's own public number stays on-net
])
def test_internal_targets(plan: Plan, target: str, kind: DecisionKind, number: str) -> None:
    d = route_application_target(plan, _toulouse(plan), target, MONDAY_10)
    assert d.kind is kind, d.trace
    assert getattr(d.target, "full_number", None) == number


def test_closed_group_follows_its_schedule(plan: Plan) -> None:
    d = route_application_target(plan, _toulouse(plan), "501401", MONDAY_20)
    assert d.kind is K.VOICEMAIL  # the example's sales group is closed at night


@pytest.mark.parametrize(("target", "status"), [
    ("501499", 404),  # no such internal number: no hint of what exists
    ("voicemail:501499", 404),
    ("abc", 404),
    ("0899123456", 403),  # premium rate: the customer's default profile bars it
])
def test_refused_targets(plan: Plan, target: str, status: int) -> None:
    d = route_application_target(plan, _toulouse(plan), target, MONDAY_10)
    assert d.kind is K.REJECT and d.status == status, d.trace


def test_external_number_goes_to_the_site_trunk(plan: Plan) -> None:
    d = route_application_target(plan, _toulouse(plan), "0612345678", MONDAY_10)
    assert d.kind is K.EXTERNAL and d.e164 == "+33612345678"
    assert d.trunk is _toulouse(plan).trunk
