"""The pure part of calls the switch places itself (switch/b2bua/originate.py)."""

from __future__ import annotations

import pytest

from switch.b2bua.assembly import LegTarget, assemble
from switch.b2bua.call import Call, CallState
from switch.b2bua.effects import RespondCaller, SendRequest, SendStateless, Side
from switch.b2bua.legs import LocalAddress
from switch.b2bua.originate import (
    ORIGIN_TRANSITIONS,
    OriginState,
    OriginTransitionError,
    Presented,
    answered_call,
    next_state,
    origination_request,
    present_as,
)
from switch.sip import NameAddr, SipUri, make_response
from switch.transaction import Peer

LOCAL = LocalAddress("127.0.0.1", 5060, 5061)
NOWHERE = Peer("UDP", "0.0.0.0", 0)
AGENT = Peer("UDP", "127.0.0.1", 40000)
QUEUE = NameAddr(SipUri("sip", "acme.example", "+33562070402", params=(("user", "phone"),)),
                 "Support")
SHOWN = Presented(QUEUE, (("P-Asserted-Identity", str(QUEUE)),), "+33562070402")
SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" \
      b"m=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"


def leg_target() -> LegTarget:
    caller = NameAddr(SipUri("sip", "acme.example", "anonymous"))
    return LegTarget("sip:501410@127.0.0.1:40000", AGENT,
                     NameAddr(SipUri("sip", "acme.example", "501410")), caller,
                     (("Privacy", "id"), ("X-Other", "kept")), None, "501410")


def test_every_leg_presents_the_switchs_identity_only() -> None:
    (group,) = present_as([[leg_target()]], SHOWN)
    (t,) = group
    assert t.from_ == QUEUE and t.number == "+33562070402"
    assert t.identity_headers == (("X-Other", "kept"), ("P-Asserted-Identity", str(QUEUE)))


def test_the_template_names_the_presented_caller_and_a_contact() -> None:
    req = origination_request(SHOWN, "sip:501410@acme.example")
    assert req.from_.uri == QUEUE.uri and req.from_.tag
    assert req.contacts and req.max_forwards == 70 and req.body == b""


def ring_and_answer() -> tuple[Call, Call]:
    template = origination_request(SHOWN, "sip:501410@acme.example")
    inner = Call(template, NOWHERE, LOCAL, 0.0, 30.0, answer_sdp=lambda leg, body: body)
    (legs,) = assemble([present_as([[leg_target()]], SHOWN)[0]], body=SDP, local=LOCAL,
                       max_forwards=69)
    (leg,) = legs
    effects = inner.add_leg(leg.invite, leg.dest)
    assert isinstance(effects[0], SendRequest)
    ok = make_response(leg.invite, 200, to_tag="agent1",
                       headers=[("Contact", "<sip:501410@127.0.0.1:40000>")], body=SDP)
    out = inner.on_response(effects[0].leg or leg.leg, ok, 1.0)
    assert any(isinstance(e, SendStateless) for e in out)  # the ACK to the agent
    assert any(isinstance(e, RespondCaller) and e.response.status == 200 for e in out)
    inner.on_ack(1.0)
    answered = inner.answered
    assert answered is not None
    return inner, answered_call(answered, ok, inner, 1.0)


def test_the_answering_party_is_the_caller_side_of_an_answered_call() -> None:
    inner, call = ring_and_answer()
    assert call.state is CallState.ANSWERED and call.answered_leg is None
    assert call.a_peer == AGENT and call.a_invite.body == SDP
    # our BYE goes to the agent in the dialog we opened (RFC 3261 15.1.1)
    out = call.hang_up(5.0, "done")
    (bye,) = [e for e in out if isinstance(e, SendRequest)]
    assert bye.request.method == "BYE" and bye.dest == AGENT and bye.toward is Side.CALLER
    assert bye.request.to.tag == "agent1"
    assert bye.request.call_id == inner.legs[0].invite.call_id


def test_the_agents_bye_ends_it_as_the_callers() -> None:
    _, call = ring_and_answer()
    out = call.on_bye(Side.CALLER, 3.0)
    assert call.state is CallState.ENDED
    assert not [e for e in out if isinstance(e, SendRequest)]  # no callee yet


def test_the_origination_states_follow_the_table() -> None:
    assert next_state(OriginState.ROUTING, OriginState.RINGING) is OriginState.RINGING
    assert (OriginState.RINGING, OriginState.ANSWERED) in ORIGIN_TRANSITIONS
    with pytest.raises(OriginTransitionError):
        next_state(OriginState.ANSWERED, OriginState.FAILED)
