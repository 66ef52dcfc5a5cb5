"""Storage fixtures: every test runs on SQLite and on PostgreSQL.

PostgreSQL comes from TEST_DATABASE_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/test).
When it does not answer, its tests are skipped with the reason, except under CI=true where
that is a failure. Each PostgreSQL test gets its own schema (dropped afterwards), so
concurrent or re-run suites never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from switch.storage.cli import db_upgrade

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _pg_base_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_exec(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    url = _pg_base_url()
    try:
        asyncio.run(_pg_exec(url, "SELECT 1"))
    except Exception as exc:  # any reason not to reach the server
        reason = f"PostgreSQL not reachable at {make_url(url).render_as_string()}: {exc!r}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: PostgreSQL is required)")
        pytest.skip(reason)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema yet)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'wte.db'}"
        return
    base = request.getfixturevalue("pg_base_url")
    schema = f"wte_test_{secrets.token_hex(6)}"
    asyncio.run(_pg_exec(base, f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}{'&' if '?' in base else '?'}schema={schema}"
    finally:
        asyncio.run(_pg_exec(base, f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def migrated_url(db_url: str) -> str:
    """A database at the head revision."""
    db_upgrade(db_url)
    return db_url
