"""Subscriptions in the database (issue 17), on SQLite and PostgreSQL: saved, refreshed in
place, reloaded unexpired with their dialog, deleted, expired ones swept."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from switch.storage.engine import create_engine
from switch.storage.subscriptions import SqlSubscriptionRepository
from switch.subscription.store import StoredSubscription

NOW = 1_800_000_000.0


def stored(sid: str, expires_at: float = NOW + 600) -> StoredSubscription:
    return StoredSubscription(
        sid, "dialog", "acme:501410", "acme:501412", "127.0.0.1", expires_at, 3,
        f"call-{sid}@h", f"tag{sid}", "ftag", "<sip:501410@acme.wte.example>",
        '"Claire" <sip:501412@acme.wte.example>', "sip:501412@127.0.0.1:40000",
        ("<sip:proxy.example;lr>", "<sip:edge.example;lr>"), 4, 2, "UDP", "127.0.0.1", 40000,
        "blf7")


def test_save_refresh_reload_delete_and_sweep(migrated_url: str) -> None:
    async def run() -> None:
        engine = create_engine(migrated_url)
        try:
            repo = SqlSubscriptionRepository(engine)
            a, b = stored("a"), stored("b", expires_at=NOW - 1)
            await repo.save(a)
            await repo.save(b)
            assert await repo.load_unexpired(NOW) == [a]
            refreshed = replace(a, expires_at=NOW + 3600, version=9, local_seq=12)
            await repo.save(refreshed)  # one row per subscription, updated in place
            assert await repo.load_unexpired(NOW) == [refreshed]
            assert await repo.delete_expired(NOW) == 1  # b
            await repo.delete("a")
            await repo.delete("a")  # deleting twice is harmless
            assert await repo.load_unexpired(NOW) == []
            empty_routes = replace(stored("c"), route_set=(), local_seq=None)
            await repo.save(empty_routes)
            assert await repo.load_unexpired(NOW) == [empty_routes]
        finally:
            await engine.dispose()

    asyncio.run(run())
