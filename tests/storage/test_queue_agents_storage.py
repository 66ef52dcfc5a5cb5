"""Call queue agents' logins (`queue_agents`, issue 14) on SQLite and PostgreSQL, and a
queue service that restores them at start."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from dialplan import load_plan
from ivr.queue import AgentStatus, QueueState
from switch.services.queues import QueueService
from switch.storage.engine import create_engine
from switch.storage.queue_agents import QueueAgentLogin, SqlQueueAgents

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"


def status(state: QueueState, agent: str) -> AgentStatus:
    return state.agents[agent].status


async def _round_trip(url: str) -> None:
    engine = create_engine(url)
    try:
        repo = SqlQueueAgents(engine)
        assert await repo.logins() == []
        await repo.store("acme", "support", "501412", False, 1000.0)
        await repo.store("acme", "support", "501411", True, 1001.0)
        await repo.store("acme", "support", "501412", True, 1002.0)  # one row, replaced
        assert await repo.logins() == [
            QueueAgentLogin("acme", "support", "501411", True, 1001.0),
            QueueAgentLogin("acme", "support", "501412", True, 1002.0)]
    finally:
        await engine.dispose()


def test_queue_agents_round_trip(migrated_url: str) -> None:
    asyncio.run(_round_trip(migrated_url))


async def test_a_restarted_service_keeps_who_logged_out(migrated_url: str) -> None:
    plan = SimpleNamespace(plan=load_plan(EXAMPLE))
    engine = create_engine(migrated_url)
    try:
        first = QueueService(plan, store=SqlQueueAgents(engine))
        await first.start()
        assert first.agent_login("acme", "402", "501412", False) == "support"
        assert first.agent_login("acme", "402", "501411", True) == "support"
        await first.stop()  # the background writes are done
        again = QueueService(plan, store=SqlQueueAgents(engine))
        await again.start()
        state = again.entries[("acme", "support")].state
        assert state.agents["501412"].status is AgentStatus.LOGGED_OUT
        assert status(state, "501411") is AgentStatus.FREE  # a dynamic agent
        assert state.agents["501410"].status is AgentStatus.FREE
        again.leg_ringing("acme:501411", "c", "recipient", "sip:x@y", None)
        assert status(state, "501411") is AgentStatus.BUSY  # its calls are watched
        await again.stop()
    finally:
        await engine.dispose()
