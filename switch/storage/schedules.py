"""The night switch in the database: `schedule_modes`, one row per (customer, schedule) an
admin ever forced (issue 12). A row says OPEN, CLOSED or AUTO (back to the hours and
holidays), when and by whom; a schedule without a row is AUTO.

Rows are upserted, never deleted: the running switch notices a change with one cheap
query over the whole table (`version`: count, max and sum of `changed_at`), which a
deletion could hide. Whoever writes (`wte schedule set`, the `*55` code of a running
switch, later the admin API), every switch sharing the database reloads within its poll
interval.

The table is declared on the shared metadata (models.Base) so that alembic's
autogenerate comparison sees it once this module is imported (migration 0007).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Double, Index, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from dialplan.schedule import ScheduleMode
from switch.storage.engine import upsert_insert

from .models import Base


class ScheduleModeRow(Base):
    __tablename__ = "schedule_modes"

    customer: Mapped[str] = mapped_column(String(64), primary_key=True)
    schedule: Mapped[str] = mapped_column(String(64), primary_key=True)
    mode: Mapped[str] = mapped_column(String(8))  # ScheduleMode value
    changed_at: Mapped[float] = mapped_column(Double)
    changed_by: Mapped[str] = mapped_column(String(255))

    __table_args__ = (Index("ix_schedule_modes_changed_at", "changed_at"),)


_TABLE = cast(Table, ScheduleModeRow.__table__)

# (rows, max changed_at, sum changed_at): changes whenever any row is written
Version = tuple[int, float | None, float | None]


@dataclass(frozen=True, slots=True)
class ScheduleModeRecord:
    customer: str
    schedule: str
    mode: ScheduleMode
    changed_at: float
    changed_by: str


def _record(r: Any) -> ScheduleModeRecord:
    try:
        mode = ScheduleMode(r.mode)
    except ValueError:  # a value written by a newer switch: the safe reading is AUTO
        mode = ScheduleMode.AUTO
    return ScheduleModeRecord(r.customer, r.schedule, mode, float(r.changed_at), r.changed_by)



class SqlScheduleModes:
    """The repository of forced schedule modes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def set(self, customer: str, schedule: str, mode: ScheduleMode, changed_by: str,
                  now: float) -> ScheduleModeRecord:
        """Force `schedule` of `customer` to `mode` (AUTO: follow its hours again)."""
        values = dict(customer=customer, schedule=schedule, mode=mode.value, changed_at=now,
                      changed_by=changed_by[:255])
        ins = upsert_insert(self.engine, _TABLE).values(**values)
        upsert = ins.on_conflict_do_update(
            index_elements=[_TABLE.c.customer, _TABLE.c.schedule],
            set_={"mode": ins.excluded.mode, "changed_at": ins.excluded.changed_at,
                  "changed_by": ins.excluded.changed_by})
        async with self.engine.begin() as conn:
            await conn.execute(upsert)
        return ScheduleModeRecord(customer, schedule, mode, now, changed_by[:255])

    async def all(self) -> list[ScheduleModeRecord]:
        """Every row, AUTO ones included, by customer and schedule."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(_TABLE).order_by(_TABLE.c.customer, _TABLE.c.schedule))).all()
        return [_record(r) for r in rows]

    async def forced(self) -> dict[tuple[str, str], ScheduleMode]:
        """(customer, schedule) -> mode, for the rows that force something (not AUTO)."""
        return {(r.customer, r.schedule): r.mode for r in await self.all()
                if r.mode is not ScheduleMode.AUTO}

    async def version(self) -> Version:
        """One cheap aggregate that changes whenever a row is written."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(
                func.count(), func.max(_TABLE.c.changed_at), func.sum(_TABLE.c.changed_at)
            ).select_from(_TABLE))).one()
        count, high, total = row
        return (int(count), None if high is None else float(high),
                None if total is None else float(total))
