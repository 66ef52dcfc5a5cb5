"""Call queue agents' logins (`queue_agents`, issue 14) and waiting callbacks
(`queue_callbacks`) on SQLite and PostgreSQL, and a queue service that restores them at
start."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from dialplan import load_plan
from ivr.queue import AgentStatus, QueueState
from switch.services.queues import QueueService
from switch.storage.engine import create_engine
from switch.storage.queue_agents import QueueAgentLogin, SqlQueueAgents
from switch.storage.queue_callbacks import QueueCallback, SqlQueueCallbacks

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


async def _callbacks_round_trip(url: str) -> None:
    engine = create_engine(url)
    try:
        repo = SqlQueueCallbacks(engine)
        assert await repo.waiting() == []
        await repo.add("acme", "support", "c2", "+33612345670", 1002.0)
        await repo.add("acme", "support", "c1", "+33612345678", 1001.0)
        await repo.add("acme", "support", "c1", "+33612345678", 1001.0)  # one row
        assert await repo.waiting() == [
            QueueCallback("acme", "support", "c1", "+33612345678", 1001.0),
            QueueCallback("acme", "support", "c2", "+33612345670", 1002.0)]
        await repo.remove("acme", "support", "c1")
        assert [c.call_id for c in await repo.waiting()] == ["c2"]
    finally:
        await engine.dispose()


def test_queue_callbacks_round_trip(migrated_url: str) -> None:
    asyncio.run(_callbacks_round_trip(migrated_url))


async def test_a_restarted_service_keeps_the_callbacks_places(migrated_url: str) -> None:
    plan = SimpleNamespace(plan=load_plan(EXAMPLE))
    engine = create_engine(migrated_url)
    wall = [5000.0]
    try:
        first = QueueService(plan, callbacks=SqlQueueCallbacks(engine),
                             wall_clock=lambda: wall[0])
        await first.start()
        entry = first.entries[("acme", "support")]
        for agent in ("501410", "501412"):
            first.leg_answered(f"acme:{agent}", f"own-{agent}")  # both busy
        now = first.now()
        entry.state.join("w1", "+33612345678", now - 40)
        entry.state.join("w2", "x", now - 20)
        entry.state.join("w3", "+33612345670", now - 10)
        assert entry.state.request_callback("w1", "+33612345678", now) == 1
        assert entry.state.request_callback("w3", "+33612345670", now) == 3
        await first.stop()  # the background writes are done
        wall[0] += 100.0  # the switch restarts 100 s later
        again = QueueService(plan, callbacks=SqlQueueCallbacks(engine),
                             wall_clock=lambda: wall[0])
        await again.start()
        state = again.entries[("acme", "support")].state
        assert list(state.waiting) == ["w1", "w3"]  # the oldest first, w2 hung up with us
        assert state.waiting["w1"].callback == "+33612345678"
        assert 135 <= again.now() - state.waiting["w1"].entered <= 145  # 40 s + 100 s
        # w1 is called back once an agent answers: its row goes
        offers = state.dispatch(again.now())  # both agents free after the restart
        assert [o.call_id for o in offers] == ["w1", "w3"]
        state.agent_call(offers[0].agent, "callback-leg", True, again.now())
        await again.stop()
        assert [c.call_id for c in await SqlQueueCallbacks(engine).waiting()] == ["w3"]
    finally:
        await engine.dispose()
