"""Where a user's unanswered call goes: the user's mailbox (issue 13), pure.

The call manager asks this policy when every leg failed or nobody answered (`Exhausted`),
and the call service asks it too when a user has no registered device at all (unreachable:
it would otherwise refuse 480 before ringing anything). A call to a **user** whose pack
has voicemail (annex 16.1: Calling and Suite, not Workspace, and not switched off with
`voicemail: false`) is answered by the deposit application with the matching greeting:

| what happened | greeting |
| --- | --- |
| the ring timeout ran out (no answer) | unavailable |
| 486 Busy Here / 600 Busy Everywhere (RFC 3261 21.4.24, 21.6.1) | busy |
| 480, 408 (unreachable, Timer B) | unavailable |

603 Decline is the user's own final answer (RFC 3261 21.6.2): the caller gets it. Anything
else (a phone answering 488, a 5xx) gives up as before, and so do hunt groups and
queues: they have their own closed and overflow targets, never a member's mailbox.
"""

from __future__ import annotations

from dialplan import DecisionKind, PackFeature, RoutingDecision, User

from .decisions import (
    VOICEMAIL_BUSY,
    VOICEMAIL_UNAVAILABLE,
    AnswerWith,
    Exhausted,
    NextStep,
    give_up,
)

BUSY_STATUSES = frozenset({486, 600})
UNAVAILABLE_STATUSES = frozenset({480, 408})


def has_mailbox(decision: RoutingDecision) -> bool:
    """A call routed to a user who has voicemail."""
    user = decision.target
    return (decision.kind is DecisionKind.USER and isinstance(user, User)
            and user.has(PackFeature.VOICEMAIL))


def voicemail_on_exhausted(decision: RoutingDecision, exhausted: Exhausted) -> NextStep:
    """The `DecisionPolicy` that diverts a user's unanswered calls to the user's mailbox."""
    if not has_mailbox(decision):
        return give_up(exhausted)
    if exhausted.no_answer or exhausted.status in UNAVAILABLE_STATUSES:
        return AnswerWith(VOICEMAIL_UNAVAILABLE)
    if exhausted.status in BUSY_STATUSES:
        return AnswerWith(VOICEMAIL_BUSY)
    return give_up(exhausted)
