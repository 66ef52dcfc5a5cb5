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
    UNREACHABLE = "unreachable"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SendRequest:
    """Start a client transaction; its responses come back to the Call as `leg`'s."""

    leg: int  # -1 for requests toward the caller (A side)
    request: Request
    dest: Peer


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
    """A callee answered: the adapter bridges media and opens the call record."""

    leg: int
    response: Response


@dataclass(frozen=True, slots=True)
class Ended:
    """The call is over; the adapter frees media and writes the call record."""

    disposition: Disposition
    status: int
    cause: str
    side: Side


Effect = SendRequest | SendStateless | RespondCaller | Answered | Ended
