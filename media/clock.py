"""The media clock: one 20 ms tick for every port of the process, without drift.

Ticks are scheduled on absolute deadlines ``start + n * period`` (never "now + period"), so
scheduling latency does not accumulate over a long call.  A late tick is caught up (up to
``max_catchup`` ticks run back to back, so the packet count stays right); beyond that the
clock skips ahead and counts the skipped ticks.  :class:`TickSchedule` is the pure rule,
:class:`MediaClock` the asyncio adapter (``loop.call_at``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

log = logging.getLogger(__name__)

TickCallback = Callable[[float], None]


class TickSchedule:
    """Pure deadline arithmetic: which ticks are due at ``now``, and the next deadline."""

    def __init__(self, start: float, period: float = 0.020, max_catchup: int = 3) -> None:
        self.start = start
        self.period = period
        self.max_catchup = max_catchup
        self.n = 0  # index of the next tick to run
        self.skipped = 0

    @property
    def next_deadline(self) -> float:
        return self.start + self.n * self.period

    def due(self, now: float) -> list[float]:
        """Nominal times of the ticks to run now (empty if woken early)."""
        behind = math.floor((now - self.start) / self.period + 1e-9) - self.n + 1
        if behind <= 0:
            return []
        if behind > self.max_catchup:
            skip = behind - self.max_catchup
            self.skipped += skip
            self.n += skip
            behind = self.max_catchup
        ticks = [self.start + (self.n + i) * self.period for i in range(behind)]
        self.n += behind
        return ticks


class MediaClock:
    """Drives every registered callback once per period with the tick's nominal time."""

    def __init__(self, period: float = 0.020, max_catchup: int = 3) -> None:
        self.period = period
        self.max_catchup = max_catchup
        self._callbacks: dict[int, TickCallback] = {}
        self._next_id = 0
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.schedule: TickSchedule | None = None
        self.ticks = 0
        self._running = False

    def add(self, callback: TickCallback) -> int:
        self._next_id += 1
        self._callbacks[self._next_id] = callback
        if self._running and self._handle is None and self._loop is not None:
            # the clock slept while no port needed it: a fresh schedule from now
            self.schedule = TickSchedule(self._loop.time(), self.period, self.max_catchup)
            self._handle = self._loop.call_at(self.schedule.next_deadline, self._fire)
        return self._next_id

    def remove(self, handle: int) -> None:
        self._callbacks.pop(handle, None)

    async def start(self) -> None:
        if self._handle is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._running = True
        self.schedule = TickSchedule(self._loop.time(), self.period, self.max_catchup)
        self._handle = self._loop.call_at(self.schedule.next_deadline, self._fire)

    async def stop(self) -> None:
        self._running = False
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        if self._loop is None or self.schedule is None:
            return
        for nominal in self.schedule.due(self._loop.time()):
            self.ticks += 1
            for cb in list(self._callbacks.values()):
                try:
                    cb(nominal)
                except Exception:
                    log.exception("media tick callback failed")
        if not self._callbacks:
            # nothing to drive: sleep until add() (an idle switch woke 50 times a second
            # for nothing, issue 21)
            self._handle = None
            return
        self._handle = self._loop.call_at(self.schedule.next_deadline, self._fire)
