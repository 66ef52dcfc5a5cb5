"""The batch writers' direct path to an SQLite file: one worker-thread hop per batch.

Through SQLAlchemy's async engine a one-row commit costs about 1.1 ms of CPU (measured with
the bench of issue 21: pool checkout and reset, BEGIN, statement, COMMIT, each a hop to
aiosqlite's thread and back), against about 11 us for SQLite itself. At low load each
REGISTER is its own batch, so that overhead was most of a registration's cost. This writer
keeps one `sqlite3` connection of its own, with the engine's pragmas (WAL, synchronous=FULL:
a committed binding survives a crash), and runs a whole batch (deletes, upserts, COMMIT)
in one call on a worker thread. Readers and the sweeps keep using the engine; WAL lets
them run beside this connection. PostgreSQL keeps the SQLAlchemy path (asyncpg runs on the
event loop, without thread hops). The call-record writer uses it too (a batch through the
ORM cost about 2 ms of CPU whatever its size).

Each instance belongs to one writer task (bindings, call records) and a lock serialises its
batches, so the connection is never used by two threads at once (check_same_thread=False).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .engine import SQLITE_BUSY_TIMEOUT_MS, _sqlite_pragmas


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]", Sequence[tuple[Any, ...]],
             Sequence[tuple[Any, ...]]]


def _settle(fut: asyncio.Future[None], err: BaseException | None) -> None:
    if fut.done():
        return  # the waiter gave up (cancelled): the batch was written all the same
    if err is None:
        fut.set_result(None)
    else:
        fut.set_exception(err)


class SqliteBatchWriter:
    def __init__(self, path: Path, table: str, columns: Sequence[str], key: Sequence[str],
                 updatable: Sequence[str]) -> None:
        self.path = path
        self.columns = tuple(columns)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # submit_rows: one long-lived thread of this writer's own, fed by a queue
        self._jobs: queue.SimpleQueue[_Job | None] | None = None
        self._thread: threading.Thread | None = None
        q = _quote  # "end" and the like are SQL keywords
        names = ", ".join(q(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        sets = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in updatable)
        self._upsert = (f"INSERT INTO {q(table)} ({names}) VALUES ({marks}) "
                        f"ON CONFLICT ({', '.join(q(k) for k in key)}) DO UPDATE SET {sets}")
        self._delete = (f"DELETE FROM {q(table)} WHERE "
                        + " AND ".join(f"{q(k)} = ?" for k in key))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
            _sqlite_pragmas(conn, None)
            self._conn = conn
        return self._conn

    def write(self, deletes: Sequence[tuple[Any, ...]], upserts: Sequence[dict[str, Any]]) -> None:
        """One transaction (runs on a worker thread); raises what SQLite raises, rolled back.
        Serialised: a caller that gave up waiting (a write timeout) may retry while the
        previous batch still runs on its thread."""
        cols = self.columns
        self.write_rows(deletes, [tuple([r[c] for c in cols]) for r in upserts])

    def write_rows(self, deletes: Sequence[tuple[Any, ...]],
                   rows: Sequence[tuple[Any, ...]]) -> None:
        """`write` with the upserts already as tuples in the order of `columns`: a caller
        that builds them on its own thread leaves the worker thread (which holds the GIL
        while it binds parameters) only SQLite's work."""
        with self._lock:
            self._write(deletes, rows)

    def submit_rows(self, deletes: Sequence[tuple[Any, ...]],
                    rows: Sequence[tuple[Any, ...]]) -> asyncio.Future[None]:
        """`write_rows` on this writer's own thread; the future (of the running loop)
        settles once the batch is committed, or with what SQLite raised.

        Cheaper than `asyncio.to_thread` for the one-batch-per-REGISTER case of a lightly
        loaded switch: no executor work item, concurrent future and chaining, no context
        copy; the thread waits on a SimpleQueue and answers with one
        `call_soon_threadsafe` (measured with uvloop on the 2-core bench machine: about
        25-60 us of CPU per hand-off against 130-150 us for `to_thread`). The commit
        itself stays off the event loop: an fsync there measured 0.7 ms median but 12 ms
        at p90 and 28 ms at worst on the shared disk, a stall every packet would wait
        behind."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        jobs = self._jobs
        if jobs is None or self._thread is None:
            jobs = self._jobs = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._serve, args=(jobs,), daemon=True,
                                            name=f"sqlite-writer:{self.path.name}")
            self._thread.start()
        jobs.put((loop, fut, deletes, rows))
        return fut

    def _serve(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            loop, fut, deletes, rows = job
            err: BaseException | None = None
            try:
                self.write_rows(deletes, rows)
            except BaseException as exc:  # handed to the waiter, as to_thread does
                err = exc
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                loop.call_soon_threadsafe(_settle, fut, err)

    def _write(self, deletes: Sequence[tuple[Any, ...]],
               rows: Sequence[tuple[Any, ...]]) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if deletes:
                conn.executemany(self._delete, deletes)
            if rows:
                conn.executemany(self._upsert, rows)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        jobs, thread = self._jobs, self._thread
        self._jobs = self._thread = None
        if jobs is not None and thread is not None:
            jobs.put(None)  # after whatever is queued
            thread.join()
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
