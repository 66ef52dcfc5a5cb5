"""The night switch of a running switch (issue 12): the forced schedule modes routing
reads (`forced`), kept in step with the database.

At start it loads every forced mode; then every `poll_interval` (0.5 s) it asks the
database one cheap question (`SqlScheduleModes.version`) and reloads only when the answer
changed, so `wte schedule set` (another process), another switch sharing PostgreSQL, or
the admin API are applied within a second. The `*55` code of this switch goes through
`set` (`ivr.night_switch.ScheduleControl`): the mode applies at once in memory, and the
row is written in the background (a failed write is logged; the next poll then shows the
database's state again, which is what every other node sees).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from sqlalchemy.ext.asyncio import AsyncEngine

from dialplan.schedule import ForcedModes, ScheduleMode
from switch.storage.schedules import SqlScheduleModes, Version

log = logging.getLogger("switch.schedules")

POLL_SECONDS = 0.5


class ScheduleModes:
    """Implements `switch.services.ports.ScheduleOverrides` (the `forced` map) and
    `ivr.night_switch.ScheduleControl` (`set`)."""

    def __init__(self, engine: AsyncEngine, *, poll_interval: float = POLL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.repo = SqlScheduleModes(engine)
        self.poll_interval = poll_interval
        self.clock = clock
        self._forced: ForcedModes = MappingProxyType({})
        self._version: Version | None = None
        self._task: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()  # writes reach the database in the order dialed
        self.changed: Callable[[str, str], None] | None = None  # (customer, schedule) stored

    @property
    def forced(self) -> ForcedModes:
        """(customer id, schedule id) -> OPEN or CLOSED; absent: the schedule's hours."""
        return self._forced

    async def start(self) -> None:
        await self.reload()
        self._task = asyncio.create_task(self._poll(), name="schedule-modes-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._writes:  # a `*55` just dialed still reaches the database
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def reload(self) -> None:
        version = await self.repo.version()
        forced = await self.repo.forced()
        self._install(forced)
        self._version = version

    def _install(self, forced: Mapping[tuple[str, str], ScheduleMode]) -> None:
        if dict(forced) != dict(self._forced):
            log.info("schedule modes now %s", ", ".join(
                f"{c}/{s}={m.value}" for (c, s), m in sorted(forced.items())) or "all automatic")
        self._forced = MappingProxyType(dict(forced))

    async def check(self) -> bool:
        """One poll: reload when the table changed; True when it did."""
        if self._writes:
            return False  # our own write is under way: memory is ahead of the database
        version = await self.repo.version()
        if version == self._version:
            return False
        await self.reload()
        return True

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: keep the last known modes
                log.warning("schedule modes: cannot poll the database (%s)", exc)

    def set(self, customer: str, schedule: str, mode: ScheduleMode, by: str) -> None:
        """Force a schedule now (routing sees it at once) and store it (in the background)."""
        forced = dict(self._forced)
        if mode is ScheduleMode.AUTO:
            forced.pop((customer, schedule), None)
        else:
            forced[(customer, schedule)] = mode
        self._install(forced)
        log.info("night switch: %s/%s set %s by %s", customer, schedule, mode.value, by)
        task = asyncio.ensure_future(self._write(customer, schedule, mode, by))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, customer: str, schedule: str, mode: ScheduleMode, by: str) -> None:
        try:
            async with self._write_lock:
                await self.repo.set(customer, schedule, mode, by, self.clock())
            if self.changed is not None:  # cluster: peers reload at once, not at their poll
                self.changed(customer, schedule)
        except Exception:
            log.exception("night switch: cannot store %s/%s=%s", customer, schedule, mode.value)
