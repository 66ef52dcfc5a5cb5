"""Who is calling: digest for INVITE, unauthenticated emergency calls, PSAP call-backs.

The same digest rules and brute-force guard as REGISTER (RFC 3261 22.3, a 407 challenge
for INVITE); an emergency call whose credentials fail still goes out when it comes from a
site's declared networks (issue 7); a call from the emergency service to a site that just
called it rings the caller directly.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from dataclasses import dataclass

from devices.digest import AuthOutcome
from dialplan import DecisionKind, Plan, RoutingDecision, User
from dialplan.router import emergency_from_site
from switch.registration import guard_account
from switch.runtime import ServerRequest, SipRuntime
from switch.services.ports import Accounts, CallbackLookup, CallerAuthority
from switch.sip import Request, SipUri, make_response, new_tag, uri_user
from switch.webrtc.credentials import verify_digest

log = logging.getLogger("switch.calls")


@dataclass(frozen=True, slots=True)
class CallerCheck:
    """An authenticated user, or an unauthenticated emergency call located by its site."""

    user: User | None
    emergency: RoutingDecision | None = None


def unauthenticated_emergency(plan: Plan, sreq: ServerRequest) -> RoutingDecision | None:
    """Issue 7: an emergency INVITE whose credentials fail still goes out when it comes
    from a site's declared networks, located at that site and flagged unauthenticated."""
    try:
        source = ipaddress.ip_address(sreq.peer.host)
    except ValueError:
        return None
    for customer in plan.customers:
        for site in customer.sites:
            if any(source in net for net in site.networks):
                decision = emergency_from_site(site, str(sreq.request.uri))
                if decision is not None:
                    log.warning("unauthenticated emergency call from %s on site %s",
                                sreq.peer.host, site.code)
                    return decision
    return None


def authenticate(runtime: SipRuntime, sreq: ServerRequest, plan: Plan, accounts: Accounts,
                 authority: CallerAuthority, now: float) -> CallerCheck | None:
    """Digest for INVITE (RFC 3261 22.3, 407). None when the request was answered here
    (challenge or refusal)."""
    req = sreq.request
    digest, guard = authority.digest, authority.guard
    if digest is None or guard is None:
        runtime.respond(sreq.key, make_response(req, 503, to_tag=new_tag()))
        return None
    host = req.from_.uri.host if isinstance(req.from_.uri, SipUri) else ""
    realm = accounts.realm_for_host(host)

    def refuse() -> CallerCheck | None:
        emergency = unauthenticated_emergency(plan, sreq)
        if emergency is not None:
            return CallerCheck(None, emergency)
        runtime.respond(sreq.key, make_response(req, 403, to_tag=new_tag()))
        return None

    # issue 23: a browser's short-lived password is also accepted over WS/WSS (getattr:
    # authorities written before it, such as test doubles, have none)
    result = verify_digest(digest, req, realm, accounts, now, proxy=True,
                           transport=sreq.peer.transport,
                           ephemeral=getattr(authority, "ephemeral", None))
    if result.outcome in (AuthOutcome.NO_CREDENTIALS, AuthOutcome.STALE):
        # no guard before the challenge: a phone behind a blocked NAT address must still
        # be able to send the credentials the guard admits for it (devices.guard)
        headers = digest.challenge_headers(realm, now, proxy=True,
                                           stale=result.outcome is AuthOutcome.STALE,
                                           request=req)
        runtime.respond(sreq.key, make_response(req, 407, to_tag=new_tag(), headers=headers))
        return None
    account_key = guard_account(result.username, realm)
    if guard.check(sreq.peer.host, now, account=account_key).blocked:
        return refuse()
    if result.outcome is not AuthOutcome.OK or result.account is None:
        guard.record_failure(sreq.peer.host, now, account=account_key)
        return refuse()
    guard.record_success(sreq.peer.host, now, account=account_key)
    user = accounts.user_for_aor(result.account.aor)
    if user is None:
        runtime.respond(sreq.key, make_response(req, 403, to_tag=new_tag()))
        return None
    return CallerCheck(user)


def callback_override(decision: RoutingDecision, req: Request, callbacks: CallbackLookup,
                      now: float) -> RoutingDecision:
    """A call from the emergency service to a site that just called it rings the caller
    directly, ignoring DND, forwarding and hunt rules (issue 7)."""
    if decision.target is None:
        return decision
    site = getattr(decision.target, "site", None)
    calling = uri_user(req.from_.uri) or ""
    if site is None or calling.lstrip("+") not in site.customer.emergency_numbers:
        return decision
    recent = callbacks.caller_for(site.customer.id, site.code, now)
    if recent is None:
        return decision
    user = site.customer.by_full_number.get(recent.caller)
    if not isinstance(user, User):
        return decision
    log.warning("emergency call-back from %s rings %s directly", calling, user.full_number)
    return dataclasses.replace(decision, kind=DecisionKind.USER, target=user,
                               trace=(*decision.trace, "emergency call-back window"))
