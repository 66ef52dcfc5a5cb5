"""Call queue agents' logins in the database (issue 14): `queue_agents`, one row per
(customer, queue, agent) that ever logged in or out with its code (`*50402` / `#50402`).

The switch applies a login at once in memory and writes the row in the background; at
start it loads every row, so a restart keeps who is logged out (and the dynamic agents).
Other switches sharing the database see a change at their next start only (no polling).

Declared on the shared metadata (models.Base) so alembic's autogenerate comparison sees
it once this module is imported (migration 0011).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import Boolean, Double, String, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from switch.storage.engine import upsert_insert

from .models import Base


class QueueAgentRow(Base):
    __tablename__ = "queue_agents"

    customer: Mapped[str] = mapped_column(String(64), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent: Mapped[str] = mapped_column(String(32), primary_key=True)  # full internal number
    logged_in: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[float] = mapped_column(Double)


_TABLE = cast(Table, QueueAgentRow.__table__)


@dataclass(frozen=True, slots=True)
class QueueAgentLogin:
    customer: str
    queue: str
    agent: str
    logged_in: bool
    changed_at: float



class SqlQueueAgents:
    """The repository of agents' logins (`switch.services.queues.QueueAgentStore`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def store(self, customer: str, queue: str, agent: str, logged_in: bool,
                    now: float) -> None:
        ins = upsert_insert(self.engine, _TABLE).values(customer=customer, queue=queue, agent=agent,
                                          logged_in=logged_in, changed_at=now)
        upsert = ins.on_conflict_do_update(
            index_elements=[_TABLE.c.customer, _TABLE.c.queue, _TABLE.c.agent],
            set_={"logged_in": ins.excluded.logged_in, "changed_at": ins.excluded.changed_at})
        async with self.engine.begin() as conn:
            await conn.execute(upsert)

    async def logins(self) -> list[QueueAgentLogin]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(_TABLE).order_by(
                _TABLE.c.customer, _TABLE.c.queue, _TABLE.c.agent))).all()
        return [QueueAgentLogin(r.customer, r.queue, r.agent, bool(r.logged_in),
                                float(r.changed_at)) for r in rows]
