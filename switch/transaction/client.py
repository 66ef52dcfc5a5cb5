"""Client transactions (RFC 3261 17.1): INVITE (17.1.1, figure 5) and non-INVITE (17.1.2,
figure 6). The INVITE machine has the Accepted state of RFC 6026 section 7.2, so that 2xx
retransmissions and forked 2xx responses reach the TU as ResponseReceived for 64*T1."""

from __future__ import annotations

from enum import Enum
from typing import ClassVar, cast

from switch.sip import Request, Response

from .base import Action, Host, Input, Table, Transaction
from .events import (
    ClientKey,
    Peer,
    ResponseReceived,
    StrayResponse,
    TransactionTimeout,
    Transmit,
    TransportFailed,
)
from .requests import build_ack
from .timers import FastEnum, Timer


class InviteClientState(FastEnum):
    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"  # RFC 6026
    TERMINATED = "Terminated"


class NonInviteClientState(FastEnum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


_IC = InviteClientState
_NC = NonInviteClientState
_I = Input
_A = Action
# module-level names for the members the hot paths read (an Enum member read off its class
# costs ~0.3 us on Python 3.11, see timers.py)
_PASS, _TIMEOUT, _REPORT_TRANSPORT, _STRAY = _A.PASS, _A.TIMEOUT, _A.REPORT_TRANSPORT, _A.STRAY
_NONE, _ABSORB, _RETRANSMIT = _A.NONE, _A.ABSORB, _A.RETRANSMIT
_PASS_AND_ACK, _RESEND_ACK = _A.PASS_AND_ACK, _A.RESEND_ACK
_TIMER_A, _TIMER_E = Timer.A, Timer.E
_IC_CALLING, _NC_TRYING = _IC.CALLING, _NC.TRYING
_PROCEEDING = frozenset((_IC.PROCEEDING, _NC.PROCEEDING))

# RFC 3261 17.1.1.2 and figure 5, with RFC 6026 7.2 (Accepted instead of Terminated on 2xx).
INVITE_CLIENT_TABLE: Table = {
    (_IC.CALLING, _I.TIMER_A): (_IC.CALLING, _A.RETRANSMIT),
    (_IC.CALLING, _I.TIMER_B): (_IC.TERMINATED, _A.TIMEOUT),
    (_IC.CALLING, _I.RESPONSE_1XX): (_IC.PROCEEDING, _A.PASS),
    (_IC.CALLING, _I.RESPONSE_2XX): (_IC.ACCEPTED, _A.PASS),
    (_IC.CALLING, _I.RESPONSE_ERROR): (_IC.COMPLETED, _A.PASS_AND_ACK),
    (_IC.CALLING, _I.TRANSPORT_ERROR): (_IC.TERMINATED, _A.REPORT_TRANSPORT),
    (_IC.PROCEEDING, _I.RESPONSE_1XX): (_IC.PROCEEDING, _A.PASS),
    (_IC.PROCEEDING, _I.RESPONSE_2XX): (_IC.ACCEPTED, _A.PASS),
    (_IC.PROCEEDING, _I.RESPONSE_ERROR): (_IC.COMPLETED, _A.PASS_AND_ACK),
    (_IC.PROCEEDING, _I.TRANSPORT_ERROR): (_IC.TERMINATED, _A.REPORT_TRANSPORT),
    (_IC.COMPLETED, _I.RESPONSE_1XX): (_IC.COMPLETED, _A.ABSORB),
    (_IC.COMPLETED, _I.RESPONSE_2XX): (_IC.COMPLETED, _A.STRAY),
    (_IC.COMPLETED, _I.RESPONSE_ERROR): (_IC.COMPLETED, _A.RESEND_ACK),
    (_IC.COMPLETED, _I.TIMER_D): (_IC.TERMINATED, _A.NONE),
    (_IC.COMPLETED, _I.TRANSPORT_ERROR): (_IC.TERMINATED, _A.REPORT_TRANSPORT),
    (_IC.ACCEPTED, _I.RESPONSE_1XX): (_IC.ACCEPTED, _A.ABSORB),
    (_IC.ACCEPTED, _I.RESPONSE_2XX): (_IC.ACCEPTED, _A.PASS),
    (_IC.ACCEPTED, _I.RESPONSE_ERROR): (_IC.ACCEPTED, _A.ABSORB),
    (_IC.ACCEPTED, _I.TIMER_M): (_IC.TERMINATED, _A.NONE),
    (_IC.ACCEPTED, _I.TRANSPORT_ERROR): (_IC.TERMINATED, _A.REPORT_TRANSPORT),
}

# RFC 3261 17.1.2.2 and figure 6.
NON_INVITE_CLIENT_TABLE: Table = {
    (_NC.TRYING, _I.TIMER_E): (_NC.TRYING, _A.RETRANSMIT),
    (_NC.TRYING, _I.TIMER_F): (_NC.TERMINATED, _A.TIMEOUT),
    (_NC.TRYING, _I.RESPONSE_1XX): (_NC.PROCEEDING, _A.PASS),
    (_NC.TRYING, _I.RESPONSE_2XX): (_NC.COMPLETED, _A.PASS),
    (_NC.TRYING, _I.RESPONSE_ERROR): (_NC.COMPLETED, _A.PASS),
    (_NC.TRYING, _I.TRANSPORT_ERROR): (_NC.TERMINATED, _A.REPORT_TRANSPORT),
    (_NC.PROCEEDING, _I.TIMER_E): (_NC.PROCEEDING, _A.RETRANSMIT),
    (_NC.PROCEEDING, _I.TIMER_F): (_NC.TERMINATED, _A.TIMEOUT),
    (_NC.PROCEEDING, _I.RESPONSE_1XX): (_NC.PROCEEDING, _A.PASS),
    (_NC.PROCEEDING, _I.RESPONSE_2XX): (_NC.COMPLETED, _A.PASS),
    (_NC.PROCEEDING, _I.RESPONSE_ERROR): (_NC.COMPLETED, _A.PASS),
    (_NC.PROCEEDING, _I.TRANSPORT_ERROR): (_NC.TERMINATED, _A.REPORT_TRANSPORT),
    (_NC.COMPLETED, _I.RESPONSE_1XX): (_NC.COMPLETED, _A.ABSORB),
    (_NC.COMPLETED, _I.RESPONSE_2XX): (_NC.COMPLETED, _A.ABSORB),
    (_NC.COMPLETED, _I.RESPONSE_ERROR): (_NC.COMPLETED, _A.ABSORB),
    (_NC.COMPLETED, _I.TIMER_K): (_NC.TERMINATED, _A.NONE),
    (_NC.COMPLETED, _I.TRANSPORT_ERROR): (_NC.TERMINATED, _A.REPORT_TRANSPORT),
}


class ClientTransaction(Transaction):
    """Common part: the request bytes are serialised once and retransmitted as they are."""

    INITIAL: ClassVar[Enum]

    __slots__ = ("data", "request")

    def __init__(self, host: Host, key: ClientKey, request: Request, dest: Peer,
                 state: Enum) -> None:
        super().__init__(host, key, dest, state)
        self.request: Request | None = request  # dropped after the final response
        self.data = request.to_bytes()

    def begin(self, now: float) -> None:
        """Send the request and start the timers of the initial state."""
        self.host._emit(Transmit(self.data, self.peer, self.key))
        self.enter(self.state, now)

    def enter(self, state: Enum, now: float) -> None:
        if self.request is not None and state is not self.INITIAL and state not in _PROCEEDING:
            self.request = None  # a final response came: nothing left to retransmit
            self.data = b""
        super().enter(state, now)

    def _retransmit(self, timer: Timer, now: float) -> None:
        self.host._emit(Transmit(self.data, self.peer, self.key))
        self.start(timer, now + self.interval)

    def _common(self, action: Action, msg: Request | Response | None) -> bool:
        host = self.host
        key = cast(ClientKey, self.key)
        if action is _PASS:
            host._emit(ResponseReceived(key, cast(Response, msg)))
        elif action is _TIMEOUT:
            host._emit(TransactionTimeout(key))
        elif action is _REPORT_TRANSPORT:
            host._emit(TransportFailed(key))
        elif action is _STRAY:
            host._emit(StrayResponse(cast(Response, msg), self.peer))
        else:
            return action is _NONE or action is _ABSORB
        return True


class InviteClientTransaction(ClientTransaction):
    MACHINE = "INVITE client"
    TABLE = INVITE_CLIENT_TABLE
    ENTRY = {
        _IC.CALLING: (Timer.A, Timer.B),
        _IC.COMPLETED: (Timer.D,),
        _IC.ACCEPTED: (Timer.M,),
    }
    TERMINATED = _IC.TERMINATED
    INITIAL = _IC.CALLING

    __slots__ = ("ack",)

    def __init__(self, host: Host, key: ClientKey, request: Request, dest: Peer) -> None:
        super().__init__(host, key, request, dest, _IC_CALLING)
        self.ack: bytes | None = None

    def act(self, action: Action, inp: Input, now: float, msg: Request | Response | None) -> None:
        if self._common(action, msg):
            return
        if action is _RETRANSMIT:
            # Timer A doubles without a cap; Timer B ends it (17.1.1.2)
            self.interval *= 2
            self.host._emit(Transmit(self.data, self.peer, self.key))
            self.start(_TIMER_A, now + self.interval)
        elif action is _PASS_AND_ACK:
            response = cast(Response, msg)
            self.host._emit(ResponseReceived(cast(ClientKey, self.key), response))
            self.ack = build_ack(cast(Request, self.request), response).to_bytes()
            self.host._emit(Transmit(self.ack, self.peer, self.key))
        elif action is _RESEND_ACK:
            if self.ack is not None:
                self.host._emit(Transmit(self.ack, self.peer, self.key))
        else:  # pragma: no cover - the table uses no other action
            raise ValueError(action)


class NonInviteClientTransaction(ClientTransaction):
    MACHINE = "non-INVITE client"
    TABLE = NON_INVITE_CLIENT_TABLE
    ENTRY = {
        _NC.TRYING: (Timer.E, Timer.F),
        _NC.COMPLETED: (Timer.K,),
    }
    # Timers E and F keep running in Proceeding (17.1.2.2)
    KEEP = {_NC.PROCEEDING: frozenset((Timer.E, Timer.F))}
    TERMINATED = _NC.TERMINATED
    INITIAL = _NC.TRYING

    __slots__ = ()

    def __init__(self, host: Host, key: ClientKey, request: Request, dest: Peer) -> None:
        super().__init__(host, key, request, dest, _NC_TRYING)

    def act(self, action: Action, inp: Input, now: float, msg: Request | Response | None) -> None:
        if self._common(action, msg):
            return
        if action is _RETRANSMIT:
            # E doubles up to T2 in Trying, and is T2 in Proceeding (17.1.2.2)
            t2 = self.host.config.t2
            if self.state is _NC_TRYING:
                self.interval = min(2 * self.interval, t2)
            else:
                self.interval = t2
            self._retransmit(_TIMER_E, now)
        else:  # pragma: no cover - the table uses no other action
            raise ValueError(action)
