"""Call records (CDRs): one per call, opened when the call starts and closed when it ends.

A record that is still open when the switch starts again belonged to a call in progress
when the switch died; it is closed then with the cause `switch restarted` so the call
history never silently loses a call. Emergency calls are recorded like any other call but
are never billable (CPCE D.98-8: emergency calls are free of charge).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

RESTART_CAUSE = "switch restarted during the call"


@dataclass(frozen=True, slots=True)
class CallRecord:
    id: str
    call_id: str  # the caller's Call-ID
    caller: str  # internal number of the calling user, or the carrier's From number
    callee: str | None  # E.164 or internal number of the destination
    dialed: str  # the Request-URI as dialed
    decision: str  # dialplan decision kind (user, external, emergency...)
    site: str | None  # the calling user's site code
    customer: str | None
    start: float  # epoch seconds
    answer: float | None = None
    end: float | None = None
    disposition: str | None = None  # answered, busy, no_answer, cancelled, rejected...
    status: int | None = None
    cause: str | None = None
    hangup_side: str | None = None  # caller, callee or switch
    codec: str | None = None
    emergency: bool = False
    billable: bool = True
    rtcp_loss: float | None = None
    rtcp_jitter_ms: float | None = None
    # the number a transfer connected the remaining party to (RFC 3515 / RFC 3891)
    transferred_to: str | None = None
    # a call queue's call (issue 14): answered, abandoned or overflowed, and the seconds
    # it waited (None for an abandoned call: its wait is end - answer)
    queue_outcome: str | None = None
    queue_wait: float | None = None

    @property
    def duration(self) -> float:
        """Billable seconds: from answer to end; 0 for an unanswered call."""
        if self.answer is None or self.end is None:
            return 0.0
        return max(0.0, self.end - self.answer)

    @property
    def rated_seconds(self) -> int:
        """Seconds counted against the minute bundle: whole seconds of answered time, and
        0 for what is never billed (emergency calls, CPCE D.98-8)."""
        if not self.billable or self.emergency:
            return 0
        return math.ceil(self.duration)

    def closed(self, *, end: float, disposition: str, status: int, cause: str, side: str,
               answer: float | None = None) -> CallRecord:
        return replace(self, end=end, disposition=disposition, status=status, cause=cause,
                       hangup_side=side, answer=answer if answer is not None else self.answer)


class CallRecordRepository(Protocol):
    async def open(self, record: CallRecord) -> None: ...

    async def close(self, record: CallRecord) -> None: ...

    async def close_orphans(self, now: float, cause: str = RESTART_CAUSE,
                            started_before: float | None = None) -> int: ...

    async def recent(self, limit: int = 100) -> Sequence[CallRecord]: ...
