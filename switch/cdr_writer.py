"""Writes call records in order, off the signalling path.

A record is opened when a call starts and closed when it ends; writes for one call must not
overtake each other, so one queue and one writer task serve every call. At start, records
left open by a switch that died are closed with a cause that says so (issue 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from rating.cdr import CallRecord
from switch.storage.cdrs import SqlCallRecordRepository
from switch.storage.cli import database_url
from switch.storage.engine import create_engine

if TYPE_CHECKING:
    from switch.app import Switch

log = logging.getLogger("switch.cdr")

MAX_BATCH = 500


class CdrWriter:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[str, CallRecord] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._engine: Any = None
        self.repo: SqlCallRecordRepository | None = None
        self.written = 0

    async def start(self, switch: Switch) -> None:
        self._engine = create_engine(database_url(str(switch.options.data_dir)))
        self.repo = SqlCallRecordRepository(self._engine)
        closed = await self.repo.close_orphans(time.time())
        if closed:
            log.warning("closed %d call records left open by a previous run", closed)
        self._task = asyncio.create_task(self._run())

    def open(self, record: CallRecord) -> None:
        self._queue.put_nowait(("open", record))

    def close(self, record: CallRecord) -> None:
        self._queue.put_nowait(("close", record))

    async def _run(self) -> None:
        """Drain the queue in batches: one transaction per batch, like the registrations'
        group commit, so records keep up with hundreds of calls per second."""
        assert self.repo is not None
        stopping = False
        while not stopping:
            first = await self._queue.get()
            batch: list[tuple[str, CallRecord]] = []
            item: tuple[str, CallRecord] | None = first
            while True:
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                if len(batch) >= MAX_BATCH or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if batch:
                await self._write(batch)

    async def _write(self, batch: list[tuple[str, CallRecord]]) -> None:
        assert self.repo is not None
        for attempt in range(3):
            try:
                await self.repo.write_batch(batch)
                self.written += len(batch)
                return
            except Exception:
                log.exception("call records: batch of %d failed (attempt %d)", len(batch),
                              attempt + 1)
                await asyncio.sleep(0.2 * (attempt + 1))

    async def stop(self, switch: Switch) -> None:
        if self._task is not None:
            self._queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)
        if self._engine is not None:
            await self._engine.dispose()
