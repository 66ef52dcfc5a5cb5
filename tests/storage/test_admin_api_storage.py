"""The admin API's tokens and audit log (`api_tokens`, `audit_log`, issue 18) on SQLite
and PostgreSQL: a token is stored as its sha256 only, found by it, revoked for good;
the audit log keeps who did what, when and from where, newest first."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from switch.storage.admin_api import ApiTokenRow, SqlAdminApi, token_hash
from switch.storage.engine import create_engine


async def _tokens(url: str) -> None:
    engine = create_engine(url)
    try:
        store = SqlAdminApi(engine)
        info, token = await store.create_token("customer-admin", "acme", "portal", "cli:root",
                                               1000.0)
        assert token.startswith("wte_") and len(token) > 40
        async with engine.connect() as conn:
            rows = (await conn.execute(select(ApiTokenRow.__table__))).mappings().all()
        assert [r["token_hash"] for r in rows] == [token_hash(token)]
        assert token not in str([dict(r) for r in rows])  # never stored in clear
        found = await store.find_token(token)
        assert found is not None and (found.role, found.customer) == ("customer-admin", "acme")
        assert await store.find_token(token + "x") is None
        assert [t.id for t in await store.tokens("acme")] == [info.id]
        assert await store.tokens("globex") == []
        assert not await store.revoke(info.id, 1001.0, customer="globex")  # not theirs
        assert await store.revoke(info.id, 1001.0)
        assert not await store.revoke(info.id, 1002.0)  # already revoked
        assert await store.find_token(token) is None
        assert (await store.tokens())[0].revoked_at == 1001.0
    finally:
        await engine.dispose()


async def _audit(url: str) -> None:
    engine = create_engine(url)
    try:
        store = SqlAdminApi(engine)
        await store.audit(at=10.0, actor="token:ab:portal", role="customer-admin",
                          customer="acme", action="schedule.mode", target="acme/office",
                          detail={"mode": "closed"}, source="192.0.2.7")
        await store.audit(at=20.0, actor="env:WTE_ADMIN_TOKEN", role="operator",
                          customer=None, action="plan.put", target="plan",
                          detail={"generation": 2}, source="127.0.0.1")
        entries = await store.audit_entries()
        assert [e.action for e in entries] == ["plan.put", "schedule.mode"]  # newest first
        assert entries[1].detail == {"mode": "closed"} and entries[1].source == "192.0.2.7"
        assert [e.action for e in await store.audit_entries(customer="acme")] == [
            "schedule.mode"]
        assert [e.at for e in await store.audit_entries(since=15.0)] == [20.0]
    finally:
        await engine.dispose()


def test_tokens_stored_hashed_found_and_revoked(migrated_url: str) -> None:
    asyncio.run(_tokens(migrated_url))


def test_audit_log_round_trip(migrated_url: str) -> None:
    asyncio.run(_audit(migrated_url))
