"""What the call service tells a `CallStateObserver` (issue 17), out of switch/calls.py.

Three points of a call matter to the watchers of its users: a callee leg's provisional or
final response (ringing, answered, failed), the start of a call placed by a user, and the
end of the call (every user leg ends). The user key is customer-qualified, as full numbers
are unique inside a customer only.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from switch.b2bua.effects import LegId, Side
from switch.services.ports import CallStateObserver
from switch.sip import Response, SipUri

if TYPE_CHECKING:
    from switch.calls import CallEntry

log = logging.getLogger("switch.call_watch")

RECIPIENT = "recipient"
INITIATOR = "initiator"


def _callee_customer(entry: CallEntry) -> str | None:
    target = entry.decision.target
    site = getattr(target, "site", None)
    customer = getattr(site, "customer", None) or getattr(target, "customer", None)
    if customer is not None:
        return str(customer.id)
    return entry.caller.customer.id if entry.caller is not None else None


def _leg_key(entry: CallEntry, leg: LegId) -> tuple[str, str] | None:
    """(user key, the leg's Call-ID) of a leg that rings a user."""
    number = entry.leg_users.get(leg)
    customer = _callee_customer(entry) if number is not None else None
    found = entry.call.leg(leg)
    if number is None or customer is None or found is None:
        return None
    return f"{customer}:{number}", found.invite.call_id


def _caller_key(entry: CallEntry) -> str | None:
    caller = entry.caller
    return f"{caller.customer.id}:{caller.full_number}" if caller is not None else None


def call_started(watch: CallStateObserver, entry: CallEntry) -> None:
    """A user placed a call: its own dialog, as initiator, early until answered."""
    key = _caller_key(entry)
    if key is None:
        return
    invite = entry.call.a_invite
    remote = invite.to.uri if isinstance(invite.to.uri, SipUri) else invite.uri
    watch.leg_ringing(key, invite.call_id, INITIATOR, str(remote), invite.to.display)


def leg_response(watch: CallStateObserver, entry: CallEntry, leg: LegId,
                 resp: Response) -> None:
    """A callee leg answered 18x (ringing), 2xx (talking) or failed (>= 300, timeout)."""
    found = _leg_key(entry, leg)
    if found is None or resp.status < 180:
        return
    key, call_id = found
    if resp.status < 200:
        # the caller as the rung phone sees it: the From of the leg's INVITE (CLIR kept)
        leg_obj = entry.call.leg(leg)
        shown = leg_obj.invite.from_ if leg_obj is not None else entry.call.a_invite.from_
        watch.leg_ringing(key, call_id, RECIPIENT, str(shown.uri), shown.display)
    elif resp.status < 300:
        watch.leg_answered(key, call_id)
        caller = _caller_key(entry)
        if caller is not None:
            watch.leg_answered(caller, entry.call.a_invite.call_id)
    else:
        watch.leg_ended(key, call_id)


def call_ended(watch: CallStateObserver, entry: CallEntry) -> None:
    """The call is over: every user leg and the caller's own dialog end."""
    for leg in list(entry.leg_users):
        found = _leg_key(entry, leg)
        if found is not None:
            watch.leg_ended(*found)
    caller = _caller_key(entry)
    if caller is not None:
        watch.leg_ended(caller, entry.call.a_invite.call_id)
    for key, call_id in entry.watched:  # parties a transfer brought in
        watch.leg_ended(key, call_id)


def party_joined(watch: CallStateObserver, entry: CallEntry, user: str, call_id: str,
                 direction: str, remote_uri: str, remote_display: str | None) -> None:
    """A transfer brought a user's dialog `call_id` into the call (issue 16): its watchers
    see it talking (again: its former call may have ended it), and it ends with the call."""
    watch.leg_ringing(user, call_id, direction, remote_uri, remote_display)
    watch.leg_answered(user, call_id)
    entry.watched.append((user, call_id))


def party_left(watch: CallStateObserver, entry: CallEntry, side: Side) -> None:
    """A transfer gave the place of the party on `side` to someone else (issue 16): that
    party's own dialog is over while the call goes on, so its watchers see it free."""
    if side is Side.CALLER:
        key = _caller_key(entry)
        if key is not None:
            watch.leg_ended(key, entry.call.a_invite.call_id)
        return
    leg = entry.call.answered_leg
    found = _leg_key(entry, leg) if leg is not None else None
    if found is not None:
        watch.leg_ended(*found)


class ObserverFanOut:
    """Several `CallStateObserver`s as one (issue 14: the subscriptions and the call
    queues' agents both watch users' calls). One that raises does not stop the others."""

    def __init__(self, *observers: CallStateObserver) -> None:
        self.observers = observers

    def leg_ringing(self, user: str, call_id: str, direction: str, remote_uri: str,
                    remote_display: str | None) -> None:
        for o in self.observers:
            try:
                o.leg_ringing(user, call_id, direction, remote_uri, remote_display)
            except Exception:
                log.exception("observer %s failed on leg_ringing", type(o).__name__)

    def leg_answered(self, user: str, call_id: str) -> None:
        for o in self.observers:
            try:
                o.leg_answered(user, call_id)
            except Exception:
                log.exception("observer %s failed on leg_answered", type(o).__name__)

    def leg_ended(self, user: str, call_id: str) -> None:
        for o in self.observers:
            try:
                o.leg_ended(user, call_id)
            except Exception:
                log.exception("observer %s failed on leg_ended", type(o).__name__)
