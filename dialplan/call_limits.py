"""Call limits per account and per site: the brake on toll fraud and on one runaway phone.

A stolen password is spent on expensive destinations as fast as the switch lets it: thousands
of parallel calls to premium or far international numbers within minutes (the classic
"toll fraud" pattern). One faulty or looping phone does the same harm to the relay ports of
everyone else. So every call attempt from an account is admitted against four counters,
each kept per account and per site:

- calls in progress, and call attempts in the last minute;
- the same two, stricter, for *costly* destinations (international, premium, shared cost).

Emergency calls are always admitted and never counted (CPCE L.33-1: access to emergency
services must not be blocked). Calls from a trusted trunk are not limited here (the carrier
has its own contract limits).

Pure: time is passed in; the adapter keeps the returned ticket and releases it when the call
ends. The verdict says whether to raise an alert, at most once a minute per limited key, so
a flood never becomes a flood of log lines.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from .numbers import CallCategory

WINDOW_SECONDS = 60.0
COSTLY = frozenset({CallCategory.INTERNATIONAL, CallCategory.PREMIUM, CallCategory.SHARED_COST})


class LimitKind(Enum):
    ACCOUNT_CONCURRENT = "account concurrent calls"
    ACCOUNT_RATE = "account call attempts per minute"
    ACCOUNT_COSTLY_CONCURRENT = "account concurrent costly calls"
    ACCOUNT_COSTLY_RATE = "account costly call attempts per minute"
    SITE_CONCURRENT = "site concurrent calls"
    SITE_RATE = "site call attempts per minute"
    SITE_COSTLY_CONCURRENT = "site concurrent costly calls"
    SITE_COSTLY_RATE = "site costly call attempts per minute"


@dataclass(frozen=True, slots=True)
class CallLimits:
    """Operator settings (`switch.calls.limits` in the YAML); 0 disables a limit."""

    account_concurrent: int = 6
    account_per_minute: int = 30
    account_costly_concurrent: int = 2
    account_costly_per_minute: int = 6
    site_concurrent: int = 200
    site_per_minute: int = 600
    site_costly_concurrent: int = 20
    site_costly_per_minute: int = 60


@dataclass(frozen=True, slots=True)
class CallTicket:
    """What an admitted call holds until it ends (counted keys)."""

    account: str
    site: str | None
    costly: bool
    counted: bool = True


@dataclass(frozen=True, slots=True)
class LimitVerdict:
    admitted: bool
    ticket: CallTicket | None = None
    limit: LimitKind | None = None
    status: int = 200  # the SIP status for a refusal
    alert: bool = False  # first refusal of this key in the window: raise an alert

    @property
    def reason(self) -> str:
        return f"{self.limit.value} reached" if self.limit is not None else ""


def is_costly(categories: Iterable[CallCategory]) -> bool:
    return not COSTLY.isdisjoint(categories)


@dataclass
class _Counter:
    active: int = 0
    attempts: deque[float] = field(default_factory=deque)


class CallLimiter:
    def __init__(self, limits: CallLimits | None = None) -> None:
        self.limits = limits or CallLimits()
        self._counters: dict[tuple[str, str], _Counter] = {}
        self._alerted: dict[tuple[str, str], float] = {}
        self.refused = 0

    def _counter(self, scope: str, key: str) -> _Counter:
        counter = self._counters.get((scope, key))
        if counter is None:
            counter = self._counters[(scope, key)] = _Counter()
        return counter

    def _checks(self, account: str, site: str | None, costly: bool
                ) -> list[tuple[tuple[str, str], int, int, LimitKind, LimitKind]]:
        lim = self.limits
        checks = [(("account", account), lim.account_concurrent, lim.account_per_minute,
                   LimitKind.ACCOUNT_CONCURRENT, LimitKind.ACCOUNT_RATE)]
        if site is not None:
            checks.append((("site", site), lim.site_concurrent, lim.site_per_minute,
                           LimitKind.SITE_CONCURRENT, LimitKind.SITE_RATE))
        if costly:
            checks.append((("account-costly", account), lim.account_costly_concurrent,
                           lim.account_costly_per_minute, LimitKind.ACCOUNT_COSTLY_CONCURRENT,
                           LimitKind.ACCOUNT_COSTLY_RATE))
            if site is not None:
                checks.append((("site-costly", site), lim.site_costly_concurrent,
                               lim.site_costly_per_minute, LimitKind.SITE_COSTLY_CONCURRENT,
                               LimitKind.SITE_COSTLY_RATE))
        return checks

    def admit(self, account: str, site: str | None, categories: Iterable[CallCategory],
              now: float, *, emergency: bool = False) -> LimitVerdict:
        """Admit a new call attempt or say which limit refuses it (403: the account may not
        place more calls now; a refused attempt is not counted, so a phone that backs off
        gets through again)."""
        costly = is_costly(categories)
        if emergency:
            return LimitVerdict(True, CallTicket(account, site, costly, counted=False))
        checks = self._checks(account, site, costly)
        for key, concurrent, per_minute, kind_c, kind_r in checks:
            counter = self._counter(*key)
            attempts = counter.attempts
            while attempts and attempts[0] <= now - WINDOW_SECONDS:
                attempts.popleft()
            if concurrent and counter.active >= concurrent:
                return self._refuse(key, kind_c, now)
            if per_minute and len(attempts) >= per_minute:
                return self._refuse(key, kind_r, now)
        for key, *_ in checks:
            counter = self._counter(*key)
            counter.active += 1
            counter.attempts.append(now)
        return LimitVerdict(True, CallTicket(account, site, costly))

    def _refuse(self, key: tuple[str, str], kind: LimitKind, now: float) -> LimitVerdict:
        self.refused += 1
        last = self._alerted.get(key)
        alert = last is None or now - last >= WINDOW_SECONDS
        if alert:
            self._alerted[key] = now
        return LimitVerdict(False, limit=kind, status=403, alert=alert)

    def release(self, ticket: CallTicket) -> None:
        """The call of `ticket` ended (whatever its outcome)."""
        if not ticket.counted:
            return
        for key, *_ in self._checks(ticket.account, ticket.site, ticket.costly):
            counter = self._counters.get(key)
            if counter is None:
                continue
            counter.active = max(0, counter.active - 1)
            if counter.active == 0 and not counter.attempts:
                del self._counters[key]

    def active(self, account: str) -> int:
        counter = self._counters.get(("account", account))
        return counter.active if counter is not None else 0

    def sweep(self, now: float) -> None:
        """Forget idle keys whose window is over (bounded memory under a spray of accounts)."""
        for key in list(self._counters):
            counter = self._counters[key]
            while counter.attempts and counter.attempts[0] <= now - WINDOW_SECONDS:
                counter.attempts.popleft()
            if counter.active == 0 and not counter.attempts:
                del self._counters[key]
        for key, at in list(self._alerted.items()):
            if now - at >= WINDOW_SECONDS:
                del self._alerted[key]
