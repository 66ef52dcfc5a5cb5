"""The live pool state of a site (issue 25): each call record, when its call ends, is rated
against the pool as it stands, and the new state and any alert it raised come out. Pure: the
state read from the database goes in, the state to write back comes out; the adapter
(switch.services.pool with switch.storage.pool) reads and writes it in one transaction, so
that a record is counted exactly once.

The live state is the gauge that raises alerts; the bill is the monthly export, which
re-rates the month in start order (engine.call_order). Calls that overlap may split their
seconds between pool and overage differently here (they end in another order than they
start); the month's total drawn seconds are the same.

Alerts: at 80 % and 100 % of a site's pool (bundle.ALERT_PERCENTS), once per threshold, per
site, per month. The state keeps the highest threshold raised, so a restart or a replayed
record never raises one again; a pool that grows during the month (a user added) raises
nothing below the threshold already raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .bundle import ALERT_PERCENTS, PoolKey, PoolLedger
from .cdr import CallRecord
from .engine import RateClass, RatedCall, Rater, SiteInfo
from .export import minutes
from .tariff import RatingConfig


@dataclass(frozen=True, slots=True)
class PoolState:
    """One site's pool for one month, as stored: seconds used and the highest alert raised."""

    used: int = 0
    alerted: int = 0  # percent; 0 = none yet


@dataclass(frozen=True, slots=True)
class PoolAlert:
    """A site's pool reached `percent` % of its size with the call `record_id`."""

    key: PoolKey
    percent: int
    used: int  # seconds used after the call
    size: int  # the pool, seconds

    def event(self, record_id: str) -> dict[str, Any]:
        """The JSON body of the log line and of the webhook."""
        return {
            "event": "minute_pool_alert", "percent": self.percent,
            "customer": self.key.customer, "site": self.key.site, "month": self.key.month,
            "used_minutes": minutes(self.used), "pool_minutes": minutes(self.size),
            "remaining_minutes": minutes(max(0, self.size - self.used)),
            "exhausted": self.used >= self.size, "record_id": record_id,
        }


@dataclass(frozen=True, slots=True)
class LiveRating:
    """A record rated against the live pool: its line, and for a call that drew on a pool,
    the pool, its size, its state after the call and the alerts the call raised."""

    line: RatedCall
    key: PoolKey | None = None
    size: int = 0
    state: PoolState | None = None
    alerts: tuple[PoolAlert, ...] = ()


@dataclass(frozen=True, slots=True)
class SitePolicy:
    """A site's optional policy (issue 25): refuse calls once its pool is used up, and/or
    calls to destinations the pool does not include (charged ones: not included, premium).
    Emergency calls are never refused (the adapter checks outgoing external calls only)."""

    past_pool: bool = False
    not_included: bool = False


PAST_POOL = "minute pool of the site used up"
NOT_INCLUDED = "destination not included in the minute pool"


class LiveRater:
    """Rates one record at a time against a pool state given by the caller."""

    def __init__(self, config: RatingConfig, sites: Mapping[tuple[str, str], SiteInfo],
                 on_net: Callable[[str], bool] | None = None,
                 alert_percents: Iterable[int] = ALERT_PERCENTS) -> None:
        self.config = config
        self._rater = Rater(config, sites, on_net)
        self._alerts = tuple(sorted(alert_percents))

    @staticmethod
    def rateable(r: CallRecord) -> bool:
        """An answered call placed by a user of a site: the only records rating reads."""
        return (r.answer is not None and r.end is not None and r.customer is not None
                and r.site is not None)

    def pool_of(self, r: CallRecord) -> tuple[PoolKey, int] | None:
        """The pool (and its size) `r` draws on, or None (a free, not included or special
        call, or not rateable): the adapter locks that pool's row before `rate`."""
        self._rater.ledger = PoolLedger(())
        line = self._rater.rate(r)
        draw = self._rater.last_draw
        if line is None or draw is None:
            return None
        return PoolKey(line.customer, line.site, line.month), draw.size

    def rate(self, r: CallRecord, state: PoolState = PoolState()) -> LiveRating | None:
        """`r` rated against its pool at `state`; None when `r` is not rateable."""
        probe = self.pool_of(r)
        ledger = PoolLedger(())
        if probe is not None:
            ledger.seed(probe[0], state.used)
        self._rater.ledger = ledger
        line = self._rater.rate(r)
        draw = self._rater.last_draw
        if line is None:
            return None
        if probe is None or draw is None:
            return LiveRating(line)
        key, size = probe
        reached = tuple(p for p in self._alerts
                        if p > state.alerted and size > 0 and draw.used * 100 >= p * size)
        after = PoolState(draw.used, max((state.alerted, *reached)))
        return LiveRating(line, key, size, after,
                          tuple(PoolAlert(key, p, draw.used, size) for p in reached))

    def refusal(self, attempt: CallRecord, used: Callable[[PoolKey], int],
                policy: SitePolicy) -> str | None:
        """Why `policy` refuses the call `attempt` (a record of the call as if answered now,
        for a minute), given the seconds `used` of each pool; None to let it through."""
        if not (policy.past_pool or policy.not_included):
            return None
        pool = self.pool_of(attempt)
        if policy.past_pool and pool is not None and pool[1] > 0 and used(pool[0]) >= pool[1]:
            return PAST_POOL
        if policy.past_pool and pool is not None and pool[1] == 0:
            return PAST_POOL  # a site without active users has no minutes at all
        if policy.not_included and pool is None:
            line = self.rate(attempt)
            charged = line is not None and (
                line.line.rate_class is RateClass.NOT_INCLUDED
                or (line.line.rate_class is RateClass.SPECIAL and line.line.amount > 0))
            if charged:
                return NOT_INCLUDED
        return None
