"""What a Call asks its adapter to do. The Call is pure; the adapter performs these."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from switch.sip import Request, Response
from switch.transaction import Peer


class Side(Enum):
    CALLER = "caller"
    CALLEE = "callee"
    SWITCH = "switch"


class Disposition(Enum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    REFUSED = "refused"  # the switch answered it itself: barring, unknown, not built yet
    UNREACHABLE = "unreachable"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, order=True)
class LegId:
    """A callee leg (B side) of one call, numbered in the order the legs were added."""

    index: int


@dataclass(frozen=True, slots=True)
class SendRequest:
    """Start a client transaction toward one side. When `leg` is set, its responses come
    back to the Call as that leg's (`Call.on_response`); otherwise nobody needs them
    (CANCEL, BYE)."""

    request: Request
    dest: Peer
    toward: Side
    leg: LegId | None = None


@dataclass(frozen=True, slots=True)
class SendStateless:
    """Send bytes outside any transaction: ACK for 2xx, 2xx retransmissions (RFC 3261 13.3.1.4)."""

    data: bytes
    dest: Peer


@dataclass(frozen=True, slots=True)
class RespondCaller:
    """Answer the caller's INVITE through its server transaction."""

    response: Response


@dataclass(frozen=True, slots=True)
class Answered:
    """The call is answered, by a callee leg or by the switch itself (`leg` None)."""

    leg: LegId | None
    response: Response


@dataclass(frozen=True, slots=True)
class Ended:
    """The call is over; the adapter frees media and writes the call record."""

    disposition: Disposition
    status: int
    cause: str
    side: Side


@dataclass(frozen=True, slots=True)
class CalleeMedia:
    """A callee described its media (an early or final answer, RFC 3264): the adapter
    points the media relay at it. Comes before the caller's answer in the effects."""

    leg: LegId
    sdp: bytes


@dataclass(frozen=True, slots=True)
class StartApplication:
    """Every leg failed and the policy chose an application (`AnswerWith`): the adapter
    opens media for the caller's offer, then answers with `Call.answer_locally`."""

    application: str


@dataclass(frozen=True, slots=True)
class Transferred:
    """A transfer completed: `target` replaced the party on `replaced` (RFC 3515); the
    adapter maps the new dialog's Call-ID to the call and notes the target in the record."""

    replaced: Side
    target: str
    old_call_id: str
    new_call_id: str
    sdp: bytes  # the target's answer: the relay leg facing `replaced` now points at it


Effect = (SendRequest | SendStateless | RespondCaller | Answered | Ended | CalleeMedia
          | StartApplication | Transferred)
