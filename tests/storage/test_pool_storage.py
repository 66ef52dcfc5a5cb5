"""The live pool state on SQLite and PostgreSQL (switch.storage.pool): each record counts
once, replays and the catch-up never count twice, alerts are raised once per threshold, and
two writers counting the same records concurrently still count each once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from dialplan.packs import Pack
from dialplan.yamlsource import load_yaml_file
from rating.bundle import PoolKey
from rating.cdr import CallRecord
from rating.engine import SiteInfo
from rating.live import LiveRater
from rating.tariff import RatingConfig, load_rating_data
from switch.storage.cdrs import SqlCallRecordRepository
from switch.storage.engine import create_engine
from switch.storage.pool import SqlPoolStore
from tests.rating.conftest import PARIS, RATING_YAML, epoch, record

SITES = {("acme", "01"): SiteInfo("acme", "01", "Toulouse", PARIS, {Pack.CALLING: 5})}
KEY = PoolKey("acme", "01", "2026-11")


def _config() -> RatingConfig:
    src = load_yaml_file(RATING_YAML)
    src.data["bundle"]["seconds_per_user"] = 20  # 5 users: a pool of 100 s
    return load_rating_data(src)


def _calls(n: int, seconds: int = 10) -> list[CallRecord]:
    return [record("0612345678", "01", epoch("2026-11-02 10:00:00") + 60 * i, seconds,
                   rid=f"p{i:03d}") for i in range(n)]


async def _count_all(store: SqlPoolStore, rater: LiveRater, recs: Sequence[CallRecord]) -> list[int]:
    out: list[int] = []
    for r in recs:
        got = await store.count(r, rater, now=1.0)
        out.extend(a.percent for a in (got.alerts if got else ()))
    return out


def test_each_record_counts_once_and_alerts_once(migrated_url: str) -> None:
    async def run() -> None:
        engine = create_engine(migrated_url)
        try:
            store = SqlPoolStore(engine)
            rater = LiveRater(_config(), SITES)
            recs = _calls(12)  # 120 s against a 100 s pool
            alerts = await _count_all(store, rater, recs[:8])
            assert alerts == [80]  # 80 s used
            # a replay (crash after the commit, spool replayed) counts nothing again
            assert await _count_all(store, rater, recs[:8]) == []
            state, size = await store.state(KEY) or (None, 0)
            assert state is not None and state.used == 80 and state.alerted == 80
            assert size == 100
            assert await _count_all(store, rater, recs[8:]) == [100]
            state, _ = await store.state(KEY) or (None, 0)
            assert state is not None and state.used == 100 and state.alerted == 100
            # a fresh rater (a restart) raises nothing again
            assert await _count_all(store, LiveRater(_config(), SITES), recs) == []
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_free_calls_draw_nothing_and_the_catch_up_counts_what_was_missed(migrated_url: str) -> None:
    async def run() -> None:
        engine = create_engine(migrated_url)
        try:
            store = SqlPoolStore(engine)
            rater = LiveRater(_config(), SITES)
            t = epoch("2026-11-03 09:00:00")
            recs = [record("112", "01", t, 30, rid="e1"),
                    record("501411", "01", t + 1, 30, decision="user", rid="i1"),
                    record("0612345678", "01", t + 2, 0, answered=False, rid="u1"),
                    record("0612345678", "01", t + 3, 42, rid="x1")]
            await SqlCallRecordRepository(engine).write_batch([("close", r) for r in recs])
            missed = await store.uncounted(since=t - 10)
            assert [r.id for r in missed] == ["e1", "i1", "x1"]  # unanswered: not rateable
            assert await store.count(recs[0], rater, now=1.0) is not None
            assert [r.id for r in await store.uncounted(since=t - 10)] == ["i1", "x1"]
            for r in await store.uncounted(since=t - 10):
                assert await store.count(r, rater, now=2.0) is not None
            assert await store.uncounted(since=t - 10) == []
            state, _ = await store.state(KEY) or (None, 0)
            assert state is not None and state.used == 42  # only the external call drew
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_two_writers_count_each_record_once(migrated_url: str) -> None:
    """Two switches (two engines) counting the same records at once: the pool row lock and
    the `rated_calls` key keep the sum exact."""
    async def run() -> None:
        a, b = create_engine(migrated_url), create_engine(migrated_url)
        try:
            recs = _calls(30, seconds=3)  # 90 s
            rater_a, rater_b = LiveRater(_config(), SITES), LiveRater(_config(), SITES)
            got = await asyncio.gather(_count_all(SqlPoolStore(a), rater_a, recs),
                                       _count_all(SqlPoolStore(b), rater_b, recs[::-1]))
            assert sorted(got[0] + got[1]) == [80]
            state, _ = await SqlPoolStore(a).state(KEY) or (None, 0)
            assert state is not None and state.used == 90
        finally:
            await a.dispose()
            await b.dispose()

    asyncio.run(run())
