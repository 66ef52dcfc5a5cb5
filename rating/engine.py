"""Rating: each answered outgoing call record -> its zone, what it drew on the site's pool,
and what it costs. Pure: records, the rating configuration and the sites go in, rated lines
come out; nothing reads the clock, a file or the database.

The rules (service description 2.6.1, issue 25):
- emergency calls are free and draw nothing (CPCE D.98-8); so are internal calls and calls
  to a number hosted on this platform (on-net);
- a call to an included destination (country and fixed/mobile, `config/rating.yaml`) draws
  its seconds on the pool of the caller's site for the calendar month, in the site's time
  zone, in which the call started;
- when the pool runs out during a call, the call is split: the seconds the pool still held
  are included, the rest is overage, charged at the tariff of the destination's zone per
  `then` increment (the call was already under way: no first increment, no connection fee);
- a call to a destination that is not included, or started once the pool is empty, is
  charged from its first second: connection fee, first increment, then per increment;
- premium and special numbers are priced by their range (per call and per minute).

The pool is drawn in the order the calls started (then by record id), so the same records
always give the same split: re-rating a month gives the same figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import PhoneNumberType

from dialplan.packs import Pack

from .bundle import Draw, PoolKey, PoolLedger, month_of, pool_seconds
from .cdr import CallRecord
from .tariff import NumberKind, RatingConfig, SpecialRange

_ZERO = Decimal(0)
CENT = Decimal("0.0001")  # lines keep 4 decimals; totals are sums of lines
_SIXTY = Decimal(60)
_FIXED_TYPES = frozenset({PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE,
                          PhoneNumberType.VOIP})
DEFAULT_TIMEZONE = ZoneInfo("Europe/Paris")


class RateClass(Enum):
    EMERGENCY = "emergency"
    INTERNAL = "internal"
    ON_NET = "on_net"
    INCLUDED = "included"  # an included destination (maybe with an overage part)
    NOT_INCLUDED = "not_included"
    SPECIAL = "special"


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """What rating needs of a site of the plan: its time zone and its active packs."""

    customer: str
    code: str
    name: str = ""
    timezone: ZoneInfo = DEFAULT_TIMEZONE
    packs: Mapping[Pack, int] = field(default_factory=dict)  # users per pack

    def active_users(self, config: RatingConfig) -> int:
        return sum(n for p, n in self.packs.items() if p in config.packs)

    def pool_seconds(self, config: RatingConfig) -> int:
        if config.seconds_per_user is not None:  # a pool counted in seconds (tests, demos)
            return config.seconds_per_user * self.active_users(config)
        return pool_seconds(config.minutes_per_user, self.active_users(config))


@dataclass(frozen=True, slots=True)
class RatedCall:
    record_id: str
    customer: str
    site: str
    month: str
    start: float  # epoch seconds of the call's start
    caller: str
    callee: str | None
    rate_class: RateClass
    zone: str  # tariff zone, or the class for free calls, or "special"
    seconds: int  # answered seconds, rounded up to the second
    drawn_seconds: int = 0  # taken from the site's pool
    charged_seconds: int = 0  # billed seconds charged (overage or not included)
    amount: Decimal = Decimal(0)
    country: str | None = None
    kind: NumberKind | None = None
    group: str | None = None  # 2.6.1 group of an included destination
    special: str | None = None  # name of the special range

    @property
    def overage(self) -> bool:
        return self.rate_class is RateClass.INCLUDED and self.charged_seconds > 0


@lru_cache(maxsize=262144)
def destination(number: str) -> tuple[str | None, NumberKind]:
    """(region, fixed/mobile/special) of an E.164 number with libphonenumber; a short number
    (no '+') or an invalid one is special."""
    if not number.startswith("+"):
        return None, NumberKind.SPECIAL
    try:
        num = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None, NumberKind.SPECIAL
    region = phonenumbers.region_code_for_number(num)
    kind = phonenumbers.number_type(num)
    if kind in _FIXED_TYPES:
        return region, NumberKind.FIXED
    if kind == PhoneNumberType.MOBILE:
        return region, NumberKind.MOBILE
    return region, NumberKind.SPECIAL


def _money(price_per_minute: Decimal, seconds: int, per_call: Decimal = Decimal(0)) -> Decimal:
    return (per_call + price_per_minute * seconds / _SIXTY).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class _Dest:
    """What rating needs of a callee under one configuration (memoised per number)."""

    region: str | None
    kind: NumberKind
    zone: str
    group: str | None  # included by 2.6.1
    price: Decimal  # per minute
    special: SpecialRange | None  # priced by range


class Rater:
    """Rates records one by one, in the order given, drawing on the pools of `ledger`."""

    def __init__(
        self, config: RatingConfig, sites: Mapping[tuple[str, str], SiteInfo],
        on_net: Callable[[str], bool] | None = None, ledger: PoolLedger | None = None,
    ) -> None:
        self.config = config
        self.sites = sites
        self.on_net = on_net
        self.ledger = ledger if ledger is not None else PoolLedger()
        self.last_draw: Draw | None = None  # of the last included call (alerts)
        self._dests: dict[str, _Dest] = {}
        self._pools = {k: s.pool_seconds(config) for k, s in sites.items()}

    def _dest(self, callee: str) -> _Dest:
        d = self._dests.get(callee)
        if d is not None:
            return d
        cfg = self.config
        region, kind = destination(callee) if callee else (None, NumberKind.SPECIAL)
        special = cfg.special_range(callee)
        if special is not None and special.included:
            special, kind = None, NumberKind.FIXED
        elif special is None and kind is NumberKind.SPECIAL:
            special = cfg.special_default
        if special is not None:
            d = _Dest(region, NumberKind.SPECIAL, "special", None, Decimal(0), special)
        else:
            zone = cfg.zone(region)
            d = _Dest(region, kind, zone, cfg.included_group(region, kind),
                      cfg.price(zone, kind), None)
        if len(self._dests) < 1_000_000:
            self._dests[callee] = d
        return d

    def rate(self, r: CallRecord) -> RatedCall | None:
        """The rated line of an answered call placed by a user; None for an unanswered call
        or one that came in from a carrier (not outgoing: nothing to rate)."""
        self.last_draw = None
        customer, site = r.customer, r.site
        if r.answer is None or r.end is None or customer is None or site is None:
            return None
        info = self.sites.get((customer, site))
        month = month_of(r.start, info.timezone if info is not None else DEFAULT_TIMEZONE)
        seconds = r.rated_seconds
        head = (r.id, customer, site, month, r.start, r.caller, r.callee)
        if r.emergency or r.decision == "emergency":
            return RatedCall(*head, RateClass.EMERGENCY, "emergency", seconds)
        if r.decision != "external":
            return RatedCall(*head, RateClass.INTERNAL, "internal", seconds)
        callee = r.callee or ""
        if self.on_net is not None and callee and self.on_net(callee):
            return RatedCall(*head, RateClass.ON_NET, "on_net", seconds)
        cfg = self.config
        d = self._dest(callee)
        if d.special is not None:
            rng = d.special
            billed = cfg.increments.billed(seconds)
            free = rng.per_minute == 0 and rng.per_call == 0
            amount = _ZERO if free or not billed else _money(rng.per_minute, billed, rng.per_call)
            return RatedCall(*head, RateClass.SPECIAL, "special", seconds, 0,
                             0 if free else billed, amount, d.region, NumberKind.SPECIAL,
                             None, rng.name)
        if d.group is None:
            billed = cfg.increments.billed(seconds)
            return RatedCall(*head, RateClass.NOT_INCLUDED, d.zone, seconds, 0, billed,
                             _money(d.price, billed, cfg.connection_fee) if billed else _ZERO,
                             d.region, d.kind)
        draw = self.ledger.draw(PoolKey(customer, site, month), self._pools.get((customer, site), 0),
                                cfg.pool_increments.billed(seconds))
        self.last_draw = draw
        if draw.short == 0:
            return RatedCall(*head, RateClass.INCLUDED, d.zone, seconds, draw.drawn, 0, _ZERO,
                             d.region, d.kind, d.group)
        if draw.drawn == 0:  # the pool was empty when the call started
            billed = cfg.increments.billed(seconds)
            fee = cfg.connection_fee
        else:  # exhausted during the call: only the rest is charged
            billed = cfg.increments.continued(max(0, seconds - draw.drawn))
            fee = _ZERO
        return RatedCall(*head, RateClass.INCLUDED, d.zone, seconds, draw.drawn, billed,
                         _money(d.price, billed, fee) if billed else _ZERO, d.region, d.kind,
                         d.group)


def call_order(r: CallRecord) -> tuple[float, str]:
    """The order pools are drawn in: by start, then record id (deterministic)."""
    return (r.start, r.id)


def rate_records(
    records: Iterable[CallRecord], config: RatingConfig,
    sites: Mapping[tuple[str, str], SiteInfo], on_net: Callable[[str], bool] | None = None,
) -> list[RatedCall]:
    """Rate `records` against fresh pools, in call order."""
    rater = Rater(config, sites, on_net)
    out: list[RatedCall] = []
    for r in sorted(records, key=call_order):
        rated = rater.rate(r)
        if rated is not None:
            out.append(rated)
    return out
