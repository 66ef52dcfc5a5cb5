"""TargetResolver: every binding of a called user rings, at the binding's own address; what
repeated calls share (the user's To, a binding's Peer) never outlives a re-registration."""

from __future__ import annotations

import time

from devices.location import Binding, LocationService
from dialplan import DecisionKind, Plan, RoutingDecision
from dialplan.loader import load_plan
from switch.call_targets import TargetResolver, aor_key
from switch.sip import parse_message
from switch.transaction import Peer
from tests.dialplan.conftest import EXAMPLE

INVITE = (b"INVITE sip:501411@127.0.0.1 SIP/2.0\r\n"
          b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-t1\r\nMax-Forwards: 70\r\n"
          b"From: <sip:501410@127.0.0.1>;tag=a\r\nTo: <sip:501411@127.0.0.1>\r\n"
          b"Call-ID: t1\r\nCSeq: 1 INVITE\r\nContact: <sip:501410@10.0.0.1:5060>\r\n"
          b"Content-Length: 0\r\n\r\n")


def _binding(aor: str, port: int, now: float) -> Binding:
    return Binding(aor, f"sip:501411@10.0.0.2:{port}", now + 3600, 1.0, "reg", 1, None, None,
                   "udp", "10.0.0.2", port, None, "test", now)


def test_a_reregistered_binding_rings_at_its_new_address() -> None:
    plan: Plan = load_plan(EXAMPLE)
    caller, callee = plan.user_by_full_number("501410"), plan.user_by_full_number("501411")
    assert caller is not None and callee is not None
    locations = [LocationService()]
    now = time.time()
    locations[0].load([_binding(aor_key(callee), 5062, now)])
    resolver = TargetResolver(lambda: locations[0], time.time)
    decision = RoutingDecision(DecisionKind.USER, target=callee)
    req = parse_message(INVITE)
    [[first]] = resolver.targets(decision, caller, req)  # type: ignore[arg-type]
    [[again]] = resolver.targets(decision, caller, req)  # type: ignore[arg-type]
    assert first.dest == again.dest == Peer("UDP", "10.0.0.2", 5062)
    assert again.to is first.to and str(first.to.uri) == f"sip:501411@{callee.customer.sip_domain}"
    locations[0] = LocationService()  # the phone moved: its binding is a new one
    locations[0].load([_binding(aor_key(callee), 5064, now + 1)])
    [[moved]] = resolver.targets(decision, caller, req)  # type: ignore[arg-type]
    assert moved.dest == Peer("UDP", "10.0.0.2", 5064)
    assert moved.request_uri == "sip:501411@10.0.0.2:5064"
