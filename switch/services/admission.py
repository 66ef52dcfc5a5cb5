"""Admission of new calls against the per-account and per-site limits (issue 20 item 4).

The pure counting lives in `dialplan.call_limits`; this adapter keeps each admitted call's
ticket by Call-ID until the call is over, logs a structured alert when a limit is first hit
(once a minute per account or site, never a line per refused call), and turns a refusal into
the `Refuse` the call service answers and records. Emergency calls and calls from trusted
trunks are always admitted.
"""

from __future__ import annotations

import logging

from dialplan import DecisionKind, RoutingDecision, User
from dialplan.call_limits import CallLimiter, CallLimits, CallTicket
from switch.b2bua.decisions import Refuse

log = logging.getLogger("switch.limits")

# a ticket whose call was never released (a path that forgot to) is dropped after this long,
# so no account is limited forever by a bookkeeping slip
STALE_TICKET_SECONDS = 6 * 3600.0


class CallAdmission:
    def __init__(self, limits: CallLimits | None = None) -> None:
        self.limiter = CallLimiter(limits)
        self._tickets: dict[str, tuple[CallTicket, float]] = {}
        self._last_sweep = 0.0

    def admit(self, call_id: str, caller: User | None, decision: RoutingDecision,
              now: float) -> Refuse | None:
        """None when the call may go on (its ticket is kept), else the refusal."""
        if caller is None:
            return None  # a trusted trunk or an unauthenticated emergency call
        self._sweep(now)
        verdict = self.limiter.admit(
            caller.full_number, f"{caller.customer.id}:{caller.site.code}",
            decision.categories, now, emergency=decision.kind is DecisionKind.EMERGENCY)
        if verdict.admitted:
            if verdict.ticket is not None and verdict.ticket.counted:
                self._tickets[call_id] = (verdict.ticket, now)
            return None
        if verdict.alert:
            log.warning("call limit alert user=%s site=%s customer=%s limit=%r dialed=%s",
                        caller.full_number, caller.site.code, caller.customer.id,
                        verdict.reason, decision.e164 or decision.number or "")
        return Refuse(verdict.status, "Call Limit Reached",
                      warning=f'399 wte "{verdict.reason}"')

    def release(self, call_id: str) -> None:
        """The call is over, or never started: idempotent."""
        held = self._tickets.pop(call_id, None)
        if held is not None:
            self.limiter.release(held[0])

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < 60.0:
            return
        self._last_sweep = now
        for call_id, (_, since) in list(self._tickets.items()):
            if now - since > STALE_TICKET_SECONDS:
                log.warning("call limit ticket of %s never released; dropped", call_id)
                self.release(call_id)
        self.limiter.sweep(now)

    def __len__(self) -> int:
        return len(self._tickets)
