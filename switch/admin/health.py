"""What `/healthz` reports (issue 20 item 8): the database answers and the disk has room.

A load balancer takes a node out when this fails, so it must fail when calls would: the
database down (registrations answered 500, records spooled) or the data directory's disk
nearly full. Each probe is cheap and bounded: the database gets a `SELECT 1` with a short
timeout, and its result is cached a few seconds so a probe storm never becomes a database
storm. The checks are plain objects with the clock passed in; the HTTP layer only renders
them.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from devices.logsafe import printable

log = logging.getLogger("switch.health")

DEFAULT_MIN_FREE_BYTES = 256 * 1024 * 1024
DB_TIMEOUT = 2.0
CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HealthReport:
    checks: dict[str, CheckResult]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks.values())

    @property
    def status(self) -> int:
        return 200 if self.ok else 503

    def as_json(self) -> dict[str, Any]:
        failed = sorted(name for name, c in self.checks.items() if not c.ok)
        return {"status": "ok" if self.ok else "fail", "failed": failed,
                "checks": {name: {"ok": c.ok, **c.detail} for name, c in self.checks.items()}}


def engine_probe(engine: Any) -> Callable[[], Awaitable[None]]:
    """A one-row read on an SQLAlchemy AsyncEngine: `SELECT 1` from the migrations' own
    table, so a missing or corrupt SQLite file fails it too (a bare `SELECT 1` would not
    even open the file)."""
    async def probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1 FROM alembic_version LIMIT 1"))
    return probe


class HealthChecks:
    """`database`: `db_probe()` must finish within `db_timeout` (result cached
    `cache_seconds`); `disk`: `disk_free()` bytes must stay above `min_free_bytes`."""

    def __init__(self, *, db_probe: Callable[[], Awaitable[None]] | None = None,
                 disk_free: Callable[[], int] | None = None,
                 min_free_bytes: int = DEFAULT_MIN_FREE_BYTES, db_timeout: float = DB_TIMEOUT,
                 cache_seconds: float = CACHE_SECONDS) -> None:
        self.db_probe = db_probe
        self.disk_free = disk_free
        self.min_free_bytes = min_free_bytes
        self.db_timeout = db_timeout
        self.cache_seconds = cache_seconds
        self._db_cached: tuple[float, CheckResult] | None = None
        self._lock = asyncio.Lock()

    async def database(self, now: float) -> CheckResult:
        if self.db_probe is None:
            return CheckResult(True, {"checked": False})
        async with self._lock:  # concurrent probes share one query
            cached = self._db_cached
            if cached is not None and now - cached[0] < self.cache_seconds:
                return cached[1]
            try:
                await asyncio.wait_for(self.db_probe(), self.db_timeout)
                result = CheckResult(True)
            except TimeoutError:
                log.warning("health: database check got no answer in %.1fs", self.db_timeout)
                result = CheckResult(False, {"error": f"no answer within {self.db_timeout:g}s"})
            except Exception as exc:  # any reason the database cannot answer
                log.warning("health: database check failed: %s", printable(repr(exc)))
                # the class only: /healthz is public, the details go to the log
                result = CheckResult(False, {"error": type(exc).__name__})
            self._db_cached = (now, result)
            return result

    def disk(self) -> CheckResult:
        if self.disk_free is None:
            return CheckResult(True, {"checked": False})
        try:
            free = int(self.disk_free())
        except OSError as exc:
            return CheckResult(False, {"error": type(exc).__name__})
        return CheckResult(free >= self.min_free_bytes,
                           {"free_bytes": free, "min_free_bytes": self.min_free_bytes})

    async def report(self, now: float) -> HealthReport:
        return HealthReport({"database": await self.database(now), "disk": self.disk()})


def disk_free_of(path: str) -> Callable[[], int]:
    """Free bytes (for an unprivileged user) on the file system holding `path`."""
    return lambda: shutil.disk_usage(path).free
