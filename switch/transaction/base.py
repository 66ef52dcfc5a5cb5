"""What the four transaction state machines share: the table-driven `fire` and timers.

Each machine declares, as class data:

- `TABLE`: dict[(state, input)] -> (next state, action); a missing entry raises
  `TransitionError`. Tables are complete for every input that can come from the network or a
  timer, so only a caller's mistake (say, a second final response) can raise.
- `ENTRY`: the timers started when a state is entered (their values in `TimerConfig`).
- `KEEP`: the running timers a state keeps when entered; all others are dropped.

Timers live in the layer's heap with lazy deletion: a transaction keeps `timers[name] =
deadline`, and a heap entry whose deadline no longer matches is skipped when popped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import Enum
from typing import ClassVar, Protocol

from switch.sip import Request, Response

from .events import Peer, TransitionError, TxnEvent, TxnKey
from .timers import TIMER_BY_NAME, TIMER_NAME, FastEnum, Timer, TimerConfig

logger = logging.getLogger("switch.transaction")


class Input(FastEnum):
    """Everything a transaction reacts to."""

    RESPONSE_1XX = "1xx"
    RESPONSE_2XX = "2xx"
    RESPONSE_ERROR = "300-699"
    REQUEST = "request"  # a retransmission of the request that created a server transaction
    ACK = "ACK"
    TU_1XX = "TU 1xx"
    TU_2XX = "TU 2xx"
    TU_ERROR = "TU 300-699"
    TIMER_A = "timer A"
    TIMER_B = "timer B"
    TIMER_D = "timer D"
    TIMER_E = "timer E"
    TIMER_F = "timer F"
    TIMER_G = "timer G"
    TIMER_H = "timer H"
    TIMER_I = "timer I"
    TIMER_J = "timer J"
    TIMER_K = "timer K"
    TIMER_L = "timer L"
    TIMER_M = "timer M"
    TRANSPORT_ERROR = "transport error"


TIMER_INPUT: dict[Timer, Input] = {t: Input["TIMER_" + t.value] for t in Timer}
TIMER_INPUT_BY_NAME: dict[str, Input] = {TIMER_NAME[t]: i for t, i in TIMER_INPUT.items()}
NETWORK_RESPONSES = (Input.RESPONSE_1XX, Input.RESPONSE_2XX, Input.RESPONSE_ERROR)
# module-level names for the members the hot paths read (see timers.py)
_RESPONSE_1XX, _RESPONSE_2XX, _RESPONSE_ERROR = NETWORK_RESPONSES
_TU_1XX, _TU_2XX, _TU_ERROR = Input.TU_1XX, Input.TU_2XX, Input.TU_ERROR


def response_input(status: int) -> Input:
    if status < 200:
        return _RESPONSE_1XX
    if status < 300:
        return _RESPONSE_2XX
    return _RESPONSE_ERROR


def tu_input(status: int) -> Input:
    if status < 200:
        return _TU_1XX
    if status < 300:
        return _TU_2XX
    return _TU_ERROR


class Action(FastEnum):
    NONE = "none"
    ABSORB = "absorb"  # a retransmission swallowed
    PASS = "pass to TU"
    PASS_AND_ACK = "pass to TU, send ACK"  # 17.1.1.3
    RESEND_ACK = "resend ACK"
    STRAY = "hand over as stray"
    RETRANSMIT = "retransmit"
    SEND = "send response"
    RESEND = "resend last response"
    PASS_ACK = "pass ACK to TU"  # RFC 6026 Accepted state
    TIMEOUT = "report timeout"
    REPORT_TRANSPORT = "report transport error"


class Host(Protocol):
    """The part of `TransactionLayer` a transaction talks to."""

    config: TimerConfig

    def _emit(self, event: TxnEvent) -> None: ...

    def _schedule(self, txn: Transaction, timer: Timer, deadline: float) -> None: ...

    def _terminated(self, txn: Transaction) -> None: ...

    def _final_sent(self, txn: Transaction, response: Response) -> None: ...


Table = Mapping[tuple[Enum, Input], tuple[Enum, Action]]


class Transaction:
    MACHINE: ClassVar[str]
    TABLE: ClassVar[Table]
    ENTRY: ClassVar[Mapping[Enum, tuple[Timer, ...]]]
    KEEP: ClassVar[Mapping[Enum, frozenset[Timer]]] = {}
    TERMINATED: ClassVar[Enum]

    __slots__ = ("host", "interval", "key", "peer", "reliable", "state", "timers")

    def __init__(self, host: Host, key: TxnKey, peer: Peer, state: Enum) -> None:
        self.host = host
        self.key = key
        self.peer = peer  # client: where the request goes; server: where responses go
        self.reliable = peer.reliable
        self.state = state
        # timer letter -> deadline; str keys keep the dict out of the GC (timers.py)
        self.timers: dict[str, float] = {}
        self.interval = host.config.t1  # current retransmission interval (A, E, G)

    @property
    def terminated(self) -> bool:
        return self.state is self.TERMINATED

    def fire(self, inp: Input, now: float, msg: Request | Response | None = None) -> None:
        old = self.state
        try:
            new, action = self.TABLE[(old, inp)]
        except KeyError:
            raise TransitionError(self.MACHINE, self.key, old, inp) from None
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s: %s --%s / %s--> %s", self.MACHINE, self.key, old.name,
                         inp.value, action.value, new.name)
        self.state = new
        self.act(action, inp, now, msg)
        if new is not old:
            self.enter(new, now)

    def enter(self, state: Enum, now: float) -> None:
        """Set the timers of a state just entered; a zero timer fires at once (reliable D/I/J/K)."""
        if state is self.TERMINATED:
            self.timers.clear()
            self.host._terminated(self)
            return
        keep = self.KEEP.get(state)
        if keep is None:
            self.timers.clear()
        else:
            for t in [t for t in self.timers if TIMER_BY_NAME[t] not in keep]:
                del self.timers[t]
        zero: Timer | None = None
        config = self.host.config
        for timer in self.ENTRY.get(state, ()):
            value = config.duration(timer, self.reliable)
            if value is None:
                continue
            if value == 0:
                zero = timer
            else:
                self.start(timer, now + value)
        if zero is not None and self.state is state:
            self.fire(TIMER_INPUT[zero], now)

    def start(self, timer: Timer, deadline: float) -> None:
        self.timers[TIMER_NAME[timer]] = deadline
        self.host._schedule(self, timer, deadline)

    def act(self, action: Action, inp: Input, now: float, msg: Request | Response | None) -> None:
        raise NotImplementedError
