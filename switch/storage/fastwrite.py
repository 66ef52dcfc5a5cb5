"""The binding writer's direct path to an SQLite file: one worker-thread hop per batch.

Through SQLAlchemy's async engine a one-row commit costs about 1.1 ms of CPU (measured with
the bench of issue 21: pool checkout and reset, BEGIN, statement, COMMIT, each a hop to
aiosqlite's thread and back), against about 11 us for SQLite itself. At low load each
REGISTER is its own batch, so that overhead was most of a registration's cost. This writer
keeps one `sqlite3` connection of its own, with the engine's pragmas (WAL, synchronous=FULL:
a committed binding survives a crash), and runs a whole batch (deletes, upserts, COMMIT)
in one call on a worker thread. Readers and the sweeps keep using the engine; WAL lets
them run beside this connection. PostgreSQL keeps the SQLAlchemy path (asyncpg runs on the
event loop, without thread hops).

Only the binding repository's writer task uses an instance, one batch at a time, so the
connection is never used by two threads at once (hence check_same_thread=False).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .engine import SQLITE_BUSY_TIMEOUT_MS, _sqlite_pragmas


class SqliteBatchWriter:
    def __init__(self, path: Path, table: str, columns: Sequence[str], key: Sequence[str],
                 updatable: Sequence[str]) -> None:
        self.path = path
        self.columns = tuple(columns)
        self._conn: sqlite3.Connection | None = None
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        sets = ", ".join(f"{c} = excluded.{c}" for c in updatable)
        self._upsert = (f"INSERT INTO {table} ({names}) VALUES ({marks}) "
                        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}")
        self._delete = f"DELETE FROM {table} WHERE " + " AND ".join(f"{k} = ?" for k in key)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
            _sqlite_pragmas(conn, None)
            self._conn = conn
        return self._conn

    def write(self, deletes: Sequence[tuple[Any, ...]], upserts: Sequence[dict[str, Any]]) -> None:
        """One transaction (runs on a worker thread); raises what SQLite raises, rolled back."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if deletes:
                conn.executemany(self._delete, deletes)
            if upserts:
                cols = self.columns
                conn.executemany(self._upsert, [tuple(r[c] for c in cols) for r in upserts])
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
