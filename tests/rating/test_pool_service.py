"""The pool service (switch.services.pool) without a database: it forwards every record
event to the writer it wraps, counts closed answered calls through its store, logs and
POSTs each alert once, leaves a failed count to the catch-up, and counts at start what a
previous run left uncounted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from dialplan import Plan
from rating.bundle import PoolKey
from rating.cdr import CallRecord
from rating.live import LiveRater, LiveRating, PoolState
from rating.tariff import RatingConfig
from switch.services.pool import PoolService, pool_service, rating_file
from switch.settings import RatingSettings

from .conftest import RATING_YAML, epoch, record


class Writer:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def open(self, r: CallRecord) -> None:
        self.events.append(("open", r.id))

    def answered(self, r: CallRecord) -> None:
        self.events.append(("answer", r.id))

    def close(self, r: CallRecord) -> None:
        self.events.append(("close", r.id))


class MemoryStore:
    """The store's contract in memory: a state per pool, a set of counted records."""

    def __init__(self, missed: Sequence[CallRecord] = ()) -> None:
        self.states_: dict[PoolKey, PoolState] = {}
        self.counted: set[str] = set()
        self.missed = list(missed)
        self.down = False

    async def count(self, record: CallRecord, rater: LiveRater,
                    now: float | None = None) -> LiveRating | None:
        if self.down:
            raise ConnectionError("database away")
        pool = rater.pool_of(record)
        state = self.states_.get(pool[0], PoolState()) if pool else PoolState()
        got = rater.rate(record, state)
        if got is None or record.id in self.counted:
            return None
        self.counted.add(record.id)
        if got.key is not None and got.state is not None:
            self.states_[got.key] = got.state
        return got

    async def uncounted(self, since: float, limit: int = 1000) -> Sequence[CallRecord]:
        return [r for r in self.missed if r.id not in self.counted][:limit]

    async def states(self, since_month: str) -> dict[PoolKey, PoolState]:
        return {k: v for k, v in self.states_.items() if k.month >= since_month}


class Plans:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan


def _acme_01(plan: Plan) -> str:
    return plan.customers[0].sites[0].code


def _service(plan: Plan, config: RatingConfig, store: MemoryStore,
             posted: list[Mapping[str, object]]) -> tuple[PoolService, Writer]:
    writer = Writer()
    svc = PoolService(writer, store, Plans(plan), config, webhook_url="http://hook.invalid/x",
                      post=lambda url, event: posted.append(event))
    return svc, writer


def _calls(plan: Plan, n: int, seconds: int) -> list[CallRecord]:
    site = _acme_01(plan)
    c = plan.customers[0].id
    return [replace(record("0612345678", site, epoch("2026-11-02 10:00:00") + 600 * i,
                           seconds, rid=f"s{i}"), customer=c) for i in range(n)]


def test_forwards_counts_and_alerts_once(plan: Plan, small_config: RatingConfig,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """The example's site 01 has 5 users: 2 minutes each, a pool of 600 s."""
    async def run() -> None:
        store = MemoryStore()
        posted: list[Mapping[str, object]] = []
        svc, writer = _service(plan, small_config, store, posted)
        await svc.start()
        calls = _calls(plan, 8, 100)
        for r in calls:
            svc.open(r)
            svc.answered(r)
            svc.close(r)
        svc.close(calls[0])  # a second close of the same record (a replay) counts nothing
        unanswered = record("0612345678", "01", epoch("2026-11-02 11:00:00"), 0,
                            answered=False, rid="u")
        svc.close(unanswered)
        while not svc.idle:
            await asyncio.sleep(0.01)
        await svc.stop()
        assert writer.events[:3] == [("open", "s0"), ("answer", "s0"), ("close", "s0")]
        assert ("close", "u") in writer.events  # forwarded, never counted
        assert svc.counted == 8 and store.counted == {r.id for r in calls}
        assert [e["percent"] for e in posted] == [80, 100]

    with caplog.at_level(logging.WARNING, logger="switch.pool"):
        asyncio.run(run())
    lines = [r.getMessage() for r in caplog.records if "minute pool alert" in r.getMessage()]
    assert len(lines) == 2 and '"percent": 80' in lines[0] and '"percent": 100' in lines[1]


def test_a_failed_count_is_left_to_the_catch_up(plan: Plan, small_config: RatingConfig) -> None:
    async def run() -> None:
        calls = _calls(plan, 3, 100)
        store = MemoryStore(missed=calls)
        posted: list[Mapping[str, object]] = []
        svc, _ = _service(plan, small_config, store, posted)
        store.down = True
        assert await svc.count(calls[0]) is None and not store.counted
        assert await svc.catch_up() == 0  # still down: postponed, nothing lost
        store.down = False
        assert await svc.catch_up() == 3
        assert await svc.catch_up() == 0  # nothing counts twice
        assert store.counted == {r.id for r in calls}

    asyncio.run(run())


def test_the_service_is_off_without_a_rating_file(tmp_path: Path, plan: Plan) -> None:
    store = MemoryStore()
    config_path = tmp_path / "switch.yaml"
    assert rating_file(RatingSettings(), config_path) is None
    assert pool_service(RatingSettings(), config_path, Writer(), Plans(plan), store) is None
    assert pool_service(RatingSettings(enabled=False, file=str(RATING_YAML)), config_path,
                        Writer(), Plans(plan), store) is None
    svc = pool_service(RatingSettings(file=str(RATING_YAML)), config_path, Writer(),
                       Plans(plan), store)
    assert svc is not None and svc.config.minutes_per_user == 500
    (tmp_path / "rating.yaml").write_text(RATING_YAML.read_text(encoding="utf-8"),
                                          encoding="utf-8")
    assert rating_file(RatingSettings(), config_path) == tmp_path / "rating.yaml"


async def test_the_switch_wires_the_pool_around_the_records(tmp_path: Path) -> None:
    """switch.app: the call service writes records through the pool service, which wraps
    the CdrWriter; the policy sits in the call admission; off without a rating file."""
    from switch.app import ServeOptions, build_switch
    from switch.cdr_writer import CdrWriter
    from switch.services.admission import CallAdmission
    from switch.services.pool import PoolAdmission
    from tests.support.server import config_with

    on = build_switch(ServeOptions(config_with(tmp_path, {
        "rating.file": str(RATING_YAML), "rating.refuse_past_pool": ["acme/01"]}),
        data_dir=tmp_path))
    (tmp_path / "off").mkdir()
    off = build_switch(ServeOptions(config_with(tmp_path / "off", {}), data_dir=tmp_path))
    try:
        pool = on.calls.records
        assert isinstance(pool, PoolService) and isinstance(pool.records, CdrWriter)
        assert pool in on.services
        assert pool.records in on.services
        assert isinstance(on.calls.admission, PoolAdmission)
        assert isinstance(off.calls.records, CdrWriter)
        assert type(off.calls.admission) is CallAdmission
    finally:
        await on.engine.dispose()
        await off.engine.dispose()
