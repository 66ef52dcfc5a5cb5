"""A database file that is not a database (issue 20 item 8): one clear line, status 2."""

from __future__ import annotations

import argparse
import io
import logging
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import DatabaseError, OperationalError

from switch.storage.cli import (
    StorageError,
    db_upgrade,
    guarded,
    list_call_records,
    list_registrations,
)
from switch.storage.engine import (
    DatabaseFileError,
    check_sqlite_file,
    create_engine,
    sqlite_path,
    storage_error,
)

GARBAGE = b"\x00\x13this is no database\xff" * 200


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def test_the_sqlite_file_of_a_url() -> None:
    assert sqlite_path("sqlite+aiosqlite:////var/lib/wte/wte.db") == Path("/var/lib/wte/wte.db")
    assert sqlite_path("sqlite+aiosqlite:///:memory:") is None
    assert sqlite_path("sqlite+aiosqlite://") is None
    assert sqlite_path("postgresql+asyncpg://u:p@db/wte") is None


def test_a_garbage_file_is_refused_with_its_path_and_what_to_do(tmp_path: Path) -> None:
    db = tmp_path / "wte.db"
    db.write_bytes(GARBAGE)
    with pytest.raises(DatabaseFileError) as info:
        check_sqlite_file(_url(db))
    message = str(info.value)
    assert "\n" not in message
    assert str(db) in message and "not an SQLite database" in message
    assert f"wte db upgrade --data-dir {tmp_path}" in message and "backup" in message
    assert info.value.exit_status == 2 and isinstance(info.value, StorageError)
    with pytest.raises(DatabaseFileError):
        create_engine(_url(db))  # every storage user meets the same check


def test_missing_empty_and_real_databases_pass(tmp_path: Path) -> None:
    check_sqlite_file(_url(tmp_path / "absent.db"))
    (tmp_path / "empty.db").write_bytes(b"")
    check_sqlite_file(_url(tmp_path / "empty.db"))  # SQLite makes a database of it
    with sqlite3.connect(tmp_path / "real.db") as conn:
        conn.execute("create table t (x)")
    check_sqlite_file(_url(tmp_path / "real.db"))


def test_a_directory_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "wte.db").mkdir()
    with pytest.raises(DatabaseFileError, match="is a directory"):
        check_sqlite_file(_url(tmp_path / "wte.db"))


def test_a_corrupt_page_met_later_becomes_the_same_error(tmp_path: Path) -> None:
    url = _url(tmp_path / "wte.db")
    corrupt = DatabaseError("select 1", None, sqlite3.DatabaseError("database disk image is "
                                                                    "malformed"))
    err = storage_error(corrupt, url)
    assert isinstance(err, DatabaseFileError) and "is corrupt" in str(err)
    # other faults keep their own handling
    locked = OperationalError("select 1", None, sqlite3.OperationalError("database is locked"))
    assert storage_error(locked, url) is None
    assert storage_error(corrupt, "postgresql+asyncpg://db/wte") is None


def test_db_upgrade_refuses_a_garbage_file_and_leaves_it(tmp_path: Path) -> None:
    db = tmp_path / "wte.db"
    db.write_bytes(GARBAGE)
    with pytest.raises(DatabaseFileError):
        db_upgrade(_url(db))
    assert db.read_bytes() == GARBAGE  # never overwritten: the operator decides


def test_db_upgrade_on_a_file_with_a_valid_header_but_garbage_pages(tmp_path: Path) -> None:
    db = tmp_path / "wte.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table t (x)")
    data = bytearray(db.read_bytes())
    data[16:] = b"\xff" * (len(data) - 16)  # header kept, page size and pages destroyed
    db.write_bytes(bytes(data))
    with pytest.raises(StorageError) as info:
        db_upgrade(_url(db))
    assert str(db) in str(info.value) and "wte db upgrade" in str(info.value)


async def test_the_listing_commands_say_it_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "wte.db"
    db.write_bytes(GARBAGE)
    for which in ("registrations", "calls"):
        out = io.StringIO()
        status = await (list_registrations(_url(db), out, 0.0) if which == "registrations"
                        else list_call_records(_url(db), out))
        assert status == 2
        text = out.getvalue()
        assert text.count("\n") == 1 and text.startswith("error: database ") and str(db) in text


def test_guarded_turns_a_storage_error_into_one_log_line_and_status_2(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def command(args: argparse.Namespace) -> int:
        raise DatabaseFileError(tmp_path / "wte.db", "is not an SQLite database")

    def fine(args: argparse.Namespace) -> int:
        return 0

    with caplog.at_level(logging.ERROR, logger="switch"):
        assert guarded(command)(argparse.Namespace()) == 2
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"database {tmp_path / 'wte.db'} is not an SQLite database"]
    assert guarded(fine)(argparse.Namespace()) == 0

    def other(args: argparse.Namespace) -> int:
        raise ValueError("a bug stays a bug")

    with pytest.raises(ValueError):
        guarded(other)(argparse.Namespace())


def _rows_seen_by_another_process(db: Path) -> int:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c",
         "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
         "print(c.execute('select count(*) from t').fetchone()[0])", str(db)],
        capture_output=True, text=True, timeout=30, check=True)
    return int(out.stdout)


def test_the_check_keeps_the_locks_of_this_process(tmp_path: Path) -> None:
    """The switch checks the file while its other engines are connected. A plain open() and
    close() of the file would drop this process's POSIX locks on it; another process then
    believes it is alone, resets the WAL index, and this process's later commits vanish
    from everyone else's view (seen: call records invisible until the switch stopped)."""
    db = tmp_path / "wte.db"
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("create table t (x)")
        writer.execute("insert into t values (1)")
        check_sqlite_file(_url(db))
        assert _rows_seen_by_another_process(db) == 1
        writer.execute("insert into t values (2)")
        assert _rows_seen_by_another_process(db) == 2
    finally:
        writer.close()
