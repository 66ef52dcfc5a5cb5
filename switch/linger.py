"""Ended calls kept a while, then forgotten, behind one loop timer.

An ended call stays findable for 64*T1 so that the retransmissions of its last requests
and responses still meet it (RFC 3261 section 17). A loop timer per ended call is tens of
thousands of handles in the loop's heap at hundreds of calls per second, and one loop
pass per call at low load; the deadlines come in the order the calls end, so one queue
and one timer do the same work.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("switch.calls")

T = TypeVar("T")

LINGER_SECONDS = 32.0  # 64*T1: the longest a retransmission of the call's messages lasts
SWEEP_SECONDS = 1.0  # forgotten in batches, at most this often: a second late changes nothing


class Lingering(Generic[T]):
    """Items forgotten (`forget(item)`) `linger` seconds after `add`, oldest first."""

    def __init__(self, loop: Callable[[], asyncio.AbstractEventLoop], now: Callable[[], float],
                 forget: Callable[[T], None], *, linger: float = LINGER_SECONDS,
                 sweep: float = SWEEP_SECONDS) -> None:
        self._loop = loop
        self._now = now
        self._forget = forget
        self.linger = linger
        self.sweep_every = sweep
        self._queue: deque[tuple[float, T]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, item: T) -> None:
        self._queue.append((self._now() + self.linger, item))
        if self.timer is None:
            self.timer = self._loop().call_at(self._queue[0][0], self.sweep)

    def sweep(self) -> None:
        """Forget what is due; the timer is armed again for the rest, no sooner than
        `sweep_every` from now."""
        self.timer = None
        now, queue = self._now(), self._queue
        while queue and queue[0][0] <= now:
            _, item = queue.popleft()
            try:
                self._forget(item)
            except Exception:
                log.exception("forgetting an ended call failed")
        if queue:
            self.timer = self._loop().call_at(max(queue[0][0], now + self.sweep_every),
                                              self.sweep)


__all__ = ["LINGER_SECONDS", "Lingering"]
