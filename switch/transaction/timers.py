"""Timer names and values (RFC 3261 section 17 and table 4 of appendix A; RFC 6026 L and M)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class FastEnum(Enum):
    """An Enum hashed by identity, in C. `Enum.__hash__` is a Python function (it hashes the
    member's name); the transaction machines hash their states, inputs and timers several
    times per message (transition table keys, timer dicts), so at thousands of messages a
    second that function showed in profiles (issue 21). Members are singletons and compare
    by identity, so identity hashing is consistent with equality."""

    __hash__ = object.__hash__


# On Python 3.11 reading an Enum member off its class (`Timer.A`) goes through the metaclass:
# measured ~0.3 us against ~16 ns for a module global. The hot paths of this package read
# members through module-level names or dicts built once (issue 21).


class Timer(FastEnum):
    A = "A"  # INVITE client retransmit, unreliable only (17.1.1.2)
    B = "B"  # INVITE client timeout, 64*T1
    D = "D"  # INVITE client wait for response retransmits: >= 32 s unreliable, 0 reliable
    E = "E"  # non-INVITE client retransmit, unreliable only (17.1.2.2)
    F = "F"  # non-INVITE client timeout, 64*T1
    G = "G"  # INVITE server final response retransmit, unreliable only (17.2.1)
    H = "H"  # INVITE server wait for ACK, 64*T1
    I = "I"  # INVITE server absorb ACK retransmits: T4 unreliable, 0 reliable  # noqa: E741
    J = "J"  # non-INVITE server absorb request retransmits: 64*T1 unreliable, 0 reliable
    K = "K"  # non-INVITE client absorb response retransmits: T4 unreliable, 0 reliable
    L = "L"  # INVITE server Accepted state (RFC 6026 8.7), 64*T1
    M = "M"  # INVITE client Accepted state (RFC 6026 8.4), 64*T1


# A running timer is keyed by its letter in `Transaction.timers` and in the layer's heap: a
# dict of str keys and float values is one the garbage collector does not track, so a
# transaction held 32 s for Timer J costs one tracked object fewer (issue 21: full
# collections over hundreds of thousands of held transactions).
TIMER_NAME: dict[Timer, str] = {t: t.value for t in Timer}
TIMER_BY_NAME: dict[str, Timer] = {t.value: t for t in Timer}


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1 (RTT estimate), T2 (max non-INVITE retransmit interval), T4 (max message lifetime).

    Defaults are those of RFC 3261 17.1.1.1: 500 ms, 4 s, 5 s.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self) -> None:
        if not (self.t1 > 0 and self.t2 >= self.t1 and self.t4 >= 0):
            raise ValueError(f"bad timer values T1={self.t1} T2={self.t2} T4={self.t4}")

    def duration(self, timer: Timer, reliable: bool) -> float | None:
        """The initial value of `timer`; None when it does not run on this transport."""
        kind = _KIND[timer]
        t1 = self.t1
        if kind == _RETRANSMIT:  # A, E, G
            return None if reliable else t1
        if kind == _TIMEOUT:  # B, F, H, L, M
            return 64 * t1
        if kind == _WAIT_D:
            return 0.0 if reliable else max(32.0, 64 * t1)
        if kind == _WAIT_J:
            return 0.0 if reliable else 64 * t1
        # I and K
        return 0.0 if reliable else self.t4


_RETRANSMIT, _TIMEOUT, _WAIT_D, _WAIT_J, _WAIT_T4 = range(5)
_KIND: dict[Timer, int] = {
    Timer.A: _RETRANSMIT, Timer.E: _RETRANSMIT, Timer.G: _RETRANSMIT,
    Timer.B: _TIMEOUT, Timer.F: _TIMEOUT, Timer.H: _TIMEOUT, Timer.L: _TIMEOUT,
    Timer.M: _TIMEOUT, Timer.D: _WAIT_D, Timer.J: _WAIT_J, Timer.I: _WAIT_T4,
    Timer.K: _WAIT_T4,
}
