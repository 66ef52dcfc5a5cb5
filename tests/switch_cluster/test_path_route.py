"""A leg to a binding registered through an edge proxy carries Route headers built from the
binding's Path, in order (RFC 3327 section 5.3), and so does its CANCEL (RFC 3261 9.1)."""

from __future__ import annotations

from switch.b2bua.assembly import assemble
from switch.b2bua.legs import LocalAddress, cancel_for
from switch.call_targets import leg_target
from switch.callerid import OutboundIdentity
from switch.sip import NameAddr, Request, SipUri
from switch.transaction import Peer

EDGE = "<sip:192.0.2.10:5060;lr;received=sip:198.51.100.7:40000>"
SECOND = "<sip:192.0.2.11;lr>"


def _invite(path: tuple[str, ...]) -> Request:
    identity = OutboundIdentity(NameAddr(SipUri("sip", "acme.example", "501410")),
                                (("P-Asserted-Identity", "<sip:501410@acme.example>"),))
    target = leg_target("sip:501411@198.51.100.7:40000", Peer("UDP", "192.0.2.10", 5060),
                        NameAddr(SipUri("sip", "acme.example", "501411")), identity, None, path)
    [[leg]] = assemble([[target]], body=b"", local=LocalAddress("192.0.2.1", 5070, 5071),
                       max_forwards=70)
    return leg.invite


def test_route_from_path_in_order_and_on_the_cancel() -> None:
    invite = _invite((EDGE, SECOND))
    assert invite.headers.get_all("Route") == [EDGE, SECOND]
    assert invite.headers.get("P-Asserted-Identity") == "<sip:501410@acme.example>"
    assert cancel_for(invite).headers.get_all("Route") == [EDGE, SECOND]


def test_no_path_no_route() -> None:
    invite = _invite(())
    assert invite.headers.get_all("Route") == []
    assert cancel_for(invite).headers.get_all("Route") == []
