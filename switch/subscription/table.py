"""Every live subscription, indexed for fan-out, limits and expiry. Pure: time passed in.

A state change of one user reaches its watchers through `watchers(package, resource)`: a
dict lookup, no scan and no database. Limits count subscriptions per watching user and per
source address (a phone, or a NAT in front of a site); an expiry heap makes `expired(now)`
cost O(expired log n), as the location service's sweep does.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator

from switch.sip import SipError

from .state import Subscription


class LimitExceeded(SipError):
    """Too many subscriptions for one watcher or one source: 403 (a policy refusal that
    retrying will not change; 503 would invite the phone to retry, RFC 3261 21.5.4)."""


class SubscriptionTable:
    __slots__ = ("_by_id", "_by_resource", "_heap", "_per_source", "_per_watcher",
                 "max_per_source", "max_per_watcher")

    def __init__(self, *, max_per_watcher: int, max_per_source: int) -> None:
        self.max_per_watcher = max_per_watcher
        self.max_per_source = max_per_source
        self._by_id: dict[str, Subscription] = {}
        self._by_resource: dict[tuple[str, str], dict[str, Subscription]] = {}
        self._per_watcher: Counter[str] = Counter()
        self._per_source: Counter[str] = Counter()
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Subscription]:
        return iter(list(self._by_id.values()))

    def get(self, sub_id: str) -> Subscription | None:
        return self._by_id.get(sub_id)

    def check_limits(self, watcher: str, source: str) -> None:
        """Raise LimitExceeded (403) when one more subscription would pass a limit."""
        if self._per_watcher[watcher] >= self.max_per_watcher:
            raise LimitExceeded(403, "Too Many Subscriptions",
                                headers=(("Warning", '399 wte "subscription limit per user"'),))
        if self._per_source[source] >= self.max_per_source:
            raise LimitExceeded(403, "Too Many Subscriptions",
                                headers=(("Warning", '399 wte "subscription limit per source"'),))

    def add(self, sub: Subscription) -> None:
        if sub.id in self._by_id:
            raise ValueError(f"subscription {sub.id} exists")
        self._by_id[sub.id] = sub
        self._by_resource.setdefault((sub.package, sub.resource), {})[sub.id] = sub
        self._per_watcher[sub.watcher] += 1
        self._per_source[sub.source] += 1
        heapq.heappush(self._heap, (sub.expires_at, sub.id))

    def refreshed(self, sub: Subscription) -> None:
        """Its `expires_at` moved: schedule the new expiry (the old heap entry goes stale)."""
        heapq.heappush(self._heap, (sub.expires_at, sub.id))

    def remove(self, sub_id: str) -> Subscription | None:
        sub = self._by_id.pop(sub_id, None)
        if sub is None:
            return None
        key = (sub.package, sub.resource)
        group = self._by_resource.get(key)
        if group is not None:
            group.pop(sub_id, None)
            if not group:
                del self._by_resource[key]
        for counter, name in ((self._per_watcher, sub.watcher), (self._per_source, sub.source)):
            counter[name] -= 1
            if counter[name] <= 0:
                del counter[name]
        return sub

    def watchers(self, package: str, resource: str) -> list[Subscription]:
        group = self._by_resource.get((package, resource))
        return list(group.values()) if group else []

    def expired(self, now: float) -> list[Subscription]:
        """Remove and return the subscriptions whose time is up at `now`."""
        out: list[Subscription] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, sub_id = heapq.heappop(heap)
            sub = self._by_id.get(sub_id)
            if sub is not None and sub.expires_at == at:
                self.remove(sub_id)
                out.append(sub)
        if len(heap) > 4 * len(self._by_id) + 1024:
            self._heap = [(s.expires_at, s.id) for s in self._by_id.values()]
            heapq.heapify(self._heap)
        return out

    def next_expiry(self) -> float | None:
        while self._heap:
            at, sub_id = self._heap[0]
            sub = self._by_id.get(sub_id)
            if sub is not None and sub.expires_at == at:
                return at
            heapq.heappop(self._heap)
        return None

    def count_for_watcher(self, watcher: str) -> int:
        return self._per_watcher[watcher]

    def count_for_source(self, source: str) -> int:
        return self._per_source[source]
