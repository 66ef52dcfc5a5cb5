"""The call record a new call attempt opens: who called whom, as dialed and as decided.

Every attempt gets one (refused ones too), so the call history never misses a call; the
call service closes it with the outcome. Emergency calls are recorded but never billable
(CPCE D.98-8)."""

from __future__ import annotations

import logging

from dialplan import DecisionKind, RoutingDecision, User
from rating.cdr import CallRecord
from switch.sip import Request, uri_user
from switch.sip.randomness import random_hex

log = logging.getLogger("switch.calls")  # the call service's lines: one name to filter on


def new_call_record(req: Request, caller: User | None, decision: RoutingDecision,
                    start: float) -> CallRecord:
    target = decision.target
    if decision.kind in (DecisionKind.EXTERNAL, DecisionKind.EMERGENCY):
        callee = decision.number or decision.e164
    else:
        callee = getattr(target, "full_number", None) or decision.e164
    site = caller.site if caller else getattr(target, "site", None)
    return CallRecord(
        # 128 random bits in 32 hex digits like a uuid4's hex, from the CSPRNG block the
        # tags use rather than a system call per record
        id=random_hex(32), call_id=req.call_id,
        caller=caller.full_number if caller else (uri_user(req.from_.uri) or "anonymous"),
        callee=callee, dialed=str(req.uri), decision=decision.kind.value,
        site=getattr(site, "code", None),
        customer=caller.customer.id if caller else None,
        start=start, emergency=decision.kind is DecisionKind.EMERGENCY,
        billable=decision.kind is not DecisionKind.EMERGENCY,
    )


def log_call_end(record: CallRecord) -> None:
    """The one INFO line of a call attempt, when it ends (refused ones included): who
    called, what was dialed and decided, and how it ended, as its call record says."""
    if log.isEnabledFor(logging.INFO):
        duration = (record.end - record.answer
                    if record.answer is not None and record.end is not None else 0.0)
        # "call <Call-ID> ended" first, as before this line took the start line's fields:
        # what operators and the tests search for
        log.info("call %s ended disposition=%s status=%s cause=%s side=%s duration=%.1f "
                 "from=%s dialed=%s decision=%s", record.call_id, record.disposition,
                 record.status, record.cause, record.hangup_side, duration, record.caller,
                 record.dialed, record.decision)
