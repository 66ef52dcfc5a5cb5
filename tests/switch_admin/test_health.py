"""HealthChecks (issue 20 item 8): the database probe is bounded and cached, the disk check
compares free space with a threshold; against real engines too."""

from __future__ import annotations

import asyncio
from pathlib import Path

from switch.admin.health import HealthChecks, disk_free_of, engine_probe
from switch.storage import create_engine
from switch.storage.cli import db_upgrade


async def test_probe_is_cached_and_bounded() -> None:
    calls = 0

    async def slow() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(10)

    h = HealthChecks(db_probe=slow, db_timeout=0.05, cache_seconds=5.0)
    first = await h.database(100.0)
    assert not first.ok and "no answer" in first.detail["error"]
    # concurrent and repeated probes within the cache window share the answer
    results = await asyncio.gather(*(h.database(101.0) for _ in range(20)))
    assert calls == 1 and all(r is first for r in results)
    await h.database(106.0)  # cache expired: probed again
    assert calls == 2


async def test_database_recovery_is_seen_after_the_cache() -> None:
    up = False

    async def probe() -> None:
        if not up:
            raise OSError("down")

    h = HealthChecks(db_probe=probe, disk_free=lambda: 10**12, cache_seconds=3.0)
    assert (await h.report(0.0)).status == 503
    up = True
    assert (await h.report(1.0)).status == 503  # cached
    report = await h.report(3.5)
    assert report.status == 200 and report.as_json()["failed"] == []


async def test_real_engines(tmp_path: Path) -> None:
    good_url = f"sqlite+aiosqlite:///{tmp_path / 'wte.db'}"
    db_upgrade(good_url)
    good = create_engine(good_url)
    # a database file with no schema (deleted and recreated, wrong data dir): fails
    empty = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    # nothing listening there
    gone = create_engine("postgresql+asyncpg://postgres@127.0.0.1:9/test")
    try:
        ok = await HealthChecks(db_probe=engine_probe(good),
                                disk_free=disk_free_of(str(tmp_path)),
                                min_free_bytes=1).report(0.0)
        assert ok.status == 200 and ok.checks["disk"].detail["free_bytes"] > 0
        for engine in (empty, gone):
            bad = await HealthChecks(db_probe=engine_probe(engine), db_timeout=3.0).report(0.0)
            assert bad.status == 503 and bad.as_json()["failed"] == ["database"]
    finally:
        for engine in (good, empty, gone):
            await engine.dispose()


async def test_disk_threshold_and_errors() -> None:
    def broken() -> int:
        raise FileNotFoundError("data dir gone")

    h = HealthChecks(disk_free=broken)
    assert not h.disk().ok and h.disk().detail == {"error": "FileNotFoundError"}
    assert HealthChecks(disk_free=lambda: 5, min_free_bytes=5).disk().ok
    assert not HealthChecks(disk_free=lambda: 4, min_free_bytes=5).disk().ok
