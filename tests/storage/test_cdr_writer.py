"""CdrWriter (issue 20 item 7): records written at answer; a database outage spools them
to an fsynced local file, retried with back-off until the database is back; none lost,
none duplicated (upserts by record id); the spool survives kill -9 and is replayed."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

from rating.cdr import RESTART_CAUSE, CallRecord
from switch.cdr_spool import SPOOL_FILE, CdrSpool, Event, encode
from switch.cdr_writer import CdrWriter
from switch.storage import create_engine
from switch.storage.cdrs import SqlCallRecordRepository
from switch.storage.cli import db_downgrade, db_upgrade

NOW = 1_800_000_000.0
REPO_ROOT = Path(__file__).resolve().parents[2]


def rec(i: int, **kw: object) -> CallRecord:
    base = CallRecord(id=f"r{i:04d}", call_id=f"c{i}@phone", caller="501410", callee="501411",
                      dialed="sip:501411@acme", decision="user", site="01", customer="acme",
                      start=NOW + i)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def lifecycle(writer: CdrWriter, i: int) -> CallRecord:
    r = rec(i)
    writer.open(r)
    r = dataclasses.replace(r, answer=NOW + i + 2)
    writer.answered(r)
    r = r.closed(end=NOW + i + 30, disposition="answered", status=200, cause="bye",
                 side="caller")
    r = dataclasses.replace(r, transferred_to="+33612345678" if i % 2 else None)
    writer.close(r)
    return r


class Flaky:
    """A repository that fails its first `failures` calls, then delegates (or stores in a
    dict when `inner` is None)."""

    def __init__(self, failures: int, inner: SqlCallRecordRepository | None = None) -> None:
        self.failures = failures
        self.inner = inner
        self.rows: dict[str, CallRecord] = {}
        self.calls = 0
        self.writes: list[int] = []

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionRefusedError("database down")

    async def write_batch(self, items: Sequence[Event]) -> None:
        self._maybe_fail()
        self.writes.append(len(items))
        if self.inner is not None:
            await self.inner.write_batch(items)
        else:
            for _kind, r in items:
                self.rows[r.id] = r

    async def close_orphans(self, now: float, cause: str = RESTART_CAUSE,
                            started_before: float | None = None) -> int:
        self._maybe_fail()
        if self.inner is not None:
            return await self.inner.close_orphans(now, cause, started_before)
        return 0


async def wait_for(predicate: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.01)


def fast_writer(repo: object, spool: Path) -> CdrWriter:
    return CdrWriter(repo=repo, spool_path=spool, clock=lambda: NOW + 10_000,  # type: ignore[arg-type]
                     initial_backoff=0.01, max_backoff=0.05)


async def test_outage_spools_then_writes_everything_once(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    repo = Flaky(failures=6)
    spool = tmp_path / SPOOL_FILE
    writer = fast_writer(repo, spool)
    await writer.begin()
    finals = [lifecycle(writer, i) for i in range(40)]
    await wait_for(lambda: writer.settled)
    await wait_for(lambda: not writer.backlog)
    assert writer.spooled_events > 0  # it went through the spool
    assert spool.stat().st_size == 0  # truncated once written
    assert repo.rows == {r.id: r for r in finals}  # none lost, each in its final state
    await writer.stop()
    assert sum("database unavailable" in r.getMessage() for r in caplog.records) == 1


async def test_events_never_overtake_spooled_ones(tmp_path: Path) -> None:
    """While the spool holds events, later ones are appended behind them even though the
    database would take them: a close never lands before its open."""
    repo = Flaky(failures=1)
    writer = CdrWriter(repo=repo, spool_path=tmp_path / SPOOL_FILE, initial_backoff=30.0)
    await writer.begin()
    await wait_for(lambda: repo.calls >= 1)  # the orphan sweep failed: the database is down
    writer.open(rec(1))
    await wait_for(lambda: writer.settled)
    assert repo.writes == [] or writer.spooled_events == 0
    writer.close(rec(1, end=NOW + 9, disposition="answered"))
    await writer.stop()  # the drain writes everything in order
    assert repo.rows["r0001"].end == NOW + 9


async def test_spool_of_a_dead_run_is_replayed_at_start(migrated_url: str, tmp_path: Path) -> None:
    spool = tmp_path / SPOOL_FILE
    down = fast_writer(Flaky(failures=10**9), spool)
    await down.begin()
    finals = [lifecycle(down, i) for i in range(10)]
    open_one = rec(99, answer=NOW + 101)
    down.open(rec(99))
    down.answered(open_one)
    await wait_for(lambda: down.settled)
    down._task.cancel()  # type: ignore[union-attr]  # dies without a drain
    assert spool.stat().st_size > 0
    # a torn last line (killed in the middle of a write) is skipped
    with spool.open("a", encoding="utf-8") as fh:
        fh.write(encode("close", rec(5))[:40])

    engine = create_engine(migrated_url)
    try:
        sql = SqlCallRecordRepository(engine)
        up = CdrWriter(repo=sql, spool_path=spool, clock=lambda: NOW + 10_000)
        await up.begin()
        await wait_for(lambda: not up.backlog)
        await up.stop()
        rows = {r.id: r for r in await sql.recent(1000)}
        assert len(rows) == 11
        for r in finals:
            assert rows[r.id] == r
        # the call in progress kept its answer time and was closed as interrupted
        assert rows["r0099"].answer == NOW + 101
        assert rows["r0099"].disposition == "interrupted" and rows["r0099"].cause == RESTART_CAUSE
        assert spool.stat().st_size == 0
        # replaying the same events again changes nothing and duplicates nothing
        await asyncio.to_thread(CdrSpool(spool).append, [("close", r) for r in finals])
        again = CdrWriter(repo=sql, spool_path=spool, clock=lambda: NOW + 20_000)
        await again.begin()
        await wait_for(lambda: not again.backlog)
        await again.stop()
        rows2 = {r.id: r for r in await sql.recent(1000)}
        assert rows2 == rows
    finally:
        await engine.dispose()


async def test_outage_against_a_real_database(migrated_url: str, tmp_path: Path) -> None:
    engine = create_engine(migrated_url)
    try:
        sql = SqlCallRecordRepository(engine)
        repo = Flaky(failures=4, inner=sql)
        writer = fast_writer(repo, tmp_path / SPOOL_FILE)
        await writer.begin()
        finals = [lifecycle(writer, i) for i in range(25)]
        await wait_for(lambda: writer.settled and not writer.backlog)
        await writer.stop()
        rows = await sql.recent(1000)
        assert sorted(r.id for r in rows) == sorted(r.id for r in finals)
        assert {r.id: r for r in rows} == {r.id: r for r in finals}
        assert any(r.transferred_to == "+33612345678" for r in rows)
    finally:
        await engine.dispose()


async def test_unwritable_spool_keeps_events_in_memory(tmp_path: Path) -> None:
    """Database down and the spool unwritable too (here: its path is a directory, which
    fails even for root): events wait in memory and reach the database when it is back."""
    blocked = tmp_path / SPOOL_FILE
    blocked.mkdir()
    repo = Flaky(failures=5)
    writer = fast_writer(repo, blocked)
    await writer.begin()
    finals = [lifecycle(writer, i) for i in range(5)]
    await wait_for(lambda: not writer.backlog and writer.settled)
    await writer.stop()
    assert repo.rows == {r.id: r for r in finals}


class Hanging(Flaky):
    """A database that accepts the connection and never answers."""

    async def write_batch(self, items: Sequence[Event]) -> None:
        self.calls += 1
        await asyncio.sleep(3600)


async def test_a_hanging_database_counts_as_down(tmp_path: Path) -> None:
    spool = tmp_path / SPOOL_FILE
    writer = CdrWriter(repo=Hanging(0), spool_path=spool, write_timeout=0.05,
                       initial_backoff=60.0)
    await writer.begin()
    finals = [lifecycle(writer, i) for i in range(3)]
    await wait_for(lambda: writer.settled)
    assert writer.spooled_events == 9
    writer.open(rec(50))
    await writer.stop()
    spooled = [e for chunk in CdrSpool(spool).chunks(100) for e in chunk]
    assert [r for _k, r in spooled][-1] == rec(50)  # drained to the spool at stop
    assert {r.id: r for _k, r in spooled} == {**{r.id: r for r in finals}, "r0050": rec(50)}


async def test_orphans_of_this_run_are_not_closed(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    try:
        sql = SqlCallRecordRepository(engine)
        await sql.write_batch([("open", rec(1)), ("open", rec(2, start=NOW + 500))])
        assert await sql.close_orphans(NOW + 600, started_before=NOW + 100) == 1
        assert (await sql.get("r0001")).disposition == "interrupted"  # type: ignore[union-attr]
        assert (await sql.get("r0002")).end is None  # type: ignore[union-attr]
    finally:
        await engine.dispose()


def test_migration_0004_transferred_to(db_url: str) -> None:
    async def write_and_read(records: list[CallRecord]) -> list[CallRecord]:
        engine = create_engine(db_url)
        try:
            sql = SqlCallRecordRepository(engine)
            await sql.write_batch([("close", r) for r in records])
            return list(await sql.recent(10))
        finally:
            await engine.dispose()

    async def columns() -> set[str]:
        from sqlalchemy import inspect

        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                cols = await conn.run_sync(lambda c: inspect(c).get_columns("call_records"))
                return {c["name"] for c in cols}
        finally:
            await engine.dispose()

    db_upgrade(db_url, "0003")
    assert "transferred_to" not in asyncio.run(columns())
    db_upgrade(db_url, "0004")
    assert "transferred_to" in asyncio.run(columns())
    db_downgrade(db_url, "0003")
    assert "transferred_to" not in asyncio.run(columns())
    # the model writes every column of the head (0011 added the queue's): write there
    db_upgrade(db_url, "head")
    got = asyncio.run(write_and_read([rec(1, transferred_to="+33612345678")]))
    assert got[0].transferred_to == "+33612345678"


def test_migration_0011_queue_outcome(db_url: str) -> None:
    async def write_and_read(records: list[CallRecord]) -> list[CallRecord]:
        engine = create_engine(db_url)
        try:
            sql = SqlCallRecordRepository(engine)
            await sql.write_batch([("close", r) for r in records])
            return list(await sql.recent(10))
        finally:
            await engine.dispose()

    async def columns() -> set[str]:
        from sqlalchemy import inspect

        engine = create_engine(db_url)
        try:
            async with engine.connect() as conn:
                cols = await conn.run_sync(lambda c: inspect(c).get_columns("call_records"))
                return {c["name"] for c in cols}
        finally:
            await engine.dispose()

    queue_columns = {"queue_outcome", "queue_wait"}
    db_upgrade(db_url, "0010")
    assert not queue_columns & asyncio.run(columns())
    db_upgrade(db_url, "0011")
    assert queue_columns <= asyncio.run(columns())
    got = asyncio.run(write_and_read([rec(1, queue_outcome="answered", queue_wait=12.5)]))
    assert (got[0].queue_outcome, got[0].queue_wait) == ("answered", 12.5)
    db_downgrade(db_url, "0010")
    assert not queue_columns & asyncio.run(columns())
    db_upgrade(db_url, "head")


CHILD = textwrap.dedent("""
    import asyncio, dataclasses, sys
    from pathlib import Path
    from rating.cdr import CallRecord
    from switch.cdr_writer import CdrWriter
    from switch.storage import create_engine
    from switch.storage.cdrs import SqlCallRecordRepository

    async def main(url, spool):
        engine = create_engine(url)
        writer = CdrWriter(repo=SqlCallRecordRepository(engine), spool_path=Path(spool),
                           initial_backoff=0.05, max_backoff=0.1)
        await writer.begin()
        r = CallRecord(id="killed", call_id="k@phone", caller="501410", callee="501411",
                       dialed="sip:501411@acme", decision="user", site="01",
                       customer="acme", start=1800000000.0)
        writer.open(r)
        writer.answered(dataclasses.replace(r, answer=1800000002.5))
        while not writer.settled:
            await asyncio.sleep(0.01)
        print("DURABLE", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")


@pytest.mark.parametrize("database_up", [True, False], ids=["db-up", "db-down"])
def test_answered_record_survives_kill_9(migrated_url: str, tmp_path: Path,
                                         database_up: bool) -> None:
    """The answer time is durable once `answered` settles (in the database, or in the
    spool while the database is down), so kill -9 during the call loses nothing."""
    spool = tmp_path / SPOOL_FILE
    url = migrated_url if database_up else f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such.db'}"
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, str(spool)], cwd=REPO_ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "DURABLE", child.stderr.read() if child.stderr else ""
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        if child.stdout:
            child.stdout.close()
        if child.stderr:
            child.stderr.close()
    assert (spool.exists() and spool.stat().st_size > 0) is not database_up

    async def restart() -> CallRecord | None:
        engine = create_engine(migrated_url)
        try:
            sql = SqlCallRecordRepository(engine)
            writer = CdrWriter(repo=sql, spool_path=spool, clock=lambda: NOW + 10_000)
            await writer.begin()
            await wait_for(lambda: not writer.backlog)
            await writer.stop()
            return await sql.get("killed")
        finally:
            await engine.dispose()

    got = asyncio.run(restart())
    assert got is not None and got.answer == 1800000002.5
    assert got.disposition == "interrupted" and got.end is not None


