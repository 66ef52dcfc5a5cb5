"""SqlBindingRepository: durable bindings with group commit.

`apply(changes)` returns only once its changes are committed (the registrar answers 200 only
after that, RFC 3261 10.3 step 7). Concurrent callers are batched: one writer task takes
everything queued, writes it in ONE transaction, commits, then resolves every waiter's
future (or fails them all with the same exception, so each REGISTER answers 500 and rolls
its memory change back). Batches are committed in arrival order; within a batch the
changes to one (aor, key) coalesce to the last one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from devices.location import Binding, BindingChange, ChangeKind

from .engine import sqlite_path
from .fastwrite import SqliteBatchWriter
from .models import RegistrationRow

log = logging.getLogger(__name__)
_TABLE = cast(Table, RegistrationRow.__table__)
_UPDATABLE = [c.name for c in _TABLE.columns if c.name not in ("aor", "binding_key")]
_DELETE_CHUNK = 400  # keep bound parameters well below SQLite's and asyncpg's limits
_BUSY_WINDOW = 0.05  # seconds since the last commit within which the writer waits for more


# The registrations table's columns in the order of `binding_to_tuple`.
COLUMNS = ("aor", "binding_key", "contact", "expires_at", "q", "call_id", "cseq",
           "instance_id", "reg_id", "transport", "source_host", "source_port", "conn_id",
           "user_agent", "registered_at", "path")


def binding_to_tuple(b: Binding, key: str) -> tuple[Any, ...]:
    """A row in the order of COLUMNS; `key` is `b.key` (computed once by the caller)."""
    return (b.aor, key, b.contact, b.expires_at, b.q, b.call_id, b.cseq, b.instance_id,
            b.reg_id, b.transport, b.source_host, b.source_port, b.conn_id, b.user_agent,
            b.registered_at, "\n".join(b.path) if b.path else "")


def binding_to_row(b: Binding) -> dict[str, Any]:
    return dict(zip(COLUMNS, binding_to_tuple(b, b.key), strict=True))


def row_to_binding(r: Any) -> Binding:
    return Binding(
        aor=r.aor, contact=r.contact, expires_at=float(r.expires_at), q=float(r.q),
        call_id=r.call_id, cseq=int(r.cseq), instance_id=r.instance_id, reg_id=r.reg_id,
        transport=r.transport, source_host=r.source_host, source_port=int(r.source_port),
        conn_id=r.conn_id, user_agent=r.user_agent, registered_at=float(r.registered_at),
        path=tuple(r.path.split("\n")) if r.path else (),
    )


_Pending = tuple[Sequence[BindingChange], "asyncio.Future[None]"]


class SqlBindingRepository:
    """Implements devices.location.BindingRepository on an AsyncEngine."""

    def __init__(self, engine: AsyncEngine, *, max_batch: int = 2000,
                 commit_delay: float = 0.0) -> None:
        self.engine = engine
        self.max_batch = max_batch
        # group commit with a deadline (issue 21): the writer waits this long after the
        # first change of a batch so the REGISTERs arriving meanwhile share its commit; it
        # adds at most this much to a 200's latency (the 200 still leaves after the commit)
        self.commit_delay = commit_delay
        self._last_commit = -1e9
        # SQLite file: batches go through a connection of their own (fastwrite.py)
        path = sqlite_path(engine.url)
        self._direct = None if path is None else SqliteBatchWriter(
            path, _TABLE.name, COLUMNS, ("aor", "binding_key"), _UPDATABLE)
        self._queue: asyncio.Queue[_Pending | None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._upserts: dict[str, Any] = {}  # dialect name -> upsert statement
        self.commits = 0  # transactions committed by the writer (tests, metrics)
        self.batched_requests = 0  # apply() calls served

    # -- group commit --

    async def apply(self, changes: Sequence[BindingChange]) -> None:
        if not changes:
            return
        await self.submit(changes)

    def submit(self, changes: Sequence[BindingChange]) -> asyncio.Future[None]:
        """Queue `changes` for the next group commit; the future resolves once they are
        committed (or carries the batch's exception). `apply` without a coroutine: a caller
        on the hot path can add a done-callback instead of paying for a Task."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if not changes:
            fut.set_result(None)
            return fut
        if self._queue is None or self._writer is None or self._writer.done():
            self._queue = asyncio.Queue()
            self._writer = loop.create_task(self._write_loop(self._queue),
                                            name="binding-group-commit")
        self._queue.put_nowait((changes, fut))
        return fut

    async def _write_loop(self, queue: asyncio.Queue[_Pending | None]) -> None:
        loop = asyncio.get_running_loop()
        stop = False
        while not stop:
            first = await queue.get()
            if first is None:
                return
            if self.commit_delay > 0 and queue.qsize() < self.max_batch \
                    and loop.time() - self._last_commit < _BUSY_WINDOW:
                # under load only: after a quiet spell nothing would join the batch, and
                # the wait would cost a wake-up and latency for nothing
                await asyncio.sleep(self.commit_delay)
            batch = [first]
            while len(batch) < self.max_batch and not queue.empty():
                item = queue.get_nowait()
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                await self._write([ch for changes, _ in batch for ch in changes])
            except asyncio.CancelledError:
                for _, fut in batch:
                    if not fut.done():
                        fut.cancel()
                raise
            except Exception as exc:
                log.exception("binding batch of %d requests failed", len(batch))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
            else:
                self._last_commit = loop.time()
                self.commits += 1
                self.batched_requests += len(batch)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)

    async def _write(self, changes: list[BindingChange]) -> None:
        last: dict[tuple[str, str], BindingChange] = {}
        for ch in changes:
            k = (ch.binding.aor, ch.binding.key)
            last.pop(k, None)
            last[k] = ch
        dels = [k for k, ch in last.items() if ch.kind is ChangeKind.DELETE]
        upsert = ChangeKind.UPSERT
        rows = [binding_to_tuple(ch.binding, k[1]) for k, ch in last.items()
                if ch.kind is upsert]
        if self._direct is not None:
            # rows built here, on the loop: the writer's thread only binds and commits
            await self._direct.submit_rows(dels, rows)
            return
        ups = [dict(zip(COLUMNS, r, strict=True)) for r in rows]
        async with self.engine.begin() as conn:
            for i in range(0, len(dels), _DELETE_CHUNK):
                chunk = dels[i : i + _DELETE_CHUNK]
                await conn.execute(delete(_TABLE).where(
                    tuple_(_TABLE.c.aor, _TABLE.c.binding_key).in_(chunk)))
            if ups:
                await conn.execute(self._upsert(conn), ups)

    def _upsert(self, conn: AsyncConnection) -> Any:
        """The upsert statement for this dialect, built once (the PostgreSQL path). Built
        per batch it cost about 0.9 ms of CPU before SQLAlchemy's compiled cache could
        help: 0.34 ms to build the construct, 0.54 ms for its cache key, which a kept
        statement memoizes (measured on the bench machine, issue 21)."""
        name = conn.dialect.name
        stmt = self._upserts.get(name)
        if stmt is None:
            stmt = self._upserts[name] = self._build_upsert(name)
        return stmt

    @staticmethod
    def _build_upsert(name: str) -> Any:
        ins: Any
        if name == "postgresql":
            ins = postgresql.insert(_TABLE)
        elif name == "sqlite":
            ins = sqlite.insert(_TABLE)
        else:
            raise RuntimeError(f"unsupported database {name}")
        return ins.on_conflict_do_update(
            index_elements=["aor", "binding_key"],
            set_={c: ins.excluded[c] for c in _UPDATABLE})

    async def close(self) -> None:
        """Commit what is queued, then stop the writer (call before disposing the engine)."""
        writer, queue = self._writer, self._queue
        self._writer = self._queue = None
        if writer is not None and queue is not None and not writer.done():
            queue.put_nowait(None)
            await writer
        if self._direct is not None:
            self._direct.close()

    # -- reads and sweeps --

    async def load_unexpired(self, now: float) -> list[Binding]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(_TABLE).where(_TABLE.c.expires_at > now)
                                      .order_by(_TABLE.c.aor, _TABLE.c.registered_at))
            return [row_to_binding(r) for r in rows]

    async def delete_expired(self, now: float) -> int:
        async with self.engine.begin() as conn:
            res = await conn.execute(delete(_TABLE).where(_TABLE.c.expires_at <= now))
            return int(res.rowcount or 0)
