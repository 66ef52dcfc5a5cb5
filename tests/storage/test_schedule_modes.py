"""The night switch's table (`schedule_modes`) on SQLite and PostgreSQL (issue 12)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dialplan import ScheduleMode
from switch.services.schedules import ScheduleModes
from switch.storage.engine import create_engine
from switch.storage.schedules import ScheduleModeRecord, SqlScheduleModes


async def _run(url: str) -> None:
    engine = create_engine(url)
    try:
        repo = SqlScheduleModes(engine)
        assert await repo.all() == []
        assert await repo.forced() == {}
        empty = await repo.version()
        assert empty == (0, None, None)

        rec = await repo.set("acme", "office", ScheduleMode.CLOSED, "501410", 1000.0)
        assert rec == ScheduleModeRecord("acme", "office", ScheduleMode.CLOSED, 1000.0, "501410")
        await repo.set("globex", "office", ScheduleMode.OPEN, "cli:ops", 1001.0)
        assert await repo.forced() == {("acme", "office"): ScheduleMode.CLOSED,
                                       ("globex", "office"): ScheduleMode.OPEN}
        v1 = await repo.version()
        assert v1[0] == 2 and v1[1] == 1001.0

        # an upsert replaces the row: one row per (customer, schedule)
        await repo.set("acme", "office", ScheduleMode.OPEN, "cli:ops", 1002.0)
        rows = await repo.all()
        assert [(r.customer, r.schedule, r.mode, r.changed_by) for r in rows] == [
            ("acme", "office", ScheduleMode.OPEN, "cli:ops"),
            ("globex", "office", ScheduleMode.OPEN, "cli:ops")]
        v2 = await repo.version()
        assert v2 != v1

        # AUTO stays a row (its change must be seen by pollers) but forces nothing
        await repo.set("acme", "office", ScheduleMode.AUTO, "501410", 1003.0)
        assert await repo.forced() == {("globex", "office"): ScheduleMode.OPEN}
        assert len(await repo.all()) == 2
        v3 = await repo.version()
        assert v3 != v2

        # a write that is not the newest (another node's clock behind) still changes it
        await repo.set("globex", "office", ScheduleMode.CLOSED, "node-b", 1001.5)
        assert await repo.version() != v3
        assert (await repo.forced())[("globex", "office")] is ScheduleMode.CLOSED
    finally:
        await engine.dispose()


def test_schedule_modes_round_trip(migrated_url: str) -> None:
    asyncio.run(_run(migrated_url))


async def _until(predicate: Callable[[], bool], timeout: float = 3.0) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
    return loop.time() - start


async def test_service_polls_applies_and_persists(migrated_url: str) -> None:
    engine, writer_engine = create_engine(migrated_url), create_engine(migrated_url)
    key = ("acme", "office")
    try:
        switch = ScheduleModes(engine, poll_interval=0.1)
        await switch.start()
        assert dict(switch.forced) == {}
        # another process (the CLI, another node) writes: the poll picks it up
        writer = SqlScheduleModes(writer_engine)
        await writer.set("acme", "office", ScheduleMode.CLOSED, "cli:ops", 2000.0)
        waited = await _until(lambda: switch.forced.get(key) is ScheduleMode.CLOSED)
        assert waited < 1.0
        # the *55 path: applied in memory at once, written behind
        switch.set("acme", "office", ScheduleMode.OPEN, "501410")
        assert switch.forced[key] is ScheduleMode.OPEN
        await switch.stop()  # waits for the write
        assert await writer.forced() == {key: ScheduleMode.OPEN}
        # a restart loads what was stored
        again = ScheduleModes(engine, poll_interval=0.1)
        await again.start()
        assert dict(again.forced) == {key: ScheduleMode.OPEN}
        await writer.set("acme", "office", ScheduleMode.AUTO, "cli:ops", 2001.0)
        await _until(lambda: key not in again.forced)
        again.set("acme", "office", ScheduleMode.CLOSED, "501410")
        again.set("acme", "office", ScheduleMode.AUTO, "501410")
        assert dict(again.forced) == {}
        await again.stop()
        assert await writer.forced() == {}
    finally:
        await engine.dispose()
        await writer_engine.dispose()
