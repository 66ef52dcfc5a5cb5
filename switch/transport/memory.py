"""An in-memory link for tests: a hostile network between endpoints, pure and deterministic.

Nothing here touches asyncio, sockets or the clock: `send(..., now)` queues datagrams with
an arrival time, `get_timer()` says when the next one arrives and `deliver(now)` hands over
those due. A seeded `random.Random` decides loss, duplication and delay, so a failing run
replays exactly from its seed. Jitter larger than the gap between two sends reorders them
(as UDP may, RFC 3261 18.1.1); `reliable=True` models a stream transport instead: nothing
lost or duplicated, order kept per direction.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from dataclasses import dataclass

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Datagram:
    data: bytes
    src: Address
    dst: Address
    arrival: float


class MemoryLink:
    def __init__(
        self,
        rng: random.Random,
        *,
        loss: float = 0.0,
        duplicate: float = 0.0,
        delay: float = 0.01,
        jitter: float = 0.0,
        reliable: bool = False,
    ) -> None:
        if not (0.0 <= loss < 1.0 and 0.0 <= duplicate < 1.0 and delay >= 0 and jitter >= 0):
            raise ValueError("loss and duplicate must be in [0, 1), delay and jitter >= 0")
        if reliable and (loss or duplicate):
            raise ValueError("a reliable link neither loses nor duplicates")
        self.rng = rng
        self.loss = loss
        self.duplicate = duplicate
        self.delay = delay
        self.jitter = jitter
        self.reliable = reliable
        self._queue: list[tuple[float, int, Datagram]] = []
        self._seq = itertools.count()
        self._last: dict[tuple[Address, Address], float] = {}  # per direction, reliable only
        self._down_until: dict[Address, float] = {}
        self.stats: Counter[str] = Counter()

    def cut(self, dst: Address, until: float) -> None:
        """Drop everything sent to `dst` before `until` (a peer that went silent)."""
        self._down_until[dst] = until

    def send(self, data: bytes, src: Address, dst: Address, now: float) -> None:
        self.stats["sent"] += 1
        if now < self._down_until.get(dst, float("-inf")):
            self.stats["cut"] += 1
            return
        rng = self.rng
        if self.loss and rng.random() < self.loss:
            self.stats["lost"] += 1
            return
        copies = 1
        if self.duplicate and rng.random() < self.duplicate:
            copies = 2
            self.stats["duplicated"] += 1
        for _ in range(copies):
            arrival = now + self.delay + (rng.uniform(0.0, self.jitter) if self.jitter else 0.0)
            if self.reliable:
                arrival = max(arrival, self._last.get((src, dst), arrival))
                self._last[(src, dst)] = arrival
            heapq.heappush(self._queue, (arrival, next(self._seq), Datagram(data, src, dst, arrival)))

    def get_timer(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def deliver(self, now: float) -> list[Datagram]:
        """Datagrams that have arrived by `now`, in arrival order."""
        out: list[Datagram] = []
        queue = self._queue
        while queue and queue[0][0] <= now:
            out.append(heapq.heappop(queue)[2])
        self.stats["delivered"] += len(out)
        return out

    def __len__(self) -> int:
        return len(self._queue)
