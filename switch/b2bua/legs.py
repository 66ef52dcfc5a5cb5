"""What the B2BUA builds outside a dialog: the callee's INVITE (RFC 3261 8.1.1), its
CANCEL (9.1), and our own addresses for Via and Contact per transport. In-dialog requests
(ACK for 2xx, BYE) come from `switch.dialog.Dialog` (section 12); they are sent to the
address the peer's messages came from, which is what works behind NAT.
"""

from __future__ import annotations

from dataclasses import dataclass

from switch.sip import Headers, NameAddr, Request, Via, canonical_name, new_branch, parse_uri
from switch.transaction import Peer

# what a call dialog of the switch accepts (RFC 3261 20.5): no NOTIFY or PRACK handler exists
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER"


@dataclass(frozen=True, slots=True)
class LocalAddress:
    """Where the switch is reached, per transport: for Via sent-by and Contact."""

    host: str
    port: int
    tls_port: int
    ws_port: int | None = None
    wss_port: int | None = None

    def for_transport(self, transport: str) -> tuple[str, int]:
        ports = {"TLS": self.tls_port, "WS": self.ws_port, "WSS": self.wss_port}
        return (self.host, ports.get(transport) or self.port)

    def via_for(self, transport: str) -> Via:
        """Our sent-by for `transport`, asking for rport (RFC 3581); the branch is added by
        whoever builds the request."""
        host, port = self.for_transport(transport)
        return Via(transport, host, port, (("rport", None),))

    def via(self, transport: str, branch: str) -> str:
        host, port = self.for_transport(transport)
        return f"SIP/2.0/{transport} {host}:{port};branch={branch};rport"

    def contact(self, transport: str, user: str = "wte") -> str:
        host, port = self.for_transport(transport)
        param = "" if transport == "UDP" else f";transport={transport.lower()}"
        return f"<sip:{user}@{host}:{port}{param}>"


def invite_for_callee(
    *, request_uri: str, to: NameAddr, caller: NameAddr, call_id: str, local: LocalAddress,
    dest: Peer, body: bytes, max_forwards: int, identity_headers: tuple[tuple[str, str], ...],
    content_type: str = "application/sdp",
) -> Request:
    """The B-leg INVITE: a new dialog with its own Call-ID and tags (RFC 3261 8.1.1)."""
    items: list[tuple[str, str]] = [
        ("Via", local.via(dest.transport, new_branch())),
        ("Max-Forwards", str(max_forwards)),
        ("From", str(caller)),
        ("To", str(to)),
        ("Call-ID", call_id),
        ("CSeq", "1 INVITE"),
        ("Contact", local.contact(dest.transport)),
        ("Allow", ALLOW),
        ("Supported", "timer, replaces"),  # RFC 3891: INVITE/REFER with Replaces handled
    ]
    # the names above are canonical already; only the identity headers are made so
    items.extend((canonical_name(n), v) for n, v in identity_headers)
    if body:
        items.append(("Content-Type", content_type))
    return Request("INVITE", parse_uri(request_uri), Headers(items, canonical=True), body)


def cancel_for(invite: Request) -> Request:
    """CANCEL of a B-leg INVITE (RFC 3261 9.1): same Via branch, Request-URI, Call-ID, CSeq number."""
    h = invite.headers
    items = [
        ("Via", h.get_raw("Via")[0]),
        *(("Route", v) for v in h.get_raw("Route")),  # the INVITE's route (RFC 3261 9.1)
        ("Max-Forwards", "70"),
        ("From", h.get("From") or ""),
        ("To", h.get("To") or ""),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.seq} CANCEL"),
    ]
    return Request("CANCEL", invite.uri, Headers(items))
