"""Per-user settings and the call log on SQLite and PostgreSQL
(switch.storage.user_settings): saved settings load back identical, a second save
replaces the first, and the call log read from call records counts missed calls until
they are read."""

from __future__ import annotations

import asyncio

from dialplan.user_settings import SequentialStep, UserSettings
from rating.cdr import CallRecord
from switch.services.user_settings import UserSettingsService
from switch.storage.cdrs import SqlCallRecordRepository
from switch.storage.engine import create_engine
from switch.storage.user_settings import SqlUserSettings

FULL = UserSettings(forward_always="0612345678", forward_busy="501411",
                    forward_no_answer="501412", forward_no_answer_seconds=12.0,
                    forward_unreachable="0612345679", dnd=True, clir=True,
                    reject_anonymous=True, call_waiting=False,
                    simultaneous=("0611111111", "0622222222"),
                    sequential=(SequentialStep("0633333333", 10.0),))


def test_settings_round_trip_and_replace(migrated_url: str) -> None:
    async def run() -> None:
        engine = create_engine(migrated_url)
        try:
            store = SqlUserSettings(engine)
            assert await store.load_all() == {}
            await store.save("acme", "501410", FULL, 1.0)
            await store.save("acme", "501411", UserSettings(dnd=True), 1.0)
            loaded = await store.load_all()
            assert loaded[("acme", "501410")] == FULL
            assert loaded[("acme", "501411")] == UserSettings(dnd=True)
            await store.save("acme", "501410", UserSettings(), 2.0)
            assert (await store.load_all())[("acme", "501410")] == UserSettings()
        finally:
            await engine.dispose()

    asyncio.run(run())


def test_service_survives_a_restart(migrated_url: str) -> None:
    """The service writes through: a second service (a restarted switch) sees it."""
    class _User:  # the two attributes the service reads
        full_number = "501410"

        class customer:
            id = "acme"

    async def run() -> None:
        engine = create_engine(migrated_url)
        try:
            first = UserSettingsService(SqlUserSettings(engine))
            await first.start()
            await first.update(_User(), UserSettings(forward_always="0612345678"))  # type: ignore[arg-type]
            second = UserSettingsService(SqlUserSettings(engine))
            await second.start()
            got = second.settings_for(_User())  # type: ignore[arg-type]
            assert got.forward_always == "0612345678"
        finally:
            await engine.dispose()

    asyncio.run(run())


def _rec(rid: str, caller: str, callee: str, start: float, *, answered: bool,
         disposition: str) -> CallRecord:
    return CallRecord(id=rid, call_id=rid, caller=caller, callee=callee, dialed=callee,
                      decision="user", site="01", customer="acme", start=start,
                      answer=start + 1 if answered else None, end=start + 10,
                      disposition=disposition, status=200 if answered else 480)


def test_call_log_from_call_records_with_missed_counter(migrated_url: str) -> None:
    async def run() -> None:
        engine = create_engine(migrated_url)
        try:
            records = SqlCallRecordRepository(engine)
            for rec in (_rec("a", "501411", "501410", 100.0, answered=False,
                             disposition="no_answer"),
                        _rec("b", "501410", "501412", 200.0, answered=True,
                             disposition="answered"),
                        _rec("c", "501412", "501410", 300.0, answered=True,
                             disposition="answered"),
                        _rec("d", "501412", "501411", 400.0, answered=False,
                             disposition="no_answer")):
                await records.open(rec)
                await records.close(rec)
            store = SqlUserSettings(engine)
            log = await store.call_log("acme", "501410")
            assert [(e.direction, e.other) for e in log.entries] == [
                ("received", "501412"), ("placed", "501412"), ("missed", "501411")]
            assert log.missed_unread == 1
            log = await store.call_log("acme", "501410", mark_read=1000.0)
            assert log.missed_unread == 1  # counted as of this read
            assert (await store.call_log("acme", "501410")).missed_unread == 0
            # reading the log did not touch the user's settings
            assert (await store.load_all())[("acme", "501410")] == UserSettings()
            late = _rec("e", "501411", "501410", 2000.0, answered=False,
                        disposition="cancelled")
            await records.open(late)
            await records.close(late)
            assert (await store.call_log("acme", "501410")).missed_unread == 1
        finally:
            await engine.dispose()

    asyncio.run(run())
