"""Dialogs (RFC 3261 section 12): identity, route set, CSeq spaces, remote target.

A `Dialog` is created from the UAS side (the INVITE we received and the 1xx/2xx with a To
tag we send) or from the UAC side (our INVITE and a response with a To tag). It builds the
requests we send inside it and checks the ones we receive. Pure: no I/O, no clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from switch.sip import (
    Headers,
    NameAddr,
    Request,
    Response,
    SipError,
    SipUri,
    Uri,
    Via,
    canonical_name,
    new_branch,
    parse_name_addr,
)
from switch.sip.grammar import format_params

log = logging.getLogger(__name__)

MAX_FORWARDS = 70
MAX_CSEQ = 2**31 - 1
# Requests that carry our Contact: target refresh requests (RFC 3261 12.2.1.1, RFC 3311)
# and those that RFC 3515 / RFC 6665 require it in.
_CONTACT_METHODS = frozenset(("INVITE", "UPDATE", "REFER", "SUBSCRIBE", "NOTIFY"))
# Target refresh requests (RFC 3261 12.2, RFC 3311 section 5.1).
TARGET_REFRESH = frozenset(("INVITE", "UPDATE"))


_MAX_FORWARDS_TEXT = str(MAX_FORWARDS)


def _top_via(via: Via, branch: str) -> str:
    """`via` (our sent-by) as the top Via of a new request: `branch` first, its other
    parameters after (RFC 3261 8.1.1.7: a new branch for every new transaction)."""
    hp = via.host if via.port is None else f"{via.host}:{via.port}"
    rest = format_params(tuple(p for p in via.params if p[0] != "branch"))
    return f"{via.protocol}/{via.transport} {hp};branch={branch}{rest}"


class DialogState(Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogEvent(Enum):
    CONFIRM = "confirm"  # a 2xx to the dialog-creating INVITE
    TERMINATE = "terminate"  # BYE, a non-2xx final response for an early dialog, timeout


TRANSITIONS: dict[tuple[DialogState, DialogEvent], DialogState] = {
    (DialogState.EARLY, DialogEvent.CONFIRM): DialogState.CONFIRMED,
    (DialogState.EARLY, DialogEvent.TERMINATE): DialogState.TERMINATED,
    (DialogState.CONFIRMED, DialogEvent.TERMINATE): DialogState.TERMINATED,
}


class DialogError(SipError):
    """A request that does not fit the dialog (481, 500, 400) or a missing transition."""


@dataclass(frozen=True, slots=True)
class DialogId:
    call_id: str
    local_tag: str
    remote_tag: str


def _contact_uri(msg: Request | Response) -> Uri | None:
    contacts = msg.contacts
    if isinstance(contacts, list) and contacts:
        return contacts[0].uri
    return None


def _record_route(msg: Request | Response) -> tuple[NameAddr, ...]:
    return tuple(parse_name_addr(v) for v in msg.headers.get_all("Record-Route"))


def _is_loose(route: NameAddr) -> bool:
    return isinstance(route.uri, SipUri) and route.uri.param("lr") is not None


def _secure(request: Request, secure_transport: bool) -> bool:
    # RFC 3261 12.1.1 / 12.1.2: sent over TLS with a SIPS Request-URI.
    return secure_transport and isinstance(request.uri, SipUri) and request.uri.scheme == "sips"


class Dialog:
    """One dialog: the peer state RFC 3261 section 12 keeps."""

    def __init__(self, *, call_id: str, local_tag: str, remote_tag: str, local_uri: NameAddr,
                 remote_uri: NameAddr, remote_target: Uri, route_set: tuple[NameAddr, ...],
                 local_seq: int | None, remote_seq: int | None, secure: bool, is_uac: bool,
                 local_contact: NameAddr | None, state: DialogState) -> None:
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_uri = local_uri  # From of our requests, without tag
        self.remote_uri = remote_uri  # To of our requests, without tag
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.secure = secure
        self.is_uac = is_uac  # we sent the dialog-creating request
        self.local_contact = local_contact
        self.state = state
        self.invite_seq: int | None = local_seq if is_uac else None  # of our last INVITE
        self._formatted: tuple[NameAddr, str, NameAddr, str, str, str] | None = None

    # -- creation ---------------------------------------------------------------------------

    @classmethod
    def uas(cls, request: Request, response: Response, *, secure_transport: bool = False) -> Dialog:
        """From a request we received and our 1xx/2xx carrying a To tag (RFC 3261 12.1.1)."""
        to_tag = response.to.tag
        if not to_tag or not 100 < response.status < 300:
            raise DialogError(500, "a dialog needs a 101-299 response with a To tag")
        target = _contact_uri(request)
        if target is None:
            raise DialogError(400, "Missing Contact in a dialog-creating request")
        contacts = response.contacts
        local_contact = contacts[0] if isinstance(contacts, list) and contacts else None
        dialog = cls(
            call_id=request.call_id, local_tag=to_tag, remote_tag=request.from_.tag or "",
            local_uri=NameAddr(request.to.uri, request.to.display),
            remote_uri=NameAddr(request.from_.uri, request.from_.display),
            remote_target=target, route_set=_record_route(request),  # as received
            local_seq=None, remote_seq=request.cseq.seq,
            secure=_secure(request, secure_transport), is_uac=False,
            local_contact=local_contact,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
        )
        if log.isEnabledFor(logging.DEBUG):  # `id` is built for the line only
            log.debug("dialog %s created as UAS, %s", dialog.id, dialog.state.value)
        return dialog

    @classmethod
    def uac(cls, request: Request, response: Response, *, secure_transport: bool = False) -> Dialog:
        """From our request and a 1xx/2xx with a To tag (RFC 3261 12.1.2)."""
        to_tag = response.to.tag
        if not to_tag or not 100 < response.status < 300:
            raise DialogError(500, "a dialog needs a 101-299 response with a To tag")
        target = _contact_uri(response)
        if target is None:
            if response.status >= 200:
                raise DialogError(400, "Missing Contact in a 2xx")
            target = request.uri  # tolerated in an early dialog until the 2xx
        contacts = request.contacts
        local_contact = contacts[0] if isinstance(contacts, list) and contacts else None
        dialog = cls(
            call_id=request.call_id, local_tag=request.from_.tag or "", remote_tag=to_tag,
            local_uri=NameAddr(request.from_.uri, request.from_.display),
            remote_uri=NameAddr(request.to.uri, request.to.display),
            remote_target=target, route_set=tuple(reversed(_record_route(response))),
            local_seq=request.cseq.seq, remote_seq=None,
            secure=_secure(request, secure_transport), is_uac=True,
            local_contact=local_contact,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug("dialog %s created as UAC, %s", dialog.id, dialog.state.value)
        return dialog

    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    def __repr__(self) -> str:
        return f"<Dialog {self.call_id} {self.local_tag}/{self.remote_tag} {self.state.value}>"

    # -- state ------------------------------------------------------------------------------

    def _go(self, event: DialogEvent) -> None:
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise DialogError(500, f"dialog: no {event.value} in state {self.state.value}")
        if log.isEnabledFor(logging.DEBUG):
            log.debug("dialog %s: %s --%s--> %s", self.id, self.state.value, event.value,
                      new.value)
        self.state = new

    def terminate(self) -> None:
        if self.state is not DialogState.TERMINATED:
            self._go(DialogEvent.TERMINATE)

    def receive_response(self, response: Response, method: str) -> None:
        """A response to a request we sent in this dialog (or to the creating INVITE).

        A 2xx confirms an early dialog and, for the creating INVITE, recomputes the route
        set (RFC 3261 13.2.2.4); a 2xx to a target refresh updates the remote target
        (12.2.1.2); a non-2xx final to the creating INVITE ends an early dialog; 481 and
        408 to any request end the dialog (12.2.1.2).
        """
        status = response.status
        if status in (481, 408):
            self.terminate()
            return
        if method == "INVITE" and status >= 300 and self.state is DialogState.EARLY:
            self.terminate()
            return
        if not 200 <= status < 300:
            return
        if method == "INVITE" and self.state is DialogState.EARLY:
            if self.is_uac:
                self.route_set = tuple(reversed(_record_route(response)))
            self._go(DialogEvent.CONFIRM)
        if method in TARGET_REFRESH:
            target = _contact_uri(response)
            if target is not None:
                self.remote_target = target

    def confirm(self) -> None:
        """The UAS sent its 2xx to the creating INVITE."""
        self._go(DialogEvent.CONFIRM)

    # -- requests we send ---------------------------------------------------------------------

    def next_cseq(self) -> int:
        """RFC 3261 12.2.1.1: one more than the last; chosen when still empty."""
        seq = 1 if self.local_seq is None else self.local_seq + 1
        if seq > MAX_CSEQ:
            raise DialogError(500, "CSeq space exhausted")
        self.local_seq = seq
        return seq

    def create_request(self, method: str, via: Via, *, headers: tuple[tuple[str, str], ...] = (),
                       body: bytes = b"", content_type: str | None = None,
                       cseq: int | None = None) -> Request:
        """Build a request inside the dialog (RFC 3261 12.2.1.1).

        `via` is our sent-by and transport; a fresh branch is put on it. The CSeq grows by
        one, except for ACK, which takes the number of the INVITE it acknowledges (13.2.2.4:
        `cseq`, else our last INVITE) and is a transaction of its own (fresh branch); the
        caller adds the INVITE's credentials to it (22.1) through `headers`.
        """
        if method == "CANCEL":
            # RFC 3261 9.1: a CANCEL copies the INVITE's Via branch; it is built from the
            # INVITE by the transaction owner, not as a new in-dialog request.
            raise DialogError(500, "CANCEL is built from the INVITE it cancels")
        if self.state is DialogState.TERMINATED and method != "ACK":
            raise DialogError(500, f"{method} in a terminated dialog")
        if method == "ACK":
            number = cseq if cseq is not None else self.invite_seq
            if number is None:
                raise DialogError(500, "ACK without an INVITE to refer to")
        else:
            number = self.next_cseq()
            if method == "INVITE":
                self.invite_seq = number
        ruri, routes = self._request_target()
        items: list[tuple[str, str]] = [("Via", _top_via(via, new_branch())),
                                        ("Max-Forwards", _MAX_FORWARDS_TEXT)]
        items.extend(("Route", str(r)) for r in routes)
        from_, to = self._addresses()
        items.append(("From", from_))
        items.append(("To", to))
        items.append(("Call-ID", self.call_id))
        items.append(("CSeq", f"{number} {method}"))
        if method in _CONTACT_METHODS and self.local_contact is not None:
            items.append(("Contact", str(self.local_contact)))
        # our own names are canonical already; the caller's extra ones are made so
        items.extend((canonical_name(n), v) for n, v in headers)
        if body and content_type is not None:
            items.append(("Content-Type", content_type))
        return Request(method, ruri, Headers(items, canonical=True), body)

    def ack_bytes(self, via: Via, cseq: int) -> bytes:
        """The ACK for a 2xx to our INVITE number `cseq` (RFC 3261 13.2.2.4), serialised:
        the bytes `create_request("ACK", via, cseq=cseq).to_bytes()` gives, without
        building the Request, since an ACK for a 2xx is sent as is and never parsed again
        (no transaction: 17.1.1.3)."""
        ruri, routes = self._request_target()
        from_, to = self._addresses()
        lines = [f"ACK {ruri} SIP/2.0", f"Via: {_top_via(via, new_branch())}",
                 f"Max-Forwards: {_MAX_FORWARDS_TEXT}"]
        lines.extend(f"Route: {r}" for r in routes)
        lines.append(f"From: {from_}")
        lines.append(f"To: {to}")
        lines.append(f"Call-ID: {self.call_id}")
        lines.append(f"CSeq: {cseq} ACK")
        lines.append("Content-Length: 0\r\n\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape")

    def _addresses(self) -> tuple[str, str]:
        """From and To of our requests (RFC 3261 12.2.1.1), formatted once per dialog:
        an ACK and a BYE share them. Recomputed when the tags or URIs were changed."""
        kept = self._formatted
        if (kept is not None and kept[0] is self.local_uri and kept[1] == self.local_tag
                and kept[2] is self.remote_uri and kept[3] == self.remote_tag):
            return kept[4], kept[5]
        from_ = str(self.local_uri.with_tag(self.local_tag))
        to = str(self.remote_uri.with_tag(self.remote_tag) if self.remote_tag
                 else self.remote_uri)
        self._formatted = (self.local_uri, self.local_tag, self.remote_uri, self.remote_tag,
                           from_, to)
        return from_, to

    def _request_target(self) -> tuple[Uri, list[NameAddr]]:
        """Request-URI and Route headers (RFC 3261 12.2.1.1)."""
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0]
        if _is_loose(first):
            return self.remote_target, list(self.route_set)
        # Strict routing: the first route goes in the Request-URI, stripped of what a
        # Request-URI may not carry (URI headers, method); the remote target goes last.
        uri = first.uri
        if isinstance(uri, SipUri):
            uri = SipUri(uri.scheme, uri.host, uri.user, uri.password, uri.port,
                         tuple(p for p in uri.params if p[0] != "method"), "")
        return uri, [*self.route_set[1:], NameAddr(self.remote_target)]

    # -- requests we receive ------------------------------------------------------------------

    def matches(self, request: Request) -> bool:
        """Is this request for this dialog (RFC 3261 12.2.2: Call-ID, To tag, From tag)?"""
        return (request.call_id == self.call_id and request.to.tag == self.local_tag
                and (request.from_.tag or "") == self.remote_tag)

    def receive_request(self, request: Request) -> None:
        """Check a request received in the dialog and update the dialog (RFC 3261 12.2.2).

        Raises DialogError 481 when it is not for this dialog or the dialog is over, 500
        when its CSeq is lower than the last one (out of order). ACK and CANCEL reuse the
        INVITE's number and are not ordered. A target refresh with a Contact replaces the
        remote target.
        """
        if not self.matches(request):
            raise DialogError(481, "Call/Transaction Does Not Exist")
        if self.state is DialogState.TERMINATED:
            raise DialogError(481, "Call/Transaction Does Not Exist: dialog terminated")
        method = request.method
        if method not in ("ACK", "CANCEL"):
            seq = request.cseq.seq
            if self.remote_seq is not None and seq < self.remote_seq:
                raise DialogError(500, "Server Internal Error: CSeq out of order")
            self.remote_seq = seq
        if method in TARGET_REFRESH:
            target = _contact_uri(request)
            if target is not None and target != self.remote_target:
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("dialog %s: remote target refreshed to %s", self.id, target)
                self.remote_target = target
        if method == "BYE":
            self.terminate()
