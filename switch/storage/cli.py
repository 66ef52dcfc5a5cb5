"""Storage commands the `wte` CLI wires in: database URL, migrations, registration listing.

Functions write to the stream they are given; nothing here prints.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

from sqlalchemy import Table, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from .engine import StorageError as StorageError  # re-exported (switch.storage, importers)
from .engine import check_sqlite_file, create_engine, is_sqlite, storage_error
from .models import RegistrationRow

if TYPE_CHECKING:  # alembic is imported only by the commands that migrate
    from alembic.config import Config

DB_FILE = "wte.db"


def database_url(data_dir: str) -> str:
    """DATABASE_URL wins; else SQLite in `{data_dir}/wte.db` (the directory is created)."""
    env = os.environ.get("DATABASE_URL")
    if env:
        return env
    path = Path(data_dir).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{path / DB_FILE}"


def alembic_config(url: str) -> Config:
    """An alembic Config built in code: no alembic.ini, works from any directory."""
    from alembic.config import Config

    import migrations

    cfg = Config()
    # __path__ works whether `migrations` is installed as a regular or a namespace package
    location = Path(next(iter(migrations.__path__))).resolve()
    cfg.set_main_option("script_location", str(location))
    cfg.attributes["url"] = url
    return cfg


def db_upgrade(url: str, rev: str = "head") -> None:
    """Migrate to `rev`; StorageError (one line, what to do) when the file is corrupt."""
    from alembic import command

    check_sqlite_file(url)
    try:
        command.upgrade(alembic_config(url), rev)
    except DBAPIError as exc:
        err = storage_error(exc, url)
        if err is None:
            raise
        raise err from None


def db_downgrade(url: str, rev: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), rev)


async def db_current(url: str) -> str | None:
    """The revision the database is at (None before the first upgrade)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import Connection

    def current(c: Connection) -> str | None:
        return MigrationContext.configure(c).get_current_revision()

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(current)
    finally:
        await engine.dispose()


_A = TypeVar("_A")


def guarded(command: Callable[[_A], int]) -> Callable[[_A], int]:
    """A `wte` command that, when the database cannot be used (StorageError: a corrupt
    SQLite file, a missing schema), logs one line saying why and what to do and returns
    exit status 2, instead of a traceback. The wiring, in `switch/__main__.py` `main()`:

        result: int = guarded(args.func)(args)
    """

    @functools.wraps(command)
    def run(args: _A) -> int:
        try:
            return command(args)
        except StorageError as exc:
            logging.getLogger("switch").error("%s", exc)
            return exc.exit_status

    return run


def _source(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


HEADER = "account\tcontact\tsource\ttransport\tuser_agent\texpires_in"


async def list_registrations(url: str, out: TextIO, now: float) -> int:
    """Write a header line, then one line per unexpired binding, tab-separated:
    account (AOR), contact, source host:port, transport, User-Agent, remaining seconds.

    Works while the switch runs (SQLite WAL: readers do not block the writer) and after it
    died. Returns the exit status: 0, or 1 when the database cannot be read (the reason
    and what to do are written to `out`). `read_registrations` raises instead.
    """
    try:
        rows = await read_registrations(url, now)
    except StorageError as exc:
        out.write(f"error: {exc}\n")
        return exc.exit_status
    out.write(HEADER + "\n")
    for r in rows:
        ua = (r.user_agent or "-").replace("\t", " ").replace("\n", " ")
        remaining = max(0, round(r.expires_at - now))
        out.write(f"{r.aor}\t{r.contact}\t{_source(r.source_host, r.source_port)}\t"
                  f"{r.transport}\t{ua}\t{remaining}\n")
    return 0


def missing_sqlite_file(url: str) -> str | None:
    """The path of the SQLite file `url` names when that file does not exist (a command
    reading it must not create an empty one), else None."""
    if is_sqlite(url):
        db = make_url(url).database
        if db and db != ":memory:" and not Path(db).exists():
            return db
    return None


async def read_registrations(url: str, now: float) -> list[Any]:
    """The unexpired registration rows, by account, best q first; StorageError if the
    database or its schema is missing."""
    if (missing := missing_sqlite_file(url)) is not None:
        raise StorageError(f"no database at {missing}: run `wte db upgrade` first")
    engine = create_engine(url)
    table = cast(Table, RegistrationRow.__table__)
    try:
        async with engine.connect() as conn:
            try:
                return list((await conn.execute(
                    select(table).where(table.c.expires_at > now)
                    .order_by(table.c.aor, table.c.q.desc(), table.c.registered_at.desc())
                )).all())
            except DBAPIError as exc:
                raise storage_error(exc, url) or StorageError(
                    f"cannot read registrations ({exc.orig}): run `wte db upgrade` first"
                ) from exc
    finally:
        await engine.dispose()


async def list_call_records(url: str, out: TextIO, limit: int = 100) -> int:
    """Print the most recent call records as JSON lines (newest first); 0, or 1 on error."""
    import dataclasses
    import json

    from .cdrs import SqlCallRecordRepository

    try:
        engine = create_engine(url)
    except StorageError as exc:
        out.write(f"error: {exc}\n")
        return exc.exit_status
    try:
        records = await SqlCallRecordRepository(engine).recent(limit)
    except DBAPIError as exc:
        err = storage_error(exc, url)
        out.write(f"error: {err}\n" if err else f"cannot read call records: {exc.orig}\n")
        return err.exit_status if err else 1
    finally:
        await engine.dispose()
    for rec in records:
        row = dataclasses.asdict(rec)
        row["duration"] = rec.duration
        row["rated_seconds"] = rec.rated_seconds
        out.write(json.dumps(row, sort_keys=True) + "\n")
    return 0
