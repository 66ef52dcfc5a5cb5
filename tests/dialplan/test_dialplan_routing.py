"""Table-driven routing over config/example.yaml: every dialed form and decision kind."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialplan import CallContext, DecisionKind, Plan, RoutingDecision, route

K = DecisionKind
MONDAY_10 = datetime(2026, 12, 21, 10, 0)  # office open
MONDAY_20 = datetime(2026, 12, 21, 20, 0)  # office closed
CHRISTMAS = datetime(2026, 12, 25, 10, 0)  # public holiday (Noël)


def _from(plan: Plan, caller: str, dialed: str, at: datetime = MONDAY_10) -> RoutingDecision:
    user = plan.user_by_full_number(caller)
    assert user is not None, caller
    return route(plan, CallContext(caller=user, caller_trunk=None, dialed=dialed, at=at))


def _inbound(plan: Plan, dialed: str, at: datetime = MONDAY_10) -> RoutingDecision:
    trunk = plan.trunk_for_address("127.0.0.1", 5090)
    assert trunk is not None
    return route(plan, CallContext(caller=None, caller_trunk=trunk, dialed=dialed, at=at))


def _target_number(d: RoutingDecision) -> str | None:
    return getattr(d.target, "full_number", None)


# (caller, dialed, kind, internal number of the target or None)
INTERNAL = [
    ("501410", "501411", K.USER, "501411"),  # full internal number, same site
    ("501410", "502411", K.USER, "502411"),  # full internal number, other site
    ("502411", "501410", K.USER, "501410"),
    ("501410", "411", K.USER, "501411"),  # short extension, own site
    ("502411", "411", K.USER, "502411"),  # same short extension, other site: own site wins
    ("501410", "450", K.USER, "501450"),  # extension set by the customer, no public number
    ("501410", "+33223280411", K.USER, "502411"),  # own public number, E.164: on-net
    ("501410", "0223280411", K.USER, "502411"),  # own public number, national form
    ("501410", "0033223280411", K.USER, "502411"),  # own public number, 00 form
    ("501410", "tel:+33562070411", K.USER, "501411"),
    ("501410", "sip:0562070411@acme.wte.example;user=phone", K.USER, "501411"),
    ("501410", "sip:502411@127.0.0.1", K.USER, "502411"),
    ("501410", "<sip:501411@localhost>", K.USER, "501411"),
    ("501410", "501401", K.HUNT_GROUP, "501401"),
    ("501410", "401", K.HUNT_GROUP, "501401"),
    ("501410", "501402", K.QUEUE, "501402"),
    ("501410", "501400", K.AUTO_ATTENDANT, "501400"),
    ("501410", "0562070400", K.AUTO_ATTENDANT, "501400"),
    ("501411", "501410", K.USER, "501410"),  # internal only profile may call inside
    ("501411", "0562070410", K.USER, "501410"),  # ... including own public numbers
]


@pytest.mark.parametrize(("caller", "dialed", "kind", "target"), INTERNAL)
def test_internal(plan: Plan, caller: str, dialed: str, kind: DecisionKind, target: str) -> None:
    d = _from(plan, caller, dialed)
    assert (d.kind, _target_number(d)) == (kind, target), d.trace


# (caller, dialed, e164 or trunk digits)
EXTERNAL = [
    ("501410", "0612345678", "+33612345678"),
    ("501410", "06 12 34 56 78", "+33612345678"),
    ("501410", "0561000000", "+33561000000"),
    ("501410", "+442079460958", "+442079460958"),
    ("501410", "00442079460958", "+442079460958"),
    ("501410", "tel:+44-20-7946-0958", "+442079460958"),
    ("501410", "sip:+442079460958@acme.wte.example;user=phone", "+442079460958"),
    ("501410", "sip:0612345678;phone-context=+33@acme.wte.example;user=phone", "+33612345678"),
    ("501410", "0800123456", "+33800123456"),  # toll free
    ("501412", "0899123456", "+33899123456"),  # unrestricted may call premium
    ("502412", "+14155550100", "+14155550100"),  # national_international profile
    ("501420", "0612345678", "+33612345678"),  # workspace, national profile
]


@pytest.mark.parametrize(("caller", "dialed", "e164"), EXTERNAL)
def test_external(plan: Plan, caller: str, dialed: str, e164: str) -> None:
    d = _from(plan, caller, dialed)
    assert d.kind is K.EXTERNAL, d.trace
    assert d.e164 == e164
    assert d.trunk is not None and d.trunk.id == "carrier"


def test_short_service_number_goes_out_without_e164(plan: Plan) -> None:
    d = _from(plan, "501412", "3639")
    assert (d.kind, d.e164, d.number) == (K.EXTERNAL, None, "3639")


EMERGENCY_FORMS = [
    ("112", "112"), ("15", "15"), ("17", "17"), ("18", "18"), ("114", "114"),
    ("115", "115"), ("116000", "116000"), ("116117", "116117"), ("119", "119"),
    ("191", "191"), ("196", "196"), ("197", "197"),
    ("sip:112@acme.wte.example;user=phone", "112"), ("sip:18@127.0.0.1", "18"),
    ("tel:112", "112"), ("tel:15", "15"),
    ("urn:service:sos", "112"), ("urn:service:sos.fire", "18"),
    ("urn:service:sos.police", "17"), ("urn:service:sos.ambulance", "15"),
    ("<urn:service:sos.marine>", "196"), ("urn:service:sos.gas", "112"),
]


@pytest.mark.parametrize("caller", ["501410", "501411", "501420", "501450", "502420"])
@pytest.mark.parametrize(("dialed", "number"), EMERGENCY_FORMS)
def test_emergency_in_every_form_never_barred(plan: Plan, caller: str, dialed: str, number: str) -> None:
    """501411 and 501450 are internal-only and workspace lines: emergency still goes out."""
    d = _from(plan, caller, dialed)
    assert d.kind is K.EMERGENCY, d.trace
    assert d.number == number
    assert d.trunk is not None and d.trunk.id == "carrier"
    user = plan.user_by_full_number(caller)
    assert user is not None and d.target is user.site  # civic address of the caller's site


# (caller, dialed, status, words in the reason)
REJECTS = [
    ("501411", "0612345678", 403, "internal_only"),  # internal only profile
    ("501411", "+442079460958", 403, "international"),
    ("501410", "0899123456", 403, "premium"),  # no_premium (default profile)
    ("501410", "0836123456", 403, "premium"),
    ("501410", "+33891123456", 403, "premium"),
    ("501410", "3639", 403, "premium"),  # short premium service number
    ("501420", "+442079460958", 403, "international"),  # workspace, national profile
    ("502412", "0899123456", 403, "premium"),
    ("501410", "501499", 404, "no internal number"),
    ("501410", "0562070499", 404, "not assigned"),  # our DID block, unassigned
    ("501410", "06123", 484, ""),  # too short
    ("501410", "*99", 404, "no feature code"),
    ("501420", "*86", 403, "voicemail"),  # workspace pack has no voicemail (annex 16.1)
    ("501420", "*78", 403, "dnd"),
    ("501410", "*21", 484, "destination"),  # forwarding without a destination
    ("501410", "mailto:a@b.c", 416, "scheme"),
    ("501410", "sip:bob@other.example", 404, "bob"),
    ("501410", "hello world", 484, ""),
    ("501410", "", 484, ""),
]


@pytest.mark.parametrize(("caller", "dialed", "status", "words"), REJECTS)
def test_rejects(plan: Plan, caller: str, dialed: str, status: int, words: str) -> None:
    d = _from(plan, caller, dialed)
    assert (d.kind, d.status) == (K.REJECT, status), d.trace
    assert words in (d.reason or "")
    assert d.trace[-1].startswith(f"reject {status}")


FEATURES = [
    ("501410", "*43", "echo_test", None),
    ("501420", "*43", "echo_test", None),  # diagnostics need no pack feature
    ("501410", "*44", "tone_test", None),
    ("501410", "*78", "dnd_on", None),
    ("501410", "*79", "dnd_off", None),
    ("501410", "*210612345678", "forward_always_on", "0612345678"),
    ("501420", "*21501410", "forward_always_on", "501410"),  # forwarding is in every pack
    ("501410", "#21", "forward_always_off", None),
    ("501410", "sip:*43@acme.wte.example", "echo_test", None),
    ("501410", "sip:%2321@acme.wte.example", "forward_always_off", None),
]


@pytest.mark.parametrize(("caller", "dialed", "feature", "argument"), FEATURES)
def test_feature_codes(plan: Plan, caller: str, dialed: str, feature: str, argument: str | None) -> None:
    d = _from(plan, caller, dialed)
    assert (d.kind, d.feature, d.argument) == (K.FEATURE, feature, argument), d.trace


def test_voicemail_access_code(plan: Plan) -> None:
    d = _from(plan, "501410", "*86")
    assert (d.kind, d.feature, _target_number(d)) == (K.VOICEMAIL, "retrieve", "501410")


# Calls from the carrier trunk: (dialed, time, kind, target, voicemail feature)
INBOUND = [
    ("+33562070410", MONDAY_10, K.USER, "501410"),
    ("0562070410", MONDAY_10, K.USER, "501410"),
    ("33562070410", MONDAY_10, K.USER, "501410"),  # E.164 without '+'
    ("sip:+33223280411@127.0.0.1;user=phone", MONDAY_10, K.USER, "502411"),
    ("tel:+33562070420", MONDAY_10, K.USER, "501420"),
    ("+33562070401", MONDAY_10, K.HUNT_GROUP, "501401"),
    ("+33562070401", MONDAY_20, K.VOICEMAIL, "501410"),  # closed: to Alice's mailbox
    ("+33562070402", MONDAY_10, K.QUEUE, "501402"),
    ("+33562070402", CHRISTMAS, K.VOICEMAIL, "501412"),
    ("+33562070400", MONDAY_10, K.AUTO_ATTENDANT, "501400"),
    ("+33562070400", CHRISTMAS, K.VOICEMAIL, "501410"),
]


@pytest.mark.parametrize(("dialed", "at", "kind", "target"), INBOUND)
def test_inbound_from_trunk(plan: Plan, dialed: str, at: datetime, kind: DecisionKind, target: str) -> None:
    d = _inbound(plan, dialed, at)
    assert (d.kind, _target_number(d)) == (kind, target), d.trace


@pytest.mark.parametrize("dialed", ["+33562070499", "+33612345678", "0612345678", "112", "abc"])
def test_inbound_unknown_number_is_404(plan: Plan, dialed: str) -> None:
    d = _inbound(plan, dialed)
    assert (d.kind, d.status) == (K.REJECT, 404), d.trace


def test_closed_hours_trace_names_the_holiday(plan: Plan) -> None:
    d = _inbound(plan, "+33562070400", CHRISTMAS)
    assert d.feature == "deposit"
    assert any("public holiday 2026-12-25" in t for t in d.trace)
    assert any("closed" in t for t in d.trace)


def test_aware_datetime_is_converted_to_site_time(plan: Plan) -> None:

    # 09:00 UTC in December is 10:00 in Paris: open. 17:30 UTC is 18:30: closed.
    assert _inbound(plan, "+33562070401", datetime(2026, 12, 21, 9, 0, tzinfo=UTC)).kind is K.HUNT_GROUP
    assert _inbound(plan, "+33562070401", datetime(2026, 12, 21, 17, 30, tzinfo=UTC)).kind is K.VOICEMAIL


def test_no_caller_no_trunk_is_refused(plan: Plan) -> None:
    d = route(plan, CallContext(caller=None, caller_trunk=None, dialed="501410", at=MONDAY_10))
    assert (d.kind, d.status) == (K.REJECT, 403)


def test_decision_is_frozen_and_traced(plan: Plan) -> None:
    d = _from(plan, "501410", "0612345678")
    assert d.trace[0].startswith("caller 501410")
    with pytest.raises(AttributeError):
        d.kind = K.REJECT  # type: ignore[misc]
