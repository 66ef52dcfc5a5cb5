"""Writes call records in order, off the signalling path, and never loses one.

A record is written when a call starts (`open`), again when it is answered (`answered`, as
Kamailio's accounting writes at the 200: a switch killed during the call still knows when
it was answered) and when it ends (`close`). Writes for one call must not overtake each
other, so one queue and one writer task serve every call, in batches (one transaction per
batch, like the registrations' group commit).

When the database does not answer, nothing is dropped (issue 20 item 7): the batch goes
to the spool (switch.cdr_spool, an fsynced JSON-lines file in the data directory) and the
writer retries with an exponential back-off (`initial_backoff` doubling up to
`max_backoff`), forever. While the spool holds anything, new events are appended behind
it so that they never overtake older ones; once the database answers, the spool is
written in order, truncated, and direct writes resume. Writes are upserts by record id,
so a replay never duplicates a record. At start the spool of a previous run is replayed,
then records that run left open are closed with a cause that says so (issue 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from devices.logsafe import printable
from rating.cdr import RESTART_CAUSE, CallRecord
from switch.cdr_spool import SPOOL_FILE, CdrSpool, Event

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("switch.cdr")

MAX_BATCH = 500


class CdrStore(Protocol):
    """What the writer needs of the database (switch.storage.cdrs implements it)."""

    async def write_batch(self, items: Sequence[Event]) -> None: ...

    async def close_orphans(self, now: float, cause: str = RESTART_CAUSE,
                            started_before: float | None = None) -> int: ...


class CdrWriter:
    def __init__(self, *, repo: CdrStore | None = None, spool_path: Path | None = None,
                 clock: Callable[[], float] = time.time, initial_backoff: float = 0.5,
                 max_backoff: float = 30.0, write_timeout: float = 15.0,
                 commit_delay: float = 0.0) -> None:
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.repo = repo
        self.spool: CdrSpool | None = CdrSpool(spool_path) if spool_path is not None else None
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        # a database that hangs counts as down: the batch goes to the spool (if the write
        # did land after all, the replay's upsert changes nothing)
        self.write_timeout = write_timeout
        self.commit_delay = commit_delay
        self.batches = 0  # batches taken from the queue (tests, metrics)
        self.written = 0  # events written to the database (replays included)
        self.spooled_events = 0  # events that went through the spool
        self._pending: list[Event] = []  # accepted, not yet durable (spool unwritable)
        self._inflight: list[Event] = []  # taken from the queue, being written
        self._spooled = False  # the spool holds events not yet in the database
        self._orphans_due = False
        self._started_at = 0.0
        self._backoff = initial_backoff
        self._next_try = 0.0
        self._down_since: float | None = None
        self._spool_broken = False
        self._accepted = 0
        self._enqueued = 0

    # -- life cycle --

    @classmethod
    def on_database(cls, engine: AsyncEngine, data_dir: Path,
                    node_id: str | None = None, commit_delay: float = 0.0) -> CdrWriter:
        """The switch's writer: the shared engine, the spool in the data directory; in a
        cluster the records carry `node_id` (issue 22)."""
        from switch.storage.cdrs import SqlCallRecordRepository

        return cls(repo=SqlCallRecordRepository(engine, node_id=node_id),
                   spool_path=data_dir.expanduser().resolve() / SPOOL_FILE,
                   commit_delay=commit_delay)

    async def start(self) -> None:
        await self.begin()

    async def begin(self) -> None:
        """Start the writer task (repo and spool set): replay a previous run's spool, close
        its orphans, then write as records come."""
        assert self.repo is not None and self.spool is not None
        self._started_at = self.clock()
        size = await asyncio.to_thread(self.spool.size)
        if size:
            log.warning("call records: %d bytes spooled by a previous run in %s: writing them",
                        size, self.spool.path)
            self._spooled = True
        self._orphans_due = True
        self._next_try = 0.0
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Drain: every accepted event ends in the database or in the spool."""
        if self._task is not None:
            self._queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)
        # a database that hung past the drain: spool what is still only in memory
        leftover = [*self._inflight, *self._pending]
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                leftover.append(item)
        if leftover and self.spool is not None:
            try:
                self.spool.append(leftover)
                self._inflight, self._pending = [], []
            except OSError as exc:
                log.error("call records: %d events could be written neither to the database"
                          " nor to the spool (%s)", len(leftover), printable(exc))
        shutdown = getattr(self.repo, "shutdown", None)  # the SQLite writer's own thread
        if shutdown is not None:
            await asyncio.to_thread(shutdown)

    # -- the calls' side --

    def open(self, record: CallRecord) -> None:
        self._put(("open", record))

    def queue_depth(self) -> int:
        """Record events not yet written (for /metrics)."""
        return self._queue.qsize()

    def answered(self, record: CallRecord) -> None:
        """The call was answered (its record carries `answer`): written now, not at the end."""
        self._put(("answer", record))

    def close(self, record: CallRecord) -> None:
        self._put(("close", record))

    def _put(self, event: Event) -> None:
        self._enqueued += 1
        self._queue.put_nowait(event)

    @property
    def settled(self) -> bool:
        """Every event given so far is in the database or the spool (tests, drain)."""
        return self._accepted == self._enqueued and not self._pending

    @property
    def backlog(self) -> bool:
        return self._spooled or bool(self._pending) or self._orphans_due

    # -- the writer task --

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            timeout = max(0.0, self._next_try - loop.time()) if self.backlog else None
            batch, stopping = await self._take(timeout)
            if batch:
                await self._accept(batch)
            if self.backlog and (stopping or loop.time() >= self._next_try):
                await self._catch_up()

    async def _take(self, timeout: float | None) -> tuple[list[Event], bool]:
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return [], False
        if first is not None and self.commit_delay > 0 and self._queue.qsize() < MAX_BATCH:
            # group commit: let the rest of the batch arrive (a stop's sentinel included)
            await asyncio.sleep(self.commit_delay)
        self.batches += 1
        batch: list[Event] = []
        item = first
        while True:
            if item is None:
                return batch, True
            batch.append(item)
            if len(batch) >= MAX_BATCH or self._queue.empty():
                return batch, False
            item = self._queue.get_nowait()

    async def _accept(self, batch: list[Event]) -> None:
        """Write `batch` to the database, or make it durable in the spool."""
        assert self.repo is not None
        self._inflight = batch
        if not self._spooled and not self._pending:
            try:
                await asyncio.wait_for(self.repo.write_batch(batch), self.write_timeout)
            except Exception as exc:
                self._failed(exc)
            else:
                self.written += len(batch)
                self._accepted += len(batch)
                self._inflight = []
                return
        self._pending.extend(batch)
        self._accepted += len(batch)
        self._inflight = []
        await self._spool_pending()

    async def _spool_pending(self) -> None:
        assert self.spool is not None
        try:
            await asyncio.to_thread(self.spool.append, self._pending)
        except OSError as exc:
            # disk full or read-only: kept in memory and retried; said once per outage
            level = logging.DEBUG if self._spool_broken else logging.ERROR
            self._spool_broken = True
            log.log(level, "call records: cannot spool %d events to %s (%s); kept in memory",
                    len(self._pending), self.spool.path, printable(exc))
            return
        if self._spool_broken:
            log.warning("call records: spooling to %s works again", self.spool.path)
            self._spool_broken = False
        self.spooled_events += len(self._pending)
        self._pending.clear()
        self._spooled = True

    async def _catch_up(self) -> None:
        """The spool first (oldest), then what is only in memory, then the orphans."""
        assert self.repo is not None and self.spool is not None
        try:
            if self._spooled:
                total = 0
                chunks = self.spool.chunks(MAX_BATCH)  # read on a worker thread, lazily
                try:
                    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                        await asyncio.wait_for(self.repo.write_batch(chunk), self.write_timeout)
                        total += len(chunk)
                finally:
                    chunks.close()
                # only now: a crash before this line replays the spool (upserts: harmless)
                await asyncio.to_thread(self.spool.clear)
                self._spooled = False
                self.written += total
                log.info("call records: %d spooled events written to the database", total)
            if self._pending:
                await asyncio.wait_for(self.repo.write_batch(self._pending), self.write_timeout)
                self.written += len(self._pending)
                self._pending.clear()
            if self._orphans_due:
                closed = await self.repo.close_orphans(self.clock(),
                                                       started_before=self._started_at)
                self._orphans_due = False
                if closed:
                    log.warning("closed %d call records left open by a previous run", closed)
        except Exception as exc:
            self._failed(exc)
            if self._pending:
                await self._spool_pending()
            return
        if self._down_since is not None:
            log.warning("call records: database back after %.0fs",
                        self.clock() - self._down_since)
        self._down_since = None
        self._backoff = self.initial_backoff

    def _failed(self, exc: BaseException) -> None:
        loop = asyncio.get_running_loop()
        if self._down_since is None:
            self._down_since = self.clock()
            log.error("call records: database unavailable (%s); spooling to %s and retrying",
                      printable(repr(exc)), self.spool.path if self.spool else "?")
        else:
            log.info("call records: database still unavailable (%s); next try in %.1fs",
                     printable(type(exc).__name__), self._backoff)
        self._next_try = loop.time() + self._backoff
        self._backoff = min(self.max_backoff, self._backoff * 2)
