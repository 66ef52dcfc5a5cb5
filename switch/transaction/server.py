"""Server transactions (RFC 3261 17.2): INVITE (17.2.1, figure 7) and non-INVITE (17.2.2,
figure 8). The INVITE machine has the Accepted state of RFC 6026 section 7.1: after a 2xx it
absorbs INVITE retransmissions for 64*T1 (Timer L) instead of handing them to the TU as new
requests, and the TU's own 2xx retransmissions (13.3.1.4) go out through it."""

from __future__ import annotations

from enum import Enum
from typing import cast

from switch.sip import Request, Response

from .base import Action, Host, Input, Table, Transaction
from .events import Peer, RequestReceived, ServerKey, TransactionTimeout, Transmit, TransportFailed
from .timers import FastEnum, Timer


class InviteServerState(FastEnum):
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"  # RFC 6026
    TERMINATED = "Terminated"


class NonInviteServerState(FastEnum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


_IS = InviteServerState
_NS = NonInviteServerState
_I = Input
_A = Action
# module-level names for the members the hot paths read (an Enum member read off its class
# costs ~0.3 us on Python 3.11, see timers.py)
_SEND, _RESEND, _TIMEOUT, _REPORT_TRANSPORT = _A.SEND, _A.RESEND, _A.TIMEOUT, _A.REPORT_TRANSPORT
_NONE, _ABSORB, _RETRANSMIT, _PASS_ACK = _A.NONE, _A.ABSORB, _A.RETRANSMIT, _A.PASS_ACK
_TU_1XX = _I.TU_1XX
_TIMER_G = Timer.G
_IS_PROCEEDING, _NS_TRYING = _IS.PROCEEDING, _NS.TRYING
_IS_ACCEPTED = _IS.ACCEPTED

# RFC 3261 17.2.1 and figure 7, with RFC 6026 7.1. TU inputs missing here (a response after
# the final one) raise TransitionError: that is the TU's mistake.
INVITE_SERVER_TABLE: Table = {
    (_IS.PROCEEDING, _I.REQUEST): (_IS.PROCEEDING, _A.RESEND),
    (_IS.PROCEEDING, _I.ACK): (_IS.PROCEEDING, _A.ABSORB),  # no final response yet: ignore
    (_IS.PROCEEDING, _I.TU_1XX): (_IS.PROCEEDING, _A.SEND),
    (_IS.PROCEEDING, _I.TU_2XX): (_IS.ACCEPTED, _A.SEND),
    (_IS.PROCEEDING, _I.TU_ERROR): (_IS.COMPLETED, _A.SEND),
    (_IS.PROCEEDING, _I.TRANSPORT_ERROR): (_IS.TERMINATED, _A.REPORT_TRANSPORT),
    (_IS.COMPLETED, _I.REQUEST): (_IS.COMPLETED, _A.RESEND),
    (_IS.COMPLETED, _I.ACK): (_IS.CONFIRMED, _A.ABSORB),
    (_IS.COMPLETED, _I.TIMER_G): (_IS.COMPLETED, _A.RETRANSMIT),
    (_IS.COMPLETED, _I.TIMER_H): (_IS.TERMINATED, _A.TIMEOUT),
    (_IS.COMPLETED, _I.TRANSPORT_ERROR): (_IS.TERMINATED, _A.REPORT_TRANSPORT),
    (_IS.CONFIRMED, _I.REQUEST): (_IS.CONFIRMED, _A.ABSORB),
    (_IS.CONFIRMED, _I.ACK): (_IS.CONFIRMED, _A.ABSORB),
    (_IS.CONFIRMED, _I.TIMER_I): (_IS.TERMINATED, _A.NONE),
    (_IS.CONFIRMED, _I.TRANSPORT_ERROR): (_IS.TERMINATED, _A.NONE),
    (_IS.ACCEPTED, _I.REQUEST): (_IS.ACCEPTED, _A.ABSORB),
    (_IS.ACCEPTED, _I.ACK): (_IS.ACCEPTED, _A.PASS_ACK),
    (_IS.ACCEPTED, _I.TU_2XX): (_IS.ACCEPTED, _A.SEND),  # the TU retransmits its 2xx
    (_IS.ACCEPTED, _I.TIMER_L): (_IS.TERMINATED, _A.NONE),
    (_IS.ACCEPTED, _I.TRANSPORT_ERROR): (_IS.ACCEPTED, _A.REPORT_TRANSPORT),
}

# RFC 3261 17.2.2 and figure 8.
NON_INVITE_SERVER_TABLE: Table = {
    (_NS.TRYING, _I.REQUEST): (_NS.TRYING, _A.ABSORB),
    (_NS.TRYING, _I.TU_1XX): (_NS.PROCEEDING, _A.SEND),
    (_NS.TRYING, _I.TU_2XX): (_NS.COMPLETED, _A.SEND),
    (_NS.TRYING, _I.TU_ERROR): (_NS.COMPLETED, _A.SEND),
    (_NS.TRYING, _I.TRANSPORT_ERROR): (_NS.TERMINATED, _A.REPORT_TRANSPORT),
    (_NS.PROCEEDING, _I.REQUEST): (_NS.PROCEEDING, _A.RESEND),
    (_NS.PROCEEDING, _I.TU_1XX): (_NS.PROCEEDING, _A.SEND),
    (_NS.PROCEEDING, _I.TU_2XX): (_NS.COMPLETED, _A.SEND),
    (_NS.PROCEEDING, _I.TU_ERROR): (_NS.COMPLETED, _A.SEND),
    (_NS.PROCEEDING, _I.TRANSPORT_ERROR): (_NS.TERMINATED, _A.REPORT_TRANSPORT),
    (_NS.COMPLETED, _I.REQUEST): (_NS.COMPLETED, _A.RESEND),
    (_NS.COMPLETED, _I.TIMER_J): (_NS.TERMINATED, _A.NONE),
    (_NS.COMPLETED, _I.TRANSPORT_ERROR): (_NS.TERMINATED, _A.REPORT_TRANSPORT),
}


class ServerTransaction(Transaction):
    """Common part. `peer` is where responses go (RFC 3261 18.2.2, RFC 3581 section 4)."""

    __slots__ = ("aliases", "last", "request", "source")

    def __init__(self, host: Host, key: ServerKey, request: Request, source: Peer,
                 reply_to: Peer, state: Enum) -> None:
        super().__init__(host, key, reply_to, state)
        # dropped once a final response is sent: a Completed transaction lives 32 s on UDP
        # and keeps only what it resends (the memory of 10,000 transactions/s adds up)
        self.request: Request | None = request
        self.source = source  # where the request came from
        self.last: bytes | None = None  # the last response sent, as sent
        # RFC 2543 keys for the ACK (see layer); a tuple: a transaction kept 32 s for Timer J
        # holds no list of its own (one object fewer for the GC to walk, issue 21)
        self.aliases: tuple[ServerKey, ...] = ()

    def _common(self, action: Action, inp: Input, msg: Request | Response | None) -> bool:
        host = self.host
        if action is _SEND:
            response = cast(Response, msg)
            self.last = response.to_bytes()
            host._emit(Transmit(self.last, self.peer, self.key))
            if inp is not _TU_1XX:
                self.request = None
                host._final_sent(self, response)
        elif action is _RESEND:
            if self.last is not None:
                host._emit(Transmit(self.last, self.peer, self.key))
        elif action is _TIMEOUT:
            host._emit(TransactionTimeout(self.key))
        elif action is _REPORT_TRANSPORT:
            host._emit(TransportFailed(self.key))
        else:
            return action is _NONE or action is _ABSORB
        return True


class InviteServerTransaction(ServerTransaction):
    MACHINE = "INVITE server"
    TABLE = INVITE_SERVER_TABLE
    ENTRY = {
        _IS.COMPLETED: (Timer.G, Timer.H),
        _IS.CONFIRMED: (Timer.I,),
        _IS.ACCEPTED: (Timer.L,),
    }
    TERMINATED = _IS.TERMINATED

    __slots__ = ()

    def __init__(self, host: Host, key: ServerKey, request: Request, source: Peer,
                 reply_to: Peer) -> None:
        super().__init__(host, key, request, source, reply_to, _IS_PROCEEDING)

    def act(self, action: Action, inp: Input, now: float, msg: Request | Response | None) -> None:
        if self._common(action, inp, msg):
            if self.state is _IS_ACCEPTED:
                # RFC 6026 7.1: Accepted absorbs INVITE retransmissions and never resends;
                # the TU retransmits its own 2xx. The bytes would only sit here 64*T1.
                self.last = None
            return
        if action is _RETRANSMIT:
            # Timer G doubles up to T2 (17.2.1)
            self.host._emit(Transmit(cast(bytes, self.last), self.peer, self.key))
            self.interval = min(2 * self.interval, self.host.config.t2)
            self.start(_TIMER_G, now + self.interval)
        elif action is _PASS_ACK:
            self.host._emit(RequestReceived(None, cast(Request, msg), self.source))
        else:  # pragma: no cover - the table uses no other action
            raise ValueError(action)


class NonInviteServerTransaction(ServerTransaction):
    MACHINE = "non-INVITE server"
    TABLE = NON_INVITE_SERVER_TABLE
    ENTRY = {_NS.COMPLETED: (Timer.J,)}
    TERMINATED = _NS.TERMINATED

    __slots__ = ()

    def __init__(self, host: Host, key: ServerKey, request: Request, source: Peer,
                 reply_to: Peer) -> None:
        super().__init__(host, key, request, source, reply_to, _NS_TRYING)

    def act(self, action: Action, inp: Input, now: float, msg: Request | Response | None) -> None:
        if not self._common(action, inp, msg):  # pragma: no cover - no other action here
            raise ValueError(action)
