"""Queue callbacks waiting in the database (issue 14): `queue_callbacks`, one row per
caller who pressed its queue's callback key and hung up, until its place reached an
agent who answered.

The switch keeps the line in memory and writes a row in the background when a callback is
requested (and deletes it once called back); at start it puts the rows back in their
queues in arrival order, so a restart keeps the places it promised. `entered_at` is wall
time (epoch seconds) of the caller's arrival in the line.

Declared on the shared metadata (models.Base) so alembic's autogenerate comparison sees
it once this module is imported (migration 0015).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import Double, String, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from switch.storage.engine import upsert_insert

from .models import Base


class QueueCallbackRow(Base):
    __tablename__ = "queue_callbacks"

    customer: Mapped[str] = mapped_column(String(64), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(255), primary_key=True)  # the waiting call
    number: Mapped[str] = mapped_column(String(32))  # what is called back
    entered_at: Mapped[float] = mapped_column(Double)


_TABLE = cast(Table, QueueCallbackRow.__table__)


@dataclass(frozen=True, slots=True)
class QueueCallback:
    customer: str
    queue: str
    call_id: str
    number: str
    entered_at: float


class SqlQueueCallbacks:
    """The repository of waiting callbacks (`switch.services.queues.QueueCallbackStore`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, customer: str, queue: str, call_id: str, number: str,
                  entered_at: float) -> None:
        ins = upsert_insert(self.engine, _TABLE).values(
            customer=customer, queue=queue, call_id=call_id, number=number,
            entered_at=entered_at)
        upsert = ins.on_conflict_do_update(
            index_elements=[_TABLE.c.customer, _TABLE.c.queue, _TABLE.c.call_id],
            set_={"number": ins.excluded.number, "entered_at": ins.excluded.entered_at})
        async with self.engine.begin() as conn:
            await conn.execute(upsert)

    async def remove(self, customer: str, queue: str, call_id: str) -> None:
        t = _TABLE.c
        async with self.engine.begin() as conn:
            await conn.execute(delete(_TABLE).where(
                t.customer == customer, t.queue == queue, t.call_id == call_id))

    async def waiting(self) -> list[QueueCallback]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(_TABLE).order_by(
                _TABLE.c.entered_at, _TABLE.c.call_id))).all()
        return [QueueCallback(r.customer, r.queue, r.call_id, r.number, float(r.entered_at))
                for r in rows]
