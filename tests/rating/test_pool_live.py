"""The live pool state, pure (rating.live): a record rated against a stored pool state gives
the new state and the alerts it crossed, once per threshold; free calls draw nothing; the
month is the site's; a replayed state raises nothing again."""

from __future__ import annotations

from dataclasses import replace

from rating.bundle import PoolKey
from rating.live import LiveRater, PoolState
from rating.tariff import RatingConfig

from .conftest import SITES, epoch, record

# small_config: 2 minutes per user; acme/01 has 5 users -> a pool of 600 s


def test_alerts_once_at_80_and_100(small_config: RatingConfig) -> None:
    rater = LiveRater(small_config, SITES)
    state = PoolState()
    seen: list[int] = []
    for i in range(7):  # 7 calls of 100 s against 600 s
        r = record("0612345678", "01", epoch("2026-11-02 10:00:00") + 300 * i, 100)
        got = rater.rate(r, state)
        assert got is not None and got.state is not None and got.size == 600
        assert got.key == PoolKey("acme", "01", "2026-11")
        seen.extend(a.percent for a in got.alerts)
        state = got.state
    assert seen == [80, 100]
    assert state == PoolState(600, 100)


def test_one_call_crossing_both_thresholds_raises_both(small_config: RatingConfig) -> None:
    rater = LiveRater(small_config, SITES)
    r = record("0612345678", "01", epoch("2026-11-02 10:00:00"), 700)
    got = rater.rate(r, PoolState(100, 0))
    assert got is not None and [a.percent for a in got.alerts] == [80, 100]
    assert got.line.drawn_seconds == 500 and got.line.charged_seconds == 200
    event = got.alerts[1].event(r.id)
    assert event["exhausted"] is True and event["remaining_minutes"] == "0.00"
    assert event["pool_minutes"] == "10.00" and event["record_id"] == r.id


def test_a_stored_alert_is_not_raised_again(small_config: RatingConfig) -> None:
    """After a restart, the state read back says 80 % was raised: only 100 % remains."""
    rater = LiveRater(small_config, SITES)
    r = record("0612345678", "01", epoch("2026-11-02 10:00:00"), 30)
    got = rater.rate(r, PoolState(500, 80))
    assert got is not None and got.alerts == () and got.state == PoolState(530, 80)
    got = rater.rate(replace(r, id="again"), PoolState(600, 100))
    assert got is not None and got.alerts == () and got.line.drawn_seconds == 0


def test_free_and_not_included_calls_touch_no_pool(small_config: RatingConfig) -> None:
    rater = LiveRater(small_config, SITES)
    t = epoch("2026-11-02 10:00:00")
    # emergency, internal, and a Russian mobile (not included: charged, no pool)
    for r in (record("112", "01", t, 60), record("501411", "01", t, 60, decision="user"),
              record("0079121234567", "01", t, 60)):
        assert rater.pool_of(r) is None
        got = rater.rate(r, PoolState(599, 80))
        assert got is not None and got.key is None and got.state is None and got.alerts == ()
    unanswered = record("0612345678", "01", t, 0, answered=False)
    assert not rater.rateable(unanswered) and rater.rate(unanswered) is None


def test_the_month_is_the_sites(small_config: RatingConfig) -> None:
    """23:30 on 31 October in Paris is 02:30 on 1 November in Réunion: the same instant
    draws on October's pool in Toulouse and November's in Saint-Denis."""
    rater = LiveRater(small_config, SITES)
    start = epoch("2026-10-31 23:30:00")
    reunion = rater.pool_of(record("0262412345", "03", start, 60))
    assert reunion is not None and reunion[0] == PoolKey("acme", "03", "2026-11")
    paris = rater.pool_of(record("0262412345", "01", start, 60))
    assert paris is not None and paris[0] == PoolKey("acme", "01", "2026-10")


def test_a_pool_counted_in_seconds(small_config: RatingConfig) -> None:
    """`bundle.seconds_per_user` (test and demo pools): 3 s per user, 5 users -> 15 s."""
    seconds = replace(small_config, seconds_per_user=3)
    got = LiveRater(seconds, SITES).pool_of(
        record("0612345678", "01", epoch("2026-11-02 10:00:00"), 20))
    assert got is not None and got[1] == 15


def test_policy_refuses_past_the_pool_and_charged_destinations(
        small_config: RatingConfig) -> None:
    from rating.live import NOT_INCLUDED, PAST_POOL, SitePolicy

    rater = LiveRater(small_config, SITES)
    t = epoch("2026-11-02 10:00:00")
    mobile = record("0612345678", "01", t, 60)
    russia = record("0079121234567", "01", t, 60)
    premium = record("0899123456", "01", t, 60)
    free = record("0800123456", "01", t, 60)
    both = SitePolicy(past_pool=True, not_included=True)
    used = {PoolKey("acme", "01", "2026-11"): 599}
    assert rater.refusal(mobile, lambda k: used.get(k, 0), both) is None
    used[PoolKey("acme", "01", "2026-11")] = 600
    assert rater.refusal(mobile, lambda k: used.get(k, 0), both) == PAST_POOL
    assert rater.refusal(mobile, lambda k: used.get(k, 0), SitePolicy(not_included=True)) is None
    assert rater.refusal(russia, lambda k: 0, SitePolicy(not_included=True)) == NOT_INCLUDED
    assert rater.refusal(premium, lambda k: 0, SitePolicy(not_included=True)) == NOT_INCLUDED
    assert rater.refusal(free, lambda k: 0, both) is None  # toll-free costs nothing
    assert rater.refusal(russia, lambda k: 0, SitePolicy(past_pool=True)) is None
    assert rater.refusal(russia, lambda k: 0, SitePolicy()) is None
