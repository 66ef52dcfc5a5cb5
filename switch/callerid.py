"""The identity headers of a B leg: From, P-Asserted-Identity, Privacy (RFC 3325, RFC 3323).

The number itself is decided by `dialplan.callerid`; this module turns that decision into
headers. Toward a trusted trunk P-Asserted-Identity always carries the real number, and a
withheld identity hides only From (RFC 3323 `Privacy: id`). Internal calls show the caller's
name and internal number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dialplan import DecisionKind, RoutingDecision, Trunk, User
from dialplan.callerid import decide
from switch.sip import NameAddr, Request, SipUri, TelUri, parse_name_addr

log = logging.getLogger("switch.callerid")

ANONYMOUS = NameAddr(SipUri("sip", "anonymous.invalid", "anonymous"), "Anonymous")


@dataclass(frozen=True, slots=True)
class OutboundIdentity:
    from_: NameAddr
    headers: tuple[tuple[str, str], ...] = ()
    number: str | None = None
    withheld: bool = False


def _presented(req: Request) -> str | None:
    """What the phone asked to present: P-Preferred-Identity (RFC 3325 9.2), else From."""
    ppi = req.headers.get("P-Preferred-Identity")
    addr = req.from_
    if ppi:
        try:
            addr = parse_name_addr(ppi.split(",")[0])
        except Exception:
            addr = req.from_
    uri = addr.uri
    if isinstance(uri, SipUri):
        return uri.user_unescaped
    if isinstance(uri, TelUri):
        return uri.digits
    return None


def wants_privacy(req: Request, user: User | None) -> bool:
    """CLIR by user setting, by `Privacy: id`/`header`, or by an anonymous From (RFC 3323)."""
    if user is not None and user.clir:
        return True
    privacy = (req.headers.get("Privacy") or "").lower()
    if any(p.strip() in ("id", "header", "user") for p in privacy.split(";")):
        return True
    uri = req.from_.uri
    return isinstance(uri, SipUri) and (uri.user or "").lower() == "anonymous"


def outbound_identity(req: Request, caller: User | None, trunk: Trunk | None,
                      decision: RoutingDecision) -> OutboundIdentity:
    if caller is None:
        # From the public network: keep what the carrier asserted.
        return OutboundIdentity(req.from_, (), None, False)
    domain = caller.customer.sip_domain
    if trunk is None:
        internal = NameAddr(SipUri("sip", domain, caller.full_number), caller.name)
        return OutboundIdentity(internal, (), caller.full_number, False)
    choice = decide(caller, _presented(req))
    if choice.replaced:
        log.warning("caller-id replaced user=%s presented=%r reason=%s now=%s",
                    caller.full_number, _presented(req), choice.reason, choice.number)
    number = choice.number
    emergency = decision.kind is DecisionKind.EMERGENCY
    headers: list[tuple[str, str]] = []
    if number is not None:
        asserted = NameAddr(SipUri("sip", domain, number, params=(("user", "phone"),)),
                            None if wants_privacy(req, caller) else caller.name)
        headers.append(("P-Asserted-Identity", str(asserted)))
    withheld = wants_privacy(req, caller) and not emergency
    if withheld or number is None:
        headers.append(("Privacy", "id"))
        return OutboundIdentity(ANONYMOUS, tuple(headers), number, True)
    from_ = NameAddr(SipUri("sip", domain, number, params=(("user", "phone"),)), caller.name)
    return OutboundIdentity(from_, tuple(headers), number, False)
