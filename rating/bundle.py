"""The pooled minute bundle of a site (service description 2.6.1).

Each active user brings `minutes_per_user` minutes a calendar month to one pool for the whole
site; any user of the site draws on it, nobody has a quota, and what is left expires at the
end of the month (a new month is a new pool: the ledger keys pools by month). The pool is
counted in seconds so that a call that exhausts it can be split at the exact second.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

# Alert levels of the live pool state (issue 25: alerts at 80 % and 100 %).
ALERT_PERCENTS: tuple[int, ...] = (80, 100)


class PoolKey(NamedTuple):
    """One site's pool for one calendar month of the site's time zone (a tuple: hashed in
    C, it is the key of every draw)."""

    customer: str
    site: str
    month: str  # "2026-11"


def month_of(epoch: float, tz: ZoneInfo) -> str:
    """The calendar month, in the site's time zone, of the instant `epoch`: a call that
    starts at 23:50 on the last day of the month counts in that month even if it ends in
    the next one (issue 25), and DST changes move no call across a month end."""
    t = datetime.fromtimestamp(epoch, tz)
    return f"{t.year:04d}-{t.month:02d}"


def pool_seconds(minutes_per_user: int, active_users: int) -> int:
    """2.6.1: "si un site compte 5 Utilisateurs, le pool total ... sera de 2 500 minutes"."""
    return minutes_per_user * max(0, active_users) * 60


@dataclass(frozen=True, slots=True)
class Draw:
    """What one call took from a pool."""

    drawn: int  # seconds the pool paid for
    short: int  # seconds the pool could not pay for (the overage part)
    used: int  # seconds used of the pool after this call
    size: int  # the pool, in seconds
    crossed: tuple[int, ...] = ()  # alert percentages this draw reached for the first time


class PoolLedger:
    """Seconds used of each pool. Pure and in memory: the export replays a month of records
    through a fresh ledger; the live state (issue 25) keeps one and persists its draws."""

    def __init__(self, alert_percents: Iterable[int] = ALERT_PERCENTS) -> None:
        self._used: dict[PoolKey, int] = {}
        self._alerts = tuple(sorted(alert_percents))

    def used(self, key: PoolKey) -> int:
        return self._used.get(key, 0)

    def seed(self, key: PoolKey, used: int) -> None:
        """Start the pool `key` at `used` seconds (the live state read from the database)."""
        if used > 0:
            self._used[key] = used
        else:
            self._used.pop(key, None)

    def remaining(self, key: PoolKey, size: int) -> int:
        return max(0, size - self.used(key))

    def draw(self, key: PoolKey, size: int, need: int) -> Draw:
        """Take up to `need` seconds from the pool `key` of `size` seconds."""
        before = self._used.get(key, 0)
        drawn = min(max(0, need), max(0, size - before))
        after = before + drawn
        if drawn:
            self._used[key] = after
        crossed = tuple(
            p for p in self._alerts if before * 100 < p * size <= after * 100
        ) if drawn else ()
        return Draw(drawn, max(0, need) - drawn, after, size, crossed)