async def test_wte_calls_shows_transferred_to(migrated_url: str) -> None:
    import io
    import json

    from switch.storage.cli import list_call_records

    engine = create_engine(migrated_url)
    try:
        await SqlCallRecordRepository(engine).write_batch(
            [("close", rec(1, transferred_to="+33612345678", end=NOW + 9))])
    finally:
        await engine.dispose()
    out = io.StringIO()
    assert await list_call_records(migrated_url, out) == 0
    row = json.loads(out.getvalue().splitlines()[0])
    assert row["transferred_to"] == "+33612345678" and row["id"] == "r0001"


async def test_group_commit_gathers_events_spread_over_its_delay(tmp_path: Path) -> None:
    """Issue 21: with a commit delay, events given a few milliseconds apart (a short call's
    open, answer and close at low load) share one batch instead of one commit each."""
    repo = Flaky(failures=0)
    writer = CdrWriter(repo=repo, spool_path=tmp_path / SPOOL_FILE, commit_delay=0.2)
    await writer.begin()
    await wait_for(lambda: not writer.backlog)  # the orphan sweep at start
    r = rec(1)
    writer.open(r)
    await asyncio.sleep(0.02)
    r = dataclasses.replace(r, answer=NOW + 3)
    writer.answered(r)
    await asyncio.sleep(0.02)
    writer.close(r.closed(end=NOW + 9, disposition="answered", status=200, cause="bye",
                          side="caller"))
    await wait_for(lambda: writer.settled)
    assert repo.writes == [3]  # one batch of the three events
    assert repo.rows["r0001"].end == NOW + 9
    writer.open(rec(2))
    await writer.stop()  # a stop does not lose what waits for the deadline
    assert "r0002" in repo.rows


async def test_without_delay_each_event_is_written_at_once(tmp_path: Path) -> None:
    repo = Flaky(failures=0)
    writer = CdrWriter(repo=repo, spool_path=tmp_path / SPOOL_FILE)
    await writer.begin()
    await wait_for(lambda: not writer.backlog)
    writer.open(rec(1))
    await wait_for(lambda: writer.settled)
    writer.close(rec(1, end=NOW + 9, disposition="answered"))
    await wait_for(lambda: writer.settled)
    assert repo.writes == [1, 1]
    await writer.stop()
