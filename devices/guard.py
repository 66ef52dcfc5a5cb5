"""Slows, then blocks, whoever keeps sending wrong credentials. Pure: time is passed in.

Only wrong responses count (`record_failure`); a request without credentials that gets
its 401/407 is the normal challenge round and is never recorded. Failures are counted in
three decaying scores, each an `_Entry` with its own state:

- per **source** address: one guesser trying many accounts;
- per **account** (the claimed `user@realm`, known or not, so the guard says nothing about
  which accounts exist): many addresses (a botnet) guessing one account;
- per **(source, account) pair**: the one score that still applies to a source the
  account is registered from (see below).

Decay, not reset (issue 20 item 5): every failure adds 1 to a score that halves every
`window` seconds (exponential decay, as a leaky bucket with a proportional leak). A success
clears nothing: an attacker who interleaves logins to their own account with guesses is
blocked as soon as the guesses alone cross the threshold.

Back-off before block: from `slow_after` the caller answers failures late (the delay
doubles from `base_delay` up to `max_delay`; SIP answers its 403 late, HTTP its 401),
which costs a sequential guesser time and a real phone nothing. From `max_failures` the
score is BLOCKED for `block_seconds`, doubled for each block the entry already served
(up to `max_block`): requests with credentials are refused without looking at them (SIP
403, HTTP 429 with Retry-After). Attempts while blocked are not counted, so a block always
ends.

Shared addresses (NAT): a blocked source, or a blocked account, does not stop a request
whose account has a live binding from that very source (`has_binding(account, source)`,
given by the registration service): one attacker behind a company's NAT cannot lock the
company's registered phones out, and an attacker guessing a victim's password from
elsewhere cannot lock the victim's registered phones out. Only the pair score applies
there, so guessing a registered colleague's password from inside the NAT is still
throttled and blocked (locking out that one account from that one address, for a while).

Per entry the state moves along a small table (CLEAR/SLOWED/BLOCKED, below). The tables of
tracked keys are bounded (LRU).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from devices.logsafe import printable

log = logging.getLogger(__name__)

BindingCheck = Callable[[str, str], bool]
"""`has_binding(account, source_ip)`: does `account` have a live binding from `source_ip`?"""


class GuardState(Enum):
    CLEAR = "clear"
    SLOWED = "slowed"
    BLOCKED = "blocked"


class GuardEvent(Enum):
    FAILURE = "failure"
    DECAY = "decay"  # time passed: the score fell below a threshold
    UNBLOCK = "unblock"  # the block ran out


# Allowed transitions; anything else is a bug (InvalidGuardTransition).
TRANSITIONS: dict[tuple[GuardState, GuardEvent], frozenset[GuardState]] = {
    (GuardState.CLEAR, GuardEvent.FAILURE): frozenset(
        {GuardState.CLEAR, GuardState.SLOWED, GuardState.BLOCKED}),
    (GuardState.SLOWED, GuardEvent.FAILURE): frozenset({GuardState.SLOWED, GuardState.BLOCKED}),
    (GuardState.CLEAR, GuardEvent.DECAY): frozenset({GuardState.CLEAR}),
    (GuardState.SLOWED, GuardEvent.DECAY): frozenset({GuardState.CLEAR, GuardState.SLOWED}),
    (GuardState.BLOCKED, GuardEvent.UNBLOCK): frozenset({GuardState.CLEAR, GuardState.SLOWED}),
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


def _count(score: float) -> int:
    """A decayed score as a number of recent failures, rounded to the nearest: a burst of
    N failures a second apart counts N (not 4.97), one failure a half-life ago counts 1."""
    return math.floor(score + 0.5)


_SEVERITY = {Verdict.ALLOW: 0, Verdict.SLOW: 1, Verdict.BLOCK: 2}


def _worst(a: GuardVerdict, b: GuardVerdict) -> GuardVerdict:
    if a is ALLOW:
        return b  # the common case: nothing recorded against a
    sa, sb = _SEVERITY[a.verdict], _SEVERITY[b.verdict]
    if sa != sb:
        return a if sa > sb else b
    return a if a.delay >= b.delay else b


class _Entry:
    __slots__ = ("blocked_until", "blocks", "score", "state", "updated")

    def __init__(self, now: float) -> None:
        self.score = 0.0
        self.updated = now
        self.blocked_until = 0.0
        self.blocks = 0  # blocks served: each doubles the next one
        self.state = GuardState.CLEAR


class _Table:
    """One kind of key (source, account or pair) with its decaying scores."""

    def __init__(self, kind: str, guard: AuthFailureGuard) -> None:
        self.kind = kind
        self.g = guard
        self.entries: OrderedDict[str, _Entry] = OrderedDict()

    def _move(self, key: str, entry: _Entry, event: GuardEvent, new: GuardState) -> None:
        allowed = TRANSITIONS.get((entry.state, event))
        if allowed is None or new not in allowed:
            raise InvalidGuardTransition(
                f"{self.kind} {printable(key)}: {entry.state.name} --{event.name}--> {new.name}")
        if new is not entry.state:
            level = logging.WARNING if new is GuardState.BLOCKED else logging.INFO
            # the key may hold a user name chosen by the peer: never log it raw
            log.log(level, "auth guard %s=%s: %s -> %s (score %.1f, half-life %.0fs)",
                    self.kind, printable(key), entry.state.name, new.name, entry.score,
                    self.g.window)
        entry.state = new

    def _level(self, score: float) -> GuardState:
        return GuardState.SLOWED if _count(score) >= self.g.slow_after else GuardState.CLEAR

    def _advance(self, key: str, entry: _Entry, now: float) -> None:
        """Decay the score to `now` and apply what time changed (unblock, calm down)."""
        if now > entry.updated:
            entry.score *= 0.5 ** ((now - entry.updated) / self.g.window)
            entry.updated = now
        if entry.state is GuardState.BLOCKED:
            if now < entry.blocked_until:
                return
            self._move(key, entry, GuardEvent.UNBLOCK, self._level(entry.score))
        elif entry.state is GuardState.SLOWED:
            self._move(key, entry, GuardEvent.DECAY, self._level(entry.score))
        # a long quiet spell after the last block forgets the escalation
        if entry.blocks and now - entry.blocked_until > self.g.max_block:
            entry.blocks = 0

    def verdict(self, key: str, now: float) -> GuardVerdict:
        entry = self.entries.get(key)
        if entry is None:
            return ALLOW
        self._advance(key, entry, now)
        if entry.state is GuardState.BLOCKED:
            return GuardVerdict(Verdict.BLOCK, entry.blocked_until - now)
        if entry.state is GuardState.SLOWED:
            return GuardVerdict(Verdict.SLOW, self.g.delay_for(entry.score))
        if entry.score < 0.01 and not entry.blocks:
            del self.entries[key]  # fully decayed: forget it
        return ALLOW

    def failure(self, key: str, now: float) -> GuardVerdict:
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = _Entry(now)
            while len(self.entries) > self.g.max_tracked:
                self.entries.popitem(last=False)
        else:
            self.entries.move_to_end(key)
            self._advance(key, entry, now)
        if entry.state is GuardState.BLOCKED:  # not counted: a block always ends
            return GuardVerdict(Verdict.BLOCK, entry.blocked_until - now)
        entry.score += 1.0
        if _count(entry.score) >= self.g.max_failures:
            seconds = min(self.g.max_block, self.g.block_seconds * 2 ** entry.blocks)
            entry.blocks += 1
            entry.blocked_until = now + seconds
            self._move(key, entry, GuardEvent.FAILURE, GuardState.BLOCKED)
            return GuardVerdict(Verdict.BLOCK, seconds)
        self._move(key, entry, GuardEvent.FAILURE, self._level(entry.score))
        if entry.state is GuardState.SLOWED:
            return GuardVerdict(Verdict.SLOW, self.g.delay_for(entry.score))
        return ALLOW

    def state(self, key: str, now: float | None) -> GuardState:
        entry = self.entries.get(key)
        if entry is None:
            return GuardState.CLEAR
        if now is not None:
            self._advance(key, entry, now)
        return entry.state


class AuthFailureGuard:
    """`check` before answering a request with credentials, then `record_failure` or
    `record_success`. `account` is the claimed `user@realm` (optional: without it only
    the source counts, as before)."""

    def __init__(self, *, max_failures: int = 10, window: float = 60.0,
                 block_seconds: float = 300.0, slow_after: int = 3, base_delay: float = 0.5,
                 max_delay: float = 8.0, max_block: float = 86_400.0,
                 max_tracked: int = 100_000, has_binding: BindingCheck | None = None) -> None:
        self.failures = 0  # wrong credentials since start (for /metrics)
        if not 0 < slow_after <= max_failures:
            raise ValueError("need 0 < slow_after <= max_failures")
        if window <= 0:
            raise ValueError("need window > 0")
        self.max_failures = max_failures
        self.window = window  # the half-life of a failure score, seconds
        self.block_seconds = block_seconds
        self.max_block = max(max_block, block_seconds)
        self.slow_after = slow_after
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_tracked = max_tracked
        self.has_binding = has_binding
        self._sources = _Table("source", self)
        self._accounts = _Table("account", self)
        self._pairs = _Table("pair", self)

    def delay_for(self, score: float) -> float:
        steps = max(0, _count(score) - self.slow_after)
        return float(min(self.max_delay, self.base_delay * 2 ** min(steps, 32)))

    @staticmethod
    def _pair(source_ip: str, account: str) -> str:
        return f"{account}|{source_ip}"

    def _bound(self, source_ip: str, account: str | None) -> bool:
        return account is not None and self.has_binding is not None \
            and self.has_binding(account, source_ip)

    def check(self, source_ip: str, now: float, account: str | None = None) -> GuardVerdict:
        """What to do with a request carrying credentials (for `account`) from `source_ip`."""
        verdict = self._sources.verdict(source_ip, now)
        if account is None:
            return verdict
        # no pair recorded at all (the usual state): no key to build
        pair = self._pairs.verdict(self._pair(source_ip, account), now) \
            if self._pairs.entries else ALLOW
        verdict = _worst(_worst(verdict, self._accounts.verdict(account, now)), pair)
        if verdict is ALLOW:
            return verdict  # the common case: no binding look-up needed
        if self._bound(source_ip, account):
            # a phone registered from here: only its own pair score may stop it
            return pair
        return verdict

    def record_failure(self, source_ip: str, now: float,
                       account: str | None = None) -> GuardVerdict:
        """A wrong response (or unknown user) from `source_ip`; returns the new verdict."""
        self.failures += 1
        verdict = self._sources.failure(source_ip, now)
        if account is None:
            return verdict
        verdict = _worst(verdict, self._accounts.failure(account, now))
        pair = self._pairs.failure(self._pair(source_ip, account), now)
        if self._bound(source_ip, account):
            return pair
        return _worst(verdict, pair)

    def record_success(self, source_ip: str, now: float, account: str | None = None) -> None:
        """A correct response. It clears nothing (decay only), so logins interleaved with
        guesses do not hide the guesses; kept so callers need not know that."""

    def state(self, source_ip: str, now: float | None = None) -> GuardState:
        """The state of a source address (time advanced to `now` when given)."""
        return self._sources.state(source_ip, now)

    def account_state(self, account: str, now: float | None = None) -> GuardState:
        return self._accounts.state(account, now)

    def __len__(self) -> int:
        """Tracked source addresses."""
        return len(self._sources.entries)
