"""Async engines: SQLite (aiosqlite, the embedded default) and PostgreSQL (asyncpg).

SQLite is opened in WAL mode so that readers (`wte registrations`) never block the writer
and the writer never blocks them, with a busy timeout instead of immediate "database is
locked" errors, and `synchronous=FULL` so that a committed registration survives a crash
of the process or of the machine.

A PostgreSQL URL may carry `?schema=NAME`: every connection then uses that search_path
(used by the tests to isolate concurrent runs; also handy for one schema per deployment).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


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
    """An AsyncEngine for `url` with the settings above; `kwargs` go to SQLAlchemy."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
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
