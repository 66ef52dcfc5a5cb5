"""Rating table of service description 2.6.1: (dialed number, site, time, duration) ->
(class, zone, seconds drawn on the pool, seconds charged, amount).

Each row is rated alone against fresh pools; the sequences below check what depends on the
order of calls: a pool running out in the middle of a call, calendar months in the site's
time zone, DST changes.
"""

from __future__ import annotations

import random
from decimal import Decimal

import phonenumbers
import pytest

from dialplan.packs import Pack
from rating.bundle import PoolKey, PoolLedger, month_of, pool_seconds
from rating.engine import RateClass, Rater, SiteInfo, destination, rate_records
from rating.tariff import NumberKind, RatingConfig

from .conftest import PARIS, REUNION, SITES, epoch, record

D = Decimal
INC, NOT, SPE = RateClass.INCLUDED, RateClass.NOT_INCLUDED, RateClass.SPECIAL
NOV = "2026-11-10 10:00:00"

# dialed, seconds -> class, zone, drawn, charged, amount (test tariff of conftest: connection
# fee 0.10, first 30 s then per second)
TABLE = [
    # France metropolitan and DROM, fixed and mobile: included
    ("0562070499", 125, INC, "france", 125, 0, "0"),
    ("0612345678", 61, INC, "france", 61, 0, "0"),
    ("0262412345", 125, INC, "drom", 125, 0, "0"),
    ("0692123456", 60, INC, "drom", 60, 0, "0"),
    ("0590821234", 60, INC, "drom", 60, 0, "0"),
    ("0596701234", 60, INC, "drom", 60, 0, "0"),
    ("0594291234", 60, INC, "drom", 60, 0, "0"),
    ("0269611234", 60, INC, "drom", 60, 0, "0"),
    ("0639012345", 60, INC, "drom", 60, 0, "0"),
    ("+262692123456", 60, INC, "drom", 60, 0, "0"),
    # Andorra and Liechtenstein: fixed included, mobile not ("Vers les fixes")
    ("00376712345", 60, INC, "europe", 60, 0, "0"),
    ("00376312345", 125, NOT, "europe", 0, 125, "0.4125"),  # 0.10 + 0.15 x 125/60
    ("004232345678", 60, INC, "europe", 60, 0, "0"),
    ("00423660234567", 10, NOT, "europe", 0, 30, "0.1750"),  # first 30 s: 0.10 + 0.15/2
    # fixed and mobile included
    ("0041781234567", 60, INC, "europe", 60, 0, "0"),
    ("0012015550123", 60, INC, "north_america", 60, 0, "0"),
    ("00819012345678", 60, INC, "world_1", 60, 0, "0"),
    # fixed only: Argentina, Algeria
    ("00541123456789", 60, INC, "world_1", 60, 0, "0"),
    ("005491123456789", 60, NOT, "world_1", 0, 60, "0.4500"),
    ("0021312345678", 60, INC, "maghreb", 60, 0, "0"),
    ("00213551234567", 90, NOT, "maghreb", 0, 90, "0.7750"),
    # Russia: named in a heading of 2.6.1 but in none of its lists
    ("0079123456789", 60, NOT, "world_2", 0, 60, "0.6500"),
    ("0073011234567", 60, NOT, "world_2", 0, 60, "0.4500"),
    # special numbers, by range
    ("0800123456", 300, SPE, "special", 0, 0, "0"),  # toll free
    ("0891123456", 60, SPE, "special", 0, 60, "0.8000"),
    ("0899123456", 90, SPE, "special", 0, 90, "1.7000"),  # 0.50 a call + 0.80 x 1.5
    ("3639", 60, SPE, "special", 0, 60, "0.0600"),
    ("118712", 20, SPE, "special", 0, 30, "3.4400"),  # 2.99 a call + 0.90 x 0.5
    ("0806123456", 60, INC, "france", 60, 0, "0"),  # billed as an ordinary call
]


@pytest.mark.parametrize(("dialed", "seconds", "cls", "zone", "drawn", "charged", "amount"), TABLE)
def test_rating_table(config: RatingConfig, dialed: str, seconds: int, cls: RateClass,
                      zone: str, drawn: int, charged: int, amount: str) -> None:
    rated = Rater(config, SITES).rate(record(dialed, "01", epoch(NOV), seconds))
    assert rated is not None
    assert (rated.rate_class, rated.zone, rated.drawn_seconds, rated.charged_seconds) == (
        cls, zone, drawn, charged)
    assert rated.amount == D(amount)
    assert rated.month == "2026-11"


