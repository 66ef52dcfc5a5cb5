"""Leg assembly: INVITEs per hunt group, numbered legs, emergency parts."""

from __future__ import annotations

from switch.b2bua.assembly import EmergencyParts, LegTarget, assemble
from switch.b2bua.effects import LegId
from switch.b2bua.legs import LocalAddress
from switch.sip import NameAddr, SipUri
from switch.transaction import Peer

LOCAL = LocalAddress("127.0.0.1", 5060, 5061)


def target(user: str, port: int, transport: str = "UDP") -> LegTarget:
    return LegTarget(f"sip:{user}@127.0.0.1:{port}", Peer(transport, "127.0.0.1", port),
                     NameAddr(SipUri("sip", "example.com", user)),
                     NameAddr(SipUri("sip", "example.com", "501410"), "Alice"),
                     (("P-Asserted-Identity", "<sip:+33562070410@example.com>"),),
                     "+33562070410", user)


def test_groups_become_numbered_legs_with_their_own_dialogs() -> None:
    steps = assemble([[target("501411", 40001), target("501411", 40002, "TCP")],
                      [target("501412", 40003)]], body=b"sdp", local=LOCAL, max_forwards=69)
    assert [[leg.leg for leg in step] for step in steps] == [[LegId(0), LegId(1)], [LegId(2)]]
    invites = [leg.invite for step in steps for leg in step]
    assert len({i.call_id for i in invites}) == 3 and len({i.from_.tag for i in invites}) == 3
    first = invites[0]
    assert first.body == b"sdp" and first.headers.get("Content-Type") == "application/sdp"
    assert first.max_forwards == 69 and first.headers.get("P-Asserted-Identity")
    assert "transport=tcp" in (invites[1].headers.get("Contact") or "")
    assert steps[1][0].user == "501412"


def test_an_emergency_leg_carries_the_parts() -> None:
    seen: list[tuple[str | None, bytes]] = []

    def parts(number: str | None, sdp: bytes) -> EmergencyParts:
        seen.append((number, sdp))
        return EmergencyParts("multipart/mixed;boundary=x", b"--x\r\n" + sdp,
                              (("Priority", "emergency"),))

    [[leg]] = assemble([[target("112", 5090)]], body=b"sdp", local=LOCAL, max_forwards=70,
                       emergency=parts)
    assert seen == [("+33562070410", b"sdp")]
    assert leg.invite.headers.get("Content-Type") == "multipart/mixed;boundary=x"
    assert leg.invite.headers.get("Priority") == "emergency"
    assert leg.invite.headers.get("P-Asserted-Identity")  # the identity stays
