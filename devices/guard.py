"""Slows, then blocks, a source address that keeps sending wrong credentials. Pure.

Only wrong digest responses count (`record_failure`); a first REGISTER without
credentials that gets its 401 is the normal challenge round and is never recorded, and a
success clears the address. Per address the state moves along a small table:

    CLEAR --failure--> CLEAR (below slow_after) | SLOWED | BLOCKED
    SLOWED --failure--> SLOWED | BLOCKED        BLOCKED --time--> CLEAR
    any --success--> CLEAR

Failures are counted in a sliding `window`; `max_failures` inside it blocks for
`block_seconds`. SLOW asks the caller to delay its answer (doubling from `base_delay` up
to `max_delay`), which costs a guesser time without locking out a phone. The table of
tracked addresses is bounded (LRU).
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from dataclasses import dataclass
from enum import Enum

log = logging.getLogger(__name__)


class GuardState(Enum):
    CLEAR = "clear"
    SLOWED = "slowed"
    BLOCKED = "blocked"


class GuardEvent(Enum):
    FAILURE = "failure"
    SUCCESS = "success"
    UNBLOCK = "unblock"


# Allowed transitions; anything else is a bug (InvalidGuardTransition).
TRANSITIONS: dict[tuple[GuardState, GuardEvent], frozenset[GuardState]] = {
    (GuardState.CLEAR, GuardEvent.FAILURE): frozenset(
        {GuardState.CLEAR, GuardState.SLOWED, GuardState.BLOCKED}),
    (GuardState.SLOWED, GuardEvent.FAILURE): frozenset({GuardState.SLOWED, GuardState.BLOCKED}),
    (GuardState.CLEAR, GuardEvent.SUCCESS): frozenset({GuardState.CLEAR}),
    (GuardState.SLOWED, GuardEvent.SUCCESS): frozenset({GuardState.CLEAR}),
    (GuardState.BLOCKED, GuardEvent.SUCCESS): frozenset({GuardState.CLEAR}),
    (GuardState.BLOCKED, GuardEvent.UNBLOCK): frozenset({GuardState.CLEAR}),
}


class InvalidGuardTransition(RuntimeError):
    pass


class Verdict(Enum):
    ALLOW = "allow"
    SLOW = "slow"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    verdict: Verdict
    delay: float = 0.0  # SLOW: seconds to wait before answering; BLOCK: seconds left

    @property
    def allowed(self) -> bool:
        return self.verdict is not Verdict.BLOCK

    @property
    def blocked(self) -> bool:
        return self.verdict is Verdict.BLOCK


ALLOW = GuardVerdict(Verdict.ALLOW)


class _Entry:
    __slots__ = ("blocked_until", "failures", "state")

    def __init__(self) -> None:
        self.failures: deque[float] = deque()
        self.blocked_until = 0.0
        self.state = GuardState.CLEAR


class AuthFailureGuard:
    def __init__(self, *, max_failures: int = 10, window: float = 60.0,
                 block_seconds: float = 300.0, slow_after: int = 3, base_delay: float = 0.5,
                 max_delay: float = 8.0, max_tracked: int = 100_000) -> None:
        if not 0 < slow_after <= max_failures:
            raise ValueError("need 0 < slow_after <= max_failures")
        self.max_failures = max_failures
        self.window = window
        self.block_seconds = block_seconds
        self.slow_after = slow_after
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._max_tracked = max_tracked
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def _move(self, ip: str, entry: _Entry, event: GuardEvent, new: GuardState) -> None:
        allowed = TRANSITIONS.get((entry.state, event))
        if allowed is None or new not in allowed:
            raise InvalidGuardTransition(f"{ip}: {entry.state.name} --{event.name}--> {new.name}")
        if new is not entry.state:
            level = logging.WARNING if new is GuardState.BLOCKED else logging.INFO
            log.log(level, "auth guard %s: %s -> %s (%d failures in %.0fs)", ip,
                    entry.state.name, new.name, len(entry.failures), self.window)
        entry.state = new

    def _trim(self, entry: _Entry, now: float) -> None:
        horizon = now - self.window
        while entry.failures and entry.failures[0] <= horizon:
            entry.failures.popleft()

    def check(self, source_ip: str, now: float) -> GuardVerdict:
        """What to do with a request carrying credentials from `source_ip`."""
        entry = self._entries.get(source_ip)
        if entry is None:
            return ALLOW
        if entry.state is GuardState.BLOCKED:
            if now < entry.blocked_until:
                return GuardVerdict(Verdict.BLOCK, entry.blocked_until - now)
            entry.failures.clear()
            self._move(source_ip, entry, GuardEvent.UNBLOCK, GuardState.CLEAR)
            return ALLOW
        self._trim(entry, now)
        n = len(entry.failures)
        if n >= self.slow_after:
            return GuardVerdict(Verdict.SLOW, self._delay(n))
        return ALLOW

    def _delay(self, failures: int) -> float:
        return float(min(self.max_delay, self.base_delay * 2 ** (failures - self.slow_after)))

    def record_failure(self, source_ip: str, now: float) -> GuardVerdict:
        """A wrong response (or unknown user) from `source_ip`; returns the new verdict."""
        entry = self._entries.get(source_ip)
        if entry is None:
            entry = self._entries[source_ip] = _Entry()
            while len(self._entries) > self._max_tracked:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(source_ip)
        if entry.state is GuardState.BLOCKED:
            if now < entry.blocked_until:
                return GuardVerdict(Verdict.BLOCK, entry.blocked_until - now)
            entry.failures.clear()
            self._move(source_ip, entry, GuardEvent.UNBLOCK, GuardState.CLEAR)
        self._trim(entry, now)
        entry.failures.append(now)
        n = len(entry.failures)
        if n >= self.max_failures:
            entry.blocked_until = now + self.block_seconds
            self._move(source_ip, entry, GuardEvent.FAILURE, GuardState.BLOCKED)
            return GuardVerdict(Verdict.BLOCK, self.block_seconds)
        if n >= self.slow_after:
            self._move(source_ip, entry, GuardEvent.FAILURE, GuardState.SLOWED)
            return GuardVerdict(Verdict.SLOW, self._delay(n))
        self._move(source_ip, entry, GuardEvent.FAILURE, entry.state)
        return ALLOW

    def record_success(self, source_ip: str, now: float) -> None:
        """A correct response clears the address (a phone that re-registers is not a guesser)."""
        entry = self._entries.pop(source_ip, None)
        if entry is not None and entry.state is not GuardState.CLEAR:
            self._move(source_ip, entry, GuardEvent.SUCCESS, GuardState.CLEAR)

    def state(self, source_ip: str) -> GuardState:
        entry = self._entries.get(source_ip)
        return GuardState.CLEAR if entry is None else entry.state

    def __len__(self) -> int:
        return len(self._entries)
