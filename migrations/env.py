"""Alembic environment for async engines (SQLite/aiosqlite and PostgreSQL/asyncpg).

The URL comes from `config.attributes["url"]` (set by switch.storage.cli), else from the
`sqlalchemy.url` option, else from DATABASE_URL. Migrations run on an AsyncEngine through
`connection.run_sync`; when called from inside a running event loop (a test, the switch
itself) they run on a fresh loop in a worker thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os

from alembic import context
from sqlalchemy.engine import Connection

# the modules whose tables live beside their repositories join Base.metadata on import
import switch.storage.admin_api
import switch.storage.pool
import switch.storage.provisioning
import switch.storage.queue_agents
import switch.storage.queue_callbacks
import switch.storage.schedules
import switch.storage.subscriptions
import switch.storage.user_settings
import switch.storage.voicemail  # noqa: F401
from switch.storage.engine import create_engine
from switch.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url") \
        or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL for migrations")
    return str(url)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run_async())
        return
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _run_async()).result()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
