"""Building the requests of a call's two sides (RFC 3261 sections 8.1.1, 9.1, 12.2.1, 13.2.2.4).

Each side of a B2BUA call is a dialog of its own. The B2BUA's dialogs are simple — phones and
trunks do not Record-Route to us — so each side keeps the peer's target (Contact), both tags,
its CSeq and where to send (the address the peer's messages came from, which is what works
behind NAT).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switch.sip import Headers, NameAddr, Request, SipUri, new_branch, parse_uri
from switch.transaction import Peer

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER, NOTIFY, PRACK"


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

    def via(self, transport: str, branch: str) -> str:
        host, port = self.for_transport(transport)
        return f"SIP/2.0/{transport} {host}:{port};branch={branch};rport"

    def contact(self, transport: str, user: str = "wte") -> str:
        host, port = self.for_transport(transport)
        param = "" if transport == "UDP" else f";transport={transport.lower()}"
        return f"<sip:{user}@{host}:{port}{param}>"


@dataclass
class DialogSide:
    """One side of the call as a dialog (RFC 3261 section 12)."""

    call_id: str
    local: NameAddr  # our From (toward B) or our To (toward A), with our tag
    remote: NameAddr  # the peer's address with its tag (once known)
    remote_target: str  # the peer's Contact URI
    dest: Peer
    local_cseq: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, local: LocalAddress, *, cseq: int | None = None,
                headers: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> Request:
        """An in-dialog request (12.2.1.1); ACK reuses the INVITE's CSeq number (13.2.2.4)."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        items: list[tuple[str, str]] = [
            ("Via", local.via(self.dest.transport, new_branch())),
            ("Max-Forwards", "70"),
            ("From", str(self.local)),
            ("To", str(self.remote)),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        items.extend(headers)
        return Request(method, parse_uri(self.remote_target), Headers(items), body)


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
        ("Supported", "replaces, timer"),
    ]
    items.extend(identity_headers)
    if body:
        items.append(("Content-Type", content_type))
    return Request("INVITE", parse_uri(request_uri), Headers(items), body)


def cancel_for(invite: Request) -> Request:
    """CANCEL of a B-leg INVITE (RFC 3261 9.1): same Via branch, Request-URI, Call-ID, CSeq number."""
    h = invite.headers
    items = [
        ("Via", h.get_raw("Via")[0]),
        ("Max-Forwards", "70"),
        ("From", h.get("From") or ""),
        ("To", h.get("To") or ""),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.seq} CANCEL"),
    ]
    return Request("CANCEL", invite.uri, Headers(items))


def contact_uri(headers_contacts: object, fallback: str) -> str:
    """The first Contact's URI of a message, or `fallback` when it has none."""
    if isinstance(headers_contacts, list) and headers_contacts:
        first = headers_contacts[0]
        if isinstance(first, NameAddr):
            return str(first.uri)
    return fallback


def caller_name_addr(display: str | None, user: str, domain: str, tag: str) -> NameAddr:
    return NameAddr(SipUri("sip", domain, user), display, (("tag", tag),))
