"""Alembic, configured in code, on SQLite and PostgreSQL: upgrade, downgrade, upgrade."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import inspect

from switch.storage import create_engine, database_url, db_current, db_downgrade, db_upgrade
from switch.storage.models import Base


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


HEAD = "0017"  # the newest revision in migrations/versions


def test_upgrade_downgrade_upgrade(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini anywhere near: the config is built in code
    db_upgrade(db_url)
    assert asyncio.run(db_current(db_url)) == HEAD
    assert {"registrations", "call_records", "emergency_locations", "alembic_version"} <= asyncio.run(_tables(db_url))
    db_downgrade(db_url, "base")
    assert asyncio.run(db_current(db_url)) is None
    assert not {"registrations", "call_records"} & asyncio.run(_tables(db_url))
    db_upgrade(db_url, "head")
    assert asyncio.run(db_current(db_url)) == HEAD


async def test_upgrade_from_inside_a_running_loop(db_url: str) -> None:
    db_upgrade(db_url)  # runs on a worker thread's loop
    assert await db_current(db_url) == HEAD


def test_models_match_the_migrations(migrated_url: str) -> None:
    """Autogenerate finds nothing to do: models.py and versions/ agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    async def diff() -> list[object]:
        engine = create_engine(migrated_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata))
        finally:
            await engine.dispose()

    assert asyncio.run(diff()) == []


def test_database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    url = database_url(str(tmp_path / "data" / "dir"))
    assert url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'dir' / 'wte.db'}"
    assert (tmp_path / "data" / "dir").is_dir()
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@db/x")
    assert database_url(str(tmp_path)) == "postgresql+asyncpg://u@db/x"
    assert os.environ["DATABASE_URL"]
