"""Async engines: SQLite (aiosqlite, the embedded default) and PostgreSQL (asyncpg).

SQLite is opened in WAL mode so that readers (`wte registrations`) never block the writer
and the writer never blocks them, with a busy timeout instead of immediate "database is
locked" errors, and `synchronous=FULL` so that a committed registration survives a crash
of the process or of the machine.

A PostgreSQL URL may carry `?schema=NAME`: every connection then uses that search_path
(used by the tests to isolate concurrent runs; also handy for one schema per deployment).

An SQLite file that is not a database (corrupt, truncated, another file put there) is
refused before anything opens it, with one line naming the file and what to do
(`DatabaseFileError`, issue 20 item 8); `storage_error` turns the same fault met later
(a page found malformed) into that error.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000
# what SQLite says when the file is not (or no longer) a database
_CORRUPT_WORDS = ("file is not a database", "database disk image is malformed",
                  "file is encrypted or is not a database")


class StorageError(RuntimeError):
    """The database cannot answer (missing file, no schema, corrupt file): the message is
    one line that says what to do; the `wte` commands print it and exit with
    `exit_status` (1; 2 for a file that is no database: the operator must act)."""

    exit_status = 1


class DatabaseFileError(StorageError):
    """The SQLite file at `path` cannot be used as a database."""

    exit_status = 2

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(
            f"database {path} {problem}: stop the switch, move the file aside "
            f"(mv {path} {path}.bad) and run `wte db upgrade --data-dir {path.parent}` to "
            "start an empty database, or put a backup in its place")


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str | URL) -> Path | None:
    """The file of an SQLite URL; None for another backend or an in-memory database."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:" \
            or u.database.startswith("file:"):
        return None
    return Path(u.database)


def check_sqlite_file(url: str | URL) -> None:
    """Raise DatabaseFileError if the SQLite file of `url` exists but is not a database.

    A missing or empty file is fine (SQLite creates it). The file is read through SQLite
    itself, read-only, never with a plain open(): closing any descriptor of a database file
    drops every POSIX lock this process holds on it (sqlite.org/howtocorrupt.html, 2.2), and
    the switch checks while its other engines are connected. Reading the schema version
    reads only the header page, so this costs little whatever the database's size.
    """
    path = sqlite_path(url)
    if path is None or not path.exists():
        return
    if path.is_dir():
        raise DatabaseFileError(path, "is a directory")
    if not os.access(path, os.R_OK):
        raise DatabaseFileError(path, "cannot be read (permission denied)")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise DatabaseFileError(path, f"cannot be opened ({exc})") from None
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        if any(w in str(exc).lower() for w in _CORRUPT_WORDS):
            raise DatabaseFileError(
                path, "is not an SQLite database (corrupt or another file)") from None
        raise  # busy, locked...: not this check's business
    finally:
        conn.close()


def storage_error(exc: BaseException, url: str | URL) -> StorageError | None:
    """The StorageError a database exception stands for, when it says the SQLite file is
    corrupt; None for other faults (they keep their own handling)."""
    if isinstance(exc, StorageError):
        return exc
    path = sqlite_path(url)
    if path is None or not isinstance(exc, DBAPIError):
        return None
    text = str(exc.orig).lower()
    if any(w in text for w in _CORRUPT_WORDS):
        return DatabaseFileError(path, f"is corrupt ({exc.orig})")
    return None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        cur.close()


def create_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An AsyncEngine for `url` with the settings above; `kwargs` go to SQLAlchemy.
    Raises DatabaseFileError when an existing SQLite file is not a database."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        check_sqlite_file(u)
        engine = create_async_engine(u, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if u.get_backend_name() == "postgresql" and "schema" in u.query:
        schema = u.query["schema"]
        if not isinstance(schema, str):
            raise ValueError("one schema only")
        u = u.difference_update_query(["schema"])
        connect_args = dict(kwargs.pop("connect_args", {}))
        settings = dict(connect_args.get("server_settings", {}))
        settings["search_path"] = schema
        connect_args["server_settings"] = settings
        kwargs["connect_args"] = connect_args
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(u, **kwargs)


def upsert_insert(engine: AsyncEngine, table: Any) -> Any:
    """The dialect's INSERT, which has `on_conflict_do_update` (PostgreSQL and SQLite both
    do upserts, each with its own construct)."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = engine.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts on {dialect}")