@pytest.mark.parametrize(("dialed", "decision", "cls"), [
    ("112", "emergency", RateClass.EMERGENCY),
    ("15", "emergency", RateClass.EMERGENCY),
    ("501411", "user", RateClass.INTERNAL),
    ("*86", "voicemail", RateClass.INTERNAL),
])
def test_emergency_and_internal_calls_are_free_and_draw_nothing(
    small_config: RatingConfig, dialed: str, decision: str, cls: RateClass
) -> None:
    rater = Rater(small_config, SITES)
    rated = rater.rate(record(dialed, "02", epoch(NOV), 3600, decision=decision))
    assert rated is not None and rated.rate_class is cls
    assert (rated.drawn_seconds, rated.charged_seconds, rated.amount) == (0, 0, D(0))
    assert rater.ledger.used(PoolKey("acme", "02", "2026-11")) == 0


def test_on_net_calls_are_free(small_config: RatingConfig) -> None:
    rater = Rater(small_config, SITES, on_net=lambda n: n == "+33562070499")
    rated = rater.rate(record("0562070499", "02", epoch(NOV), 600))
    assert rated is not None and rated.rate_class is RateClass.ON_NET and rated.amount == 0
    assert rater.ledger.used(PoolKey("acme", "02", "2026-11")) == 0


def test_unanswered_and_inbound_calls_give_no_line(config: RatingConfig) -> None:
    rater = Rater(config, SITES)
    assert rater.rate(record("0612345678", "01", epoch(NOV), 0, answered=False)) is None
    assert rater.rate(record("501410", "01", epoch(NOV), 60, decision="user",
                             customer=None)) is None


def test_pool_is_500_minutes_per_active_user_pooled_per_site(config: RatingConfig) -> None:
    assert SITES[("acme", "01")].pool_seconds(config) == 2500 * 60  # 2.6.1's example
    assert pool_seconds(500, 5) == 150_000
    # any user of the site draws on it: one user alone may use the whole pool
    calls = [record("0612345678", "01", epoch(NOV) + i * 4000, 3600) for i in range(43)]
    rated = rate_records(calls, config, SITES)
    assert sum(r.drawn_seconds for r in rated) == 150_000
    assert [r.charged_seconds for r in rated][-2:] == [1200, 3600]  # split, then all charged


def test_pool_exhausted_in_the_middle_of_a_call_splits_it(small_config: RatingConfig) -> None:
    # site 02: 1 user x 2 minutes = 120 s
    t = epoch(NOV)
    rated = rate_records([
        record("0562070499", "02", t, 100),
        record("0612345678", "02", t + 200, 50),  # 20 s left: 20 included, 30 overage
        record("0262412345", "02", t + 400, 40),  # pool empty: charged from the start
        record("0262412345", "03", t + 400, 40),  # another site, another pool
    ], small_config, SITES)
    assert [(r.drawn_seconds, r.charged_seconds, r.amount) for r in rated] == [
        (100, 0, D(0)),
        (20, 30, D("0.0250")),  # 0.05 x 30/60, no connection fee, no first increment
        (0, 40, D("0.1333")),  # 0.10 + 0.05 x 40/60
        (40, 0, D(0)),
    ]
    assert all(r.rate_class is RateClass.INCLUDED for r in rated)
    assert rated[1].overage and not rated[0].overage


def test_not_included_destinations_never_draw(small_config: RatingConfig) -> None:
    rater = Rater(small_config, SITES)
    rater.rate(record("00376312345", "02", epoch(NOV), 600))
    assert rater.ledger.used(PoolKey("acme", "02", "2026-11")) == 0


def test_a_call_crossing_midnight_at_month_end_counts_in_the_month_it_started(
    small_config: RatingConfig,
) -> None:
    rated = rate_records([
        record("0612345678", "02", epoch("2026-11-30 23:58:00"), 300),
        record("0612345678", "02", epoch("2026-12-01 00:05:00"), 100),
    ], small_config, SITES)
    assert [r.month for r in rated] == ["2026-11", "2026-12"]
    assert (rated[0].drawn_seconds, rated[0].charged_seconds) == (120, 180)
    assert (rated[1].drawn_seconds, rated[1].charged_seconds) == (100, 0)  # a new pool


def test_unused_minutes_expire_at_the_end_of_the_month(small_config: RatingConfig) -> None:
    rated = rate_records([
        record("0612345678", "02", epoch("2026-10-05 10:00:00"), 10),
        record("0612345678", "02", epoch("2026-11-05 10:00:00"), 150),
    ], small_config, SITES)
    assert (rated[1].drawn_seconds, rated[1].charged_seconds) == (120, 30)  # not 230


