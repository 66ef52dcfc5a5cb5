"""Cluster storage (issue 22): call records carry their node; a node's orphans are its own;
a dead node's open records are closed; the change channel and node liveness on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from rating.cdr import RESTART_CAUSE, CallRecord
from switch.cluster.listener import ClusterLink
from switch.cluster.notices import NODE_FAILED_CAUSE, Action, Kind, Notice
from switch.storage import create_engine
from switch.storage.cdrs import SqlCallRecordRepository

NOW = 1_800_000_000.0


def rec(i: int) -> CallRecord:
    return CallRecord(id=f"r{i}", call_id=f"c{i}@phone", caller="501410", callee="501411",
                      dialed="sip:501411@acme", decision="user", site="01", customer="acme",
                      start=NOW + i)


async def test_orphans_and_dead_node_records_are_per_node(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    try:
        one = SqlCallRecordRepository(engine, node_id="node1")
        two = SqlCallRecordRepository(engine, node_id="node2")
        three = SqlCallRecordRepository(engine, node_id="node3")
        await one.open(rec(1))
        await two.open(rec(2))
        await three.open(rec(3))
        assert await one.open_record_nodes() == {"node1", "node2", "node3"}
        # node1 restarts: only its own open record is an orphan
        assert await one.close_orphans(NOW + 10) == 1
        r1, r2 = await one.get("r1"), await one.get("r2")
        assert r1 is not None and r1.cause == RESTART_CAUSE and r1.end == NOW + 10
        assert r2 is not None and r2.end is None
        # node2 died: a survivor closes its records, not node3's
        assert await one.close_node_records("node2", NOW + 20, NODE_FAILED_CAUSE) == 1
        r2, r3 = await one.get("r2"), await one.get("r3")
        assert r2 is not None and r2.cause == NODE_FAILED_CAUSE and r2.disposition == "interrupted"
        assert r3 is not None and r3.end is None
        assert await one.open_record_nodes() == {"node3"}
    finally:
        await engine.dispose()


async def test_notices_reach_peers_and_liveness_follows_sessions(migrated_url: str) -> None:
    if not migrated_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's (SQLite is a single node)")
    seen: dict[str, list[tuple[Action, str]]] = {"a": [], "b": []}

    def handler(name: str) -> Callable[[Action, list[Notice]], Awaitable[None]]:
        async def on(action: Action, notices: list[Notice]) -> None:
            seen[name].extend(dict.fromkeys((action, n.key) for n in notices))
        return on

    a = ClusterLink(migrated_url, "test-a", handler("a"))
    b = ClusterLink(migrated_url, "test-b", handler("b"))
    await a.start()
    await b.start()
    try:
        assert {"test-a", "test-b"} <= (await a.live_nodes() or set())
        # sent together: one statement; received in one batch per action, duplicates merged
        await asyncio.gather(a.notify(Kind.BINDING, "acme:501410"), a.notify(Kind.PLAN),
                             a.notify(Kind.BINDING, "acme:501411"),
                             a.notify(Kind.BINDING, "acme:501410"))
        for _ in range(50):
            if len(seen["b"]) >= 3:
                break
            await asyncio.sleep(0.05)
        assert sorted(seen["b"], key=str) == sorted(
            [(Action.RELOAD_AOR, "acme:501410"), (Action.RELOAD_AOR, "acme:501411"),
             (Action.RELOAD_PLAN, "")], key=str)
        assert seen["a"] == []  # a node does not act on its own notices
        await b.stop()
        await asyncio.sleep(0.2)
        assert "test-b" not in (await a.live_nodes() or set())
    finally:
        await a.stop()
        await b.stop()
