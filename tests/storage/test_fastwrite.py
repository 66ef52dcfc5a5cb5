"""The SQLite batch writer's own thread (submit_rows): committed before the future settles,
errors handed to the waiter, the thread ends on close."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from switch.storage.fastwrite import SqliteBatchWriter


def _writer(tmp_path: Path) -> SqliteBatchWriter:
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    return SqliteBatchWriter(path, "t", ("k", "v"), ("k",), ("v",))


def _rows(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT k, v FROM t"))


async def test_committed_before_the_future_settles_and_thread_ends_on_close(
        tmp_path: Path) -> None:
    w = _writer(tmp_path)
    await w.submit_rows([], [("a", "1"), ("b", "2")])
    assert _rows(w.path) == [("a", "1"), ("b", "2")]  # another connection sees it
    await asyncio.gather(w.submit_rows([("a",)], [("b", "3")]), w.submit_rows([], [("c", "4")]))
    assert _rows(w.path) == [("b", "3"), ("c", "4")]
    thread = w._thread
    assert thread is not None and thread.is_alive()
    w.close()
    assert not thread.is_alive()


async def test_a_failed_batch_is_rolled_back_and_raised_to_its_waiter(tmp_path: Path) -> None:
    w = _writer(tmp_path)
    with pytest.raises(sqlite3.IntegrityError):
        await w.submit_rows([], [("a", "1"), ("b", None)])  # NOT NULL
    assert _rows(w.path) == []
    await w.submit_rows([], [("a", "1")])  # the thread serves on
    assert _rows(w.path) == [("a", "1")]
    w.close()