def test_months_are_the_sites_calendar_months(small_config: RatingConfig) -> None:
    instant = epoch("2026-11-30T21:00:00+00:00")  # 22:00 in Paris, 01:00 on 1 Dec in Réunion
    rated = rate_records([record("0612345678", "02", instant, 60),
                          record("0612345678", "03", instant, 60)], small_config, SITES)
    assert [r.month for r in rated] == ["2026-11", "2026-12"]


def test_dst_changes_move_no_call_across_a_month(small_config: RatingConfig) -> None:
    # 31 March 22:30 UTC is 00:30 on 1 April in Paris (summer time since 29 March): April,
    # although it would still be March with the winter offset.
    april = record("0612345678", "02", epoch("2026-03-31T22:30:00+00:00"), 60)
    march = record("0612345678", "02", epoch("2026-03-31T21:30:00+00:00"), 60)
    rated = rate_records([april, march], small_config, SITES)
    assert [r.month for r in rated] == ["2026-03", "2026-04"]
    assert month_of(epoch("2026-03-01T00:30:00+01:00"), PARIS) == "2026-03"


def test_dst_changes_do_not_change_durations(small_config: RatingConfig) -> None:
    # 25 October 2026: clocks go back at 03:00 CEST to 02:00 CET. A call answered at 02:50
    # CEST and ended at 02:20 CET lasted 30 minutes; so does one over the spring change.
    autumn = epoch("2026-10-25T02:50:00+02:00")
    spring = epoch("2026-03-29T01:50:00+01:00")  # clocks jump to 03:00 at 02:00
    config = SiteInfo("acme", "02", "Rennes", PARIS, {Pack.CALLING: 60})  # 120 min pool
    rater = Rater(small_config, {("acme", "02"): config})
    a = rater.rate(record("0612345678", "02", autumn - 3, 1800))
    s = rater.rate(record("0612345678", "02", spring - 3, 1800))
    assert a is not None and s is not None
    assert (a.month, a.drawn_seconds, s.month, s.drawn_seconds) == ("2026-10", 1800, "2026-03",
                                                                    1800)


def test_rating_does_not_depend_on_the_order_records_come_in(small_config: RatingConfig) -> None:
    t = epoch(NOV)
    calls = [record(n, s, t + i * 37, 20 + (i * 13) % 90)
             for i, (n, s) in enumerate([("0612345678", "01"), ("0262412345", "02"),
                                         ("00376312345", "01"), ("0899123456", "02")] * 10)]
    first = rate_records(calls, small_config, SITES)
    shuffled = calls[:]
    random.Random(7).shuffle(shuffled)
    assert rate_records(shuffled, small_config, SITES) == first


def test_ledger_reports_the_alert_levels_once() -> None:
    ledger = PoolLedger()
    key = PoolKey("acme", "01", "2026-11")
    assert ledger.draw(key, 100, 79).crossed == ()
    assert ledger.draw(key, 100, 1).crossed == (80,)
    assert ledger.draw(key, 100, 5).crossed == ()
    d = ledger.draw(key, 100, 30)
    assert (d.drawn, d.short, d.used, d.crossed) == (15, 15, 100, (100,))
    assert ledger.draw(key, 100, 10).crossed == ()


@pytest.mark.parametrize("region", ["AD", "LI"])
def test_andorra_and_liechtenstein_from_the_numbering_data(config: RatingConfig,
                                                           region: str) -> None:
    for ptype, included in ((phonenumbers.PhoneNumberType.FIXED_LINE, True),
                            (phonenumbers.PhoneNumberType.MOBILE, False)):
        num = phonenumbers.example_number_for_type(region, ptype)
        assert num is not None
        e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
        country, kind = destination(e164)
        assert country == region
        assert (config.included_group(country, kind) is not None) is included


def test_destination_kinds() -> None:
    assert destination("+33562070410") == ("FR", NumberKind.FIXED)
    assert destination("+262692123456") == ("RE", NumberKind.MOBILE)
    assert destination("+12015550123") == ("US", NumberKind.FIXED)  # fixed or mobile: fixed
    assert destination("+33899123456") == ("FR", NumberKind.SPECIAL)
    assert destination("3639") == (None, NumberKind.SPECIAL)


def test_reunion_site_pool(small_config: RatingConfig) -> None:
    rated = rate_records([record("0262412345", "03", epoch("2026-11-10 09:00:00", REUNION), 130)],
                         small_config, SITES)
    assert (rated[0].drawn_seconds, rated[0].charged_seconds) == (120, 10)
    assert rated[0].amount == D("0.0083")  # 0.05 x 10/60
