"""Reliable provisional responses (RFC 3262): 100rel, RSeq, RAck and PRACK.

`ReliableSender` is the UAS side of one INVITE server transaction: it stamps 1xx with
Require: 100rel and RSeq, retransmits them on a T1-doubling schedule driven by `now`,
and matches PRACKs. `ReliableReceiver` is the UAC side: it says which reliable 1xx are
new (to PRACK and process) and which are repeats or out of order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from switch.sip import Request, Response, SipError, Via, make_response

from .dialog import Dialog

log = logging.getLogger(__name__)

T1 = 0.5
MAX_RSEQ = 2**31 - 1


@dataclass(frozen=True, slots=True)
class RAck:
    """RAck: response-num CSeq-num Method (RFC 3262 section 7.2)."""

    rseq: int
    cseq: int
    method: str

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"


def parse_rack(text: str) -> RAck:
    parts = text.split()
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or len(parts[0]) > 10 or len(parts[1]) > 10:
        raise SipError(400, f"Bad RAck {text[:40]!r}")
    return RAck(int(parts[0]), int(parts[1]), parts[2])


def parse_rseq(text: str) -> int:
    t = text.strip()
    if not t.isdigit() or len(t) > 10 or not 1 <= int(t) <= MAX_RSEQ:
        raise SipError(400, f"Bad RSeq {t[:20]!r}")
    return int(t)


def _options(msg: Request | Response, name: str) -> set[str]:
    return {v.strip().lower() for v in msg.headers.get_all(name)}


def supports_100rel(request: Request) -> bool:
    return "100rel" in _options(request, "Supported") or "100rel" in _options(request, "Require")


def requires_100rel(msg: Request | Response) -> bool:
    return "100rel" in _options(msg, "Require")


def is_reliable(response: Response) -> bool:
    """A 101-199 with Require: 100rel and RSeq (RFC 3262 section 4)."""
    return 100 < response.status < 200 and requires_100rel(response) and "RSeq" in response.headers


# -- UAS ------------------------------------------------------------------------------------


class ReliableState(Enum):
    IDLE = "idle"  # nothing unacknowledged
    PENDING = "pending"  # a reliable 1xx is out, waiting for its PRACK
    TIMED_OUT = "timed-out"  # 64*T1 without PRACK: reject the INVITE with 5xx


class ReliableEvent(Enum):
    SEND = "send"
    PRACK = "prack"
    TIMEOUT = "timeout"


class PrackError(SipError):
    """A missing transition (our bug, 500) or a PRACK that matches nothing (481)."""


TRANSITIONS: dict[tuple[ReliableState, ReliableEvent], ReliableState] = {
    (ReliableState.IDLE, ReliableEvent.SEND): ReliableState.PENDING,
    (ReliableState.PENDING, ReliableEvent.PRACK): ReliableState.IDLE,
    (ReliableState.PENDING, ReliableEvent.TIMEOUT): ReliableState.TIMED_OUT,
}


@dataclass(frozen=True, slots=True)
class Retransmit:
    response: Response


@dataclass(frozen=True, slots=True)
class ReliableTimeout:
    """No PRACK within 64*T1: answer the INVITE with a 5xx (RFC 3262 section 3)."""

    response: Response


class ReliableSender:
    """UAS side for one INVITE: one reliable 1xx outstanding at a time (section 3)."""

    def __init__(self, invite: Request, *, initial_rseq: int = 1, t1: float = T1, context: str = "") -> None:
        if not 1 <= initial_rseq <= MAX_RSEQ:
            raise ValueError("the first RSeq is between 1 and 2**31 - 1 (RFC 3262 section 3)")
        self.invite = invite
        self.state = ReliableState.IDLE
        self.t1 = t1
        self._next_rseq = initial_rseq
        self.pending: Response | None = None
        self.rseq: int | None = None
        self._interval = t1
        self._sent_at = 0.0
        self._deadline: float | None = None
        self._context = context

    def _go(self, event: ReliableEvent) -> None:
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise PrackError(500, f"100rel: no {event.value} in state {self.state.value}")
        log.debug("100rel %s: %s --%s--> %s", self._context, self.state.value, event.value, new.value)
        self.state = new

    @property
    def can_send(self) -> bool:
        return self.state is ReliableState.IDLE

    def send(self, response: Response, now: float) -> Response:
        """Make `response` (101-199) reliable and start its retransmissions."""
        if not 100 < response.status < 200:
            raise PrackError(500, "only 101-199 responses are sent reliably")
        self._go(ReliableEvent.SEND)
        rseq = self._next_rseq
        self._next_rseq += 1  # section 3: each new reliable 1xx increments RSeq by one
        headers = response.headers.remove("RSeq")
        if not requires_100rel(response):
            headers = headers.add("Require", "100rel")
        reliable = response.replace(headers=headers.add("RSeq", str(rseq)))
        self.pending, self.rseq = reliable, rseq
        self._interval = self.t1
        self._sent_at = now
        self._deadline = now + self.t1
        return reliable

    def get_timer(self) -> float | None:
        return self._deadline

    def handle_timer(self, now: float) -> Retransmit | ReliableTimeout | None:
        """Retransmit at T1, 2*T1, 4*T1...; give up once 64*T1 has passed (section 3)."""
        if self._deadline is None or now < self._deadline or self.pending is None:
            return None
        if now - self._sent_at >= 64 * self.t1:
            self._go(ReliableEvent.TIMEOUT)
            self._deadline = None
            return ReliableTimeout(self.pending)
        self._interval *= 2
        self._deadline = min(now + self._interval, self._sent_at + 64 * self.t1)
        return Retransmit(self.pending)

    def stop(self) -> None:
        """A final response was sent: retransmissions end (section 3)."""
        self._deadline = None

    def receive_prack(self, prack: Request) -> Response:
        """Match a PRACK by RAck (RSeq, CSeq number, method) and return our 200 for it.

        Raises PrackError 481 when it matches no unacknowledged reliable 1xx (section 3),
        400 without a valid RAck.
        """
        text = prack.headers.get("RAck")
        if text is None:
            raise SipError(400, "PRACK without RAck")
        rack = parse_rack(text)
        cseq = self.invite.cseq
        if (self.state is not ReliableState.PENDING or rack.rseq != self.rseq
                or rack.cseq != cseq.seq or rack.method != cseq.method):
            raise PrackError(481, "Call/Transaction Does Not Exist: no such reliable response")
        self._go(ReliableEvent.PRACK)
        self.pending = None
        self._deadline = None
        return make_response(prack, 200)


# -- UAC ------------------------------------------------------------------------------------


class ReliableReceiver:
    """UAC side for one INVITE in one dialog: RSeq ordering (RFC 3262 section 4)."""

    def __init__(self) -> None:
        self.last_rseq: int | None = None

    def receive(self, response: Response) -> bool:
        """True when `response` is the next reliable 1xx (PRACK it and process it);
        False for a repeat or an out-of-order one, which is neither PRACKed nor processed."""
        rseq = parse_rseq(response.headers.get("RSeq") or "")
        if self.last_rseq is not None and rseq != self.last_rseq + 1:
            log.debug("100rel: ignoring RSeq %d after %d", rseq, self.last_rseq)
            return False
        self.last_rseq = rseq
        return True


def rack_for(response: Response) -> RAck:
    cseq = response.cseq
    return RAck(parse_rseq(response.headers.get("RSeq") or ""), cseq.seq, cseq.method)


def build_prack(dialog: Dialog, response: Response, via: Via, *,
                body: bytes = b"", content_type: str | None = None) -> Request:
    """A PRACK for a reliable 1xx, sent in the (early) dialog it created (section 7.1)."""
    return dialog.create_request("PRACK", via, headers=(("RAck", str(rack_for(response))),),
                                 body=body, content_type=content_type)
